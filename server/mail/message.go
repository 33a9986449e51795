package mail

import (
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"github.com/picketline/picketline/db"
)

// Subject is the subject of every login email. It carries no code: a
// phone's lock screen shows subjects to whoever holds it.
const Subject = "Your Picketline sign-in code"

// loginCodeWords is what every login email says, in both of its forms.
type loginCodeWords struct {
	Code    string
	Minutes int
}

var textBody = texttemplate.Must(texttemplate.New("text").Parse(`Your Picketline sign-in code is:

    {{.Code}}

Enter it in the app to sign in. It expires in {{.Minutes}} minutes and works once.

The union will never ask you for this code, by phone, text or email. If anyone does, do not give it to them.

If you did not ask to sign in, ignore this email: nobody can sign in without the code.
`))

var htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Your Picketline sign-in code</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #222;">
<p>Your Picketline sign-in code is:</p>
<p style="font-size: 2em; font-weight: bold; letter-spacing: 0.2em;">{{.Code}}</p>
<p>Enter it in the app to sign in. It expires in {{.Minutes}} minutes and works once.</p>
<p><strong>The union will never ask you for this code, by phone, text or email.</strong> If anyone does, do not give it to them.</p>
<p>If you did not ask to sign in, ignore this email: nobody can sign in without the code.</p>
</body>
</html>
`))

// bodies returns the plain-text and HTML forms of the email carrying code.
func bodies(code string) (text, html string) {
	words := loginCodeWords{Code: code, Minutes: int(db.LoginCodeTTL.Minutes())}
	var t, h strings.Builder
	// Both templates are fixed and their data is two plain values: they
	// cannot fail to execute.
	if err := textBody.Execute(&t, words); err != nil {
		panic(err)
	}
	if err := htmlBody.Execute(&h, words); err != nil {
		panic(err)
	}
	return t.String(), h.String()
}
