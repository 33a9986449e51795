package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseToken reads any string as an access token. Without the secret
// nothing can be made to pass: a token that passes is one the server
// issued, whole and unchanged; everything else is ErrInvalidToken.
func FuzzParseToken(f *testing.F) {
	now := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	tokens, err := NewTokens([]byte(strings.Repeat("k", MinSecretBytes)), DefaultTTL, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	issued := map[string]bool{}
	for _, ttl := range []time.Duration{DefaultTTL, MaxTTL} {
		tok, _, err := tokens.IssueTTL("5d0c7c44-5a6e-4bd5-9d56-2f1e1b0b9a01", "9e1f0a22-3b4c-4d5e-8f60-718293a4b5c6", ttl)
		if err != nil {
			f.Fatal(err)
		}
		issued[tok] = true
		f.Add(tok)
		head, _, _ := strings.Cut(tok, ".")
		// The same claims with no signature, or with alg none.
		f.Add(tok[:strings.LastIndexByte(tok, '.')+1])
		f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + tok[len(head)+1:strings.LastIndexByte(tok, '.')] + ".")
	}
	f.Add("")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tokens.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refused with %v, want ErrInvalidToken", err)
			}
			return
		}
		if !issued[s] {
			t.Fatalf("a token the server never issued passed: %q (claims %+v)", s, c)
		}
	})
}
