package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
)

const meQuery = `{ me { id name email phone role } }`

type meData struct {
	Me struct {
		ID    string  `json:"id"`
		Name  string  `json:"name"`
		Email *string `json:"email"`
		Phone *string `json:"phone"`
		Role  string  `json:"role"`
	} `json:"me"`
}

const (
	verifyMutation  = `mutation($e: String!, $c: String!) { verifyLoginCode(email: $e, code: $c) { ` + authPayloadFields + ` } }`
	refreshMutation = `mutation($r: String!) { refreshSession(refreshToken: $r) { ` + authPayloadFields + ` } }`
)

// wantRefused checks the answer to a request with a bad access token: 401,
// a Bearer challenge, and UNAUTHENTICATED without data.
func wantRefused(t *testing.T, r *gqlResponse, what string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: got %s, want HTTP 401", what, r)
	}
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Fatalf("%s: WWW-Authenticate %q, want a Bearer challenge", what, h)
	}
	if r.Code() != string(db.CodeUnauthenticated) || r.HasData() {
		t.Fatalf("%s: got %s, want only an UNAUTHENTICATED error", what, r)
	}
}

func TestLoginFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	t.Run("a stranger's email gets the member's answer and no code", func(t *testing.T) {
		m := s.addMember(t, db.RoleMember)
		mark := s.log.mark()
		known := s.gql(t, "", `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": m.Email})
		stranger := s.gql(t, "", `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": "nobody@example.org"})
		if known.Status != http.StatusOK || string(known.Body) != `{"data":{"requestLoginCode":true}}` {
			t.Fatalf("requestLoginCode for a member: %s", known)
		}
		if stranger.Status != known.Status || string(stranger.Body) != string(known.Body) {
			t.Fatalf("requestLoginCode for a stranger answered %s, for a member %s: they must not differ", stranger, known)
		}
		line := s.log.waitAfter(t, mark, waitTimeout, func(l string) bool { return loginCodePattern.MatchString(l) })
		if got := loginCodePattern.FindStringSubmatch(line)[1]; got != m.Email {
			t.Fatalf("login code sent to %s, want %s", got, m.Email)
		}
		for _, l := range s.log.Lines()[mark:] {
			if strings.Contains(l, "nobody@example.org") {
				t.Fatalf("the server acted on a stranger's email: %s", l)
			}
		}
	})

	t.Run("a wrong code is refused and the right one signs in once", func(t *testing.T) {
		m := s.addMember(t, db.RoleMember)
		code := s.requestCode(t, m.Email)
		r := s.fails(t, "", verifyMutation, map[string]any{"e": m.Email, "c": wrongCode(code)}, "UNAUTHENTICATED")
		if r.HasData() {
			t.Fatalf("wrong code answered data: %s", r)
		}
		var v struct{ VerifyLoginCode authPayload }
		before := time.Now()
		s.do(t, "", verifyMutation, map[string]any{"e": m.Email, "c": code}, &v)
		sess := v.VerifyLoginCode
		if sess.AccessToken == "" || sess.RefreshToken == "" {
			t.Fatalf("verifyLoginCode gave no tokens: %+v", sess)
		}
		if sess.ExpiresAt.Before(before.Add(14*time.Minute)) || sess.ExpiresAt.After(time.Now().Add(16*time.Minute)) {
			t.Fatalf("expiresAt %v, want about 15 minutes from now", sess.ExpiresAt)
		}
		if sess.Member.ID != m.ID || sess.Member.Name != m.Name || sess.Member.Role != "MEMBER" {
			t.Fatalf("verifyLoginCode member %+v, want %+v", sess.Member, m.Member)
		}
		if sess.Member.Email == nil || *sess.Member.Email != m.Email {
			t.Fatalf("the member signing in must see their own email, got %v", sess.Member.Email)
		}
		s.fails(t, "", verifyMutation, map[string]any{"e": m.Email, "c": code}, "UNAUTHENTICATED")

		var me meData
		s.do(t, sess.AccessToken, meQuery, nil, &me)
		if me.Me.ID != m.ID || me.Me.Email == nil || *me.Me.Email != m.Email || me.Me.Phone == nil || *me.Me.Phone != *m.Phone {
			t.Fatalf("me = %+v, want member %+v with their contact details", me.Me, m.Member)
		}
	})

	t.Run("refreshing rotates the refresh token, and presenting an old one ends the session", func(t *testing.T) {
		m := s.addMember(t, db.RoleMember)
		sess := s.login(t, m.Email)
		var ref struct{ RefreshSession authPayload }
		s.do(t, "", refreshMutation, map[string]any{"r": sess.RefreshToken}, &ref)
		next := ref.RefreshSession
		if next.RefreshToken == sess.RefreshToken || next.AccessToken == "" || next.Member.ID != m.ID {
			t.Fatalf("refreshSession did not rotate: %+v", next)
		}
		s.do(t, next.AccessToken, meQuery, nil, nil)
		s.fails(t, "", refreshMutation, map[string]any{"r": sess.RefreshToken}, "UNAUTHENTICATED")
		s.fails(t, "", refreshMutation, map[string]any{"r": next.RefreshToken}, "UNAUTHENTICATED")
		wantRefused(t, s.gql(t, next.AccessToken, meQuery, nil), "access token of a session ended by refresh token reuse")
		s.fails(t, "", refreshMutation, map[string]any{"r": "not-a-refresh-token"}, "UNAUTHENTICATED")
	})

	t.Run("logout ends the access token and the refresh token at once", func(t *testing.T) {
		m := s.addMember(t, db.RoleMember)
		sess := s.login(t, m.Email)
		s.do(t, sess.AccessToken, meQuery, nil, nil)
		var out struct{ Logout bool }
		s.do(t, sess.AccessToken, `mutation { logout }`, nil, &out)
		if !out.Logout {
			t.Fatalf("logout answered false")
		}
		wantRefused(t, s.gql(t, sess.AccessToken, meQuery, nil), "token after logout")
		s.fails(t, "", refreshMutation, map[string]any{"r": sess.RefreshToken}, "UNAUTHENTICATED")
	})

	t.Run("after five wrong tries the right code fails", func(t *testing.T) {
		m := s.addMember(t, db.RoleMember)
		code := s.requestCode(t, m.Email)
		for range db.LoginCodeMaxAttempts {
			s.fails(t, "", verifyMutation, map[string]any{"e": m.Email, "c": wrongCode(code)}, "UNAUTHENTICATED")
		}
		s.fails(t, "", verifyMutation, map[string]any{"e": m.Email, "c": code}, "UNAUTHENTICATED")
	})

	t.Run("emails match whatever their case and surrounding blanks", func(t *testing.T) {
		m := s.addMember(t, db.RoleMember)
		code := s.requestCode(t, "  "+strings.ToUpper(m.Email)+" ")
		s.do(t, "", verifyMutation, map[string]any{"e": strings.ToUpper(m.Email), "c": code}, nil)
	})

	t.Run("every bad token gets the answer of a logged-out one", func(t *testing.T) {
		out := s.addMember(t, db.RoleMember)
		s.do(t, out.Token, `mutation { logout }`, nil, nil)
		loggedOut := s.gql(t, out.Token, meQuery, nil)
		wantRefused(t, loggedOut, "token after logout")

		live, other := s.addMember(t, db.RoleMember), s.addMember(t, db.RoleMember)
		var base auth.Claims
		if _, _, err := jwt.NewParser().ParseUnverified(live.Token, &base); err != nil {
			t.Fatalf("parse a server token: %v", err)
		}
		sum := sha256.Sum256([]byte(testSecret))
		kid := hex.EncodeToString(sum[:4])
		now := time.Now()
		craft := func(edit func(c *auth.Claims, h map[string]any), method jwt.SigningMethod, key any) string {
			c := base
			c.IssuedAt = jwt.NewNumericDate(now.Add(-time.Minute))
			c.NotBefore = jwt.NewNumericDate(now.Add(-time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(10 * time.Minute))
			tok := jwt.NewWithClaims(method, &c)
			tok.Header["typ"] = auth.TokenType
			tok.Header["kid"] = kid
			if edit != nil {
				edit(&c, tok.Header)
			}
			signed, err := tok.SignedString(key)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			return signed
		}
		secret := []byte(testSecret)
		// The crafting itself is right: unchanged, the token works.
		var me meData
		s.do(t, craft(nil, jwt.SigningMethodHS256, secret), meQuery, nil, &me)
		if me.Me.ID != live.ID {
			t.Fatalf("crafted token acted for %s, want %s", me.Me.ID, live.ID)
		}
		tamper := func(tok string, part int) string {
			parts := strings.Split(tok, ".")
			b := []byte(parts[part])
			i := len(b) / 2
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			parts[part] = string(b)
			return strings.Join(parts, ".")
		}
		bad := map[string]string{
			"tampered payload":   tamper(live.Token, 1),
			"tampered signature": tamper(live.Token, 2),
			"other secret":       craft(nil, jwt.SigningMethodHS256, []byte("another-secret-of-forty-bytes-0123456789")),
			"expired": craft(func(c *auth.Claims, _ map[string]any) {
				c.IssuedAt = jwt.NewNumericDate(now.Add(-2 * time.Hour))
				c.NotBefore = jwt.NewNumericDate(now.Add(-2 * time.Hour))
				c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
			}, jwt.SigningMethodHS256, secret),
			"without expiry": craft(func(c *auth.Claims, _ map[string]any) { c.ExpiresAt = nil }, jwt.SigningMethodHS256, secret),
			"not yet valid": craft(func(c *auth.Claims, _ map[string]any) {
				c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
			}, jwt.SigningMethodHS256, secret),
			"issued in the future": craft(func(c *auth.Claims, _ map[string]any) {
				c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour))
			}, jwt.SigningMethodHS256, secret),
			"wrong issuer":   craft(func(c *auth.Claims, _ map[string]any) { c.Issuer = "someone-else" }, jwt.SigningMethodHS256, secret),
			"wrong audience": craft(func(c *auth.Claims, _ map[string]any) { c.Audience = jwt.ClaimStrings{"other-app"} }, jwt.SigningMethodHS256, secret),
			"alg none":       craft(nil, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
			"HS512":          craft(nil, jwt.SigningMethodHS512, secret),
			"missing typ":    craft(func(_ *auth.Claims, h map[string]any) { delete(h, "typ") }, jwt.SigningMethodHS256, secret),
			"typ JWT":        craft(func(_ *auth.Claims, h map[string]any) { h["typ"] = "JWT" }, jwt.SigningMethodHS256, secret),
			"unknown kid":    craft(func(_ *auth.Claims, h map[string]any) { h["kid"] = "00000000" }, jwt.SigningMethodHS256, secret),
			"unknown session": craft(func(c *auth.Claims, _ map[string]any) {
				c.SessionID = "6f1c7e8a-0000-4000-8000-000000000000"
			}, jwt.SigningMethodHS256, secret),
			"another member's subject": craft(func(c *auth.Claims, _ map[string]any) { c.Subject = other.ID }, jwt.SigningMethodHS256, secret),
			"without session":          craft(func(c *auth.Claims, _ map[string]any) { c.SessionID = "" }, jwt.SigningMethodHS256, secret),
			"garbage":                  "not.a.token",
		}
		for name, tok := range bad {
			t.Run(name, func(t *testing.T) {
				r := s.gql(t, tok, meQuery, nil)
				wantRefused(t, r, name)
				if string(r.Body) != string(loggedOut.Body) || r.Header.Get("WWW-Authenticate") != loggedOut.Header.Get("WWW-Authenticate") {
					t.Fatalf("answered %s (%q), a logged-out token %s (%q): every bad token must get the same answer",
						r, r.Header.Get("WWW-Authenticate"), loggedOut, loggedOut.Header.Get("WWW-Authenticate"))
				}
			})
		}
		t.Run("Basic credentials", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Basic bWVtYmVyOnB3")
			r := s.send(t, req)
			wantRefused(t, r, "Basic credentials")
			if string(r.Body) != string(loggedOut.Body) {
				t.Fatalf("Basic credentials answered %s, want %s", r, loggedOut)
			}
		})
		// The live session was never disturbed.
		s.do(t, live.Token, meQuery, nil, &me)
	})
}

// wrongCode is a login code of six digits that is not code.
func wrongCode(code string) string {
	last := code[len(code)-1] - '0'
	return code[:len(code)-1] + string(rune('0'+(last+1)%10))
}

func TestLoginCodeRequestsAreRateLimited(t *testing.T) {
	t.Parallel()
	const window = 15 * time.Minute
	// sameWindow runs f and reports whether it ran within one rate-limit
	// window, so a window boundary falling inside cannot fail the test.
	sameWindow := func(f func()) bool {
		start := time.Now()
		f()
		return time.Now().Truncate(window).Equal(start.Truncate(window))
	}
	request := func(t *testing.T, s *testServer, email string) *gqlResponse {
		return s.gql(t, "", `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": email})
	}
	wantLimited := func(t *testing.T, r *gqlResponse) {
		t.Helper()
		if r.Code() != "RATE_LIMITED" || r.HasData() {
			t.Fatalf("got %s, want RATE_LIMITED", r)
		}
		if s := r.Errors[0].Extensions.RetryAfterSeconds; s <= 0 || s > int(window/time.Second) {
			t.Fatalf("retryAfterSeconds %d, want 1 to %d", s, int(window/time.Second))
		}
	}

	t.Run("per email", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		for attempt := range 2 {
			m := s.addMember(t, db.RoleMember)
			stranger := fmt.Sprintf("stranger%d@example.org", attempt)
			var sixth, strangerSixth *gqlResponse
			ok := sameWindow(func() {
				for i := range db.LoginCodeEmailLimit.Max {
					if r := request(t, s, m.Email); string(r.Body) != `{"data":{"requestLoginCode":true}}` {
						t.Fatalf("request %d: %s", i+1, r)
					}
					if r := request(t, s, stranger); string(r.Body) != `{"data":{"requestLoginCode":true}}` {
						t.Fatalf("stranger's request %d: %s", i+1, r)
					}
				}
				sixth, strangerSixth = request(t, s, m.Email), request(t, s, stranger)
			})
			if !ok {
				continue
			}
			wantLimited(t, sixth)
			// Strangers are limited alike, so the limit tells nothing.
			wantLimited(t, strangerSixth)
			// The limit is per email: another address still gets a code.
			other := s.addMember(t, db.RoleMember)
			s.requestCode(t, other.Email)
			return
		}
		t.Fatalf("both tries crossed a rate-limit window")
	})

	t.Run("per client address", func(t *testing.T) {
		t.Parallel()
		for range 2 {
			// Each try has a server of its own, so its counters start at zero.
			s := startServer(t, func(env map[string]string) { env["RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR"] = "3" })
			m := s.addMember(t, db.RoleMember)
			var fourth, strangerFourth *gqlResponse
			ok := sameWindow(func() {
				for i, email := range []string{m.Email, "someone1@example.org", "someone2@example.org"} {
					if r := request(t, s, email); r.Code() != "" {
						t.Fatalf("request %d: %s", i+1, r)
					}
				}
				fourth, strangerFourth = request(t, s, m.Email), request(t, s, "one-more@example.org")
			})
			if ok {
				wantLimitedWithin(t, fourth, time.Hour)
				if diff := cmp.Diff(string(fourth.Body), string(strangerFourth.Body)); diff != "" {
					t.Fatalf("a member's refusal differs from a stranger's (-member +stranger):\n%s", diff)
				}
				return
			}
		}
		t.Fatalf("both tries crossed a rate-limit window")
	})
}

// wantLimitedWithin fails unless r is RATE_LIMITED, without data, asking
// to retry within window.
func wantLimitedWithin(t *testing.T, r *gqlResponse, window time.Duration) {
	t.Helper()
	if r.Code() != "RATE_LIMITED" || r.HasData() {
		t.Fatalf("got %s, want RATE_LIMITED", r)
	}
	if s := r.Errors[0].Extensions.RetryAfterSeconds; s <= 0 || s > int(window/time.Second) {
		t.Fatalf("retryAfterSeconds %d, want 1 to %d", s, int(window/time.Second))
	}
}

func TestLoginCodeVerificationsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	verify := func(t *testing.T, s *testServer, email, code string) *gqlResponse {
		return s.gql(t, "", `mutation($e: String!, $c: String!) { verifyLoginCode(email: $e, code: $c) { accessToken } }`,
			map[string]any{"e": email, "c": code})
	}
	for range 2 {
		s := startServer(t, func(env map[string]string) { env["RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR"] = "3" })
		m := s.addMember(t, db.RoleMember)
		code := s.requestCode(t, m.Email)
		start := time.Now()
		for i, email := range []string{m.Email, "stranger@example.org", "stranger@example.org"} {
			if r := verify(t, s, email, wrongCode(code)); r.Code() != "UNAUTHENTICATED" {
				t.Fatalf("try %d: %s, want UNAUTHENTICATED", i+1, r)
			}
		}
		member, stranger := verify(t, s, m.Email, code), verify(t, s, "stranger@example.org", code)
		if !time.Now().Truncate(time.Hour).Equal(start.Truncate(time.Hour)) {
			continue
		}
		// Past the limit even the right code is refused, as a stranger is.
		wantLimitedWithin(t, member, time.Hour)
		// The wait counts down by the second, and a second may tick between
		// the two answers; everything else is the same.
		if d := member.Errors[0].Extensions.RetryAfterSeconds - stranger.Errors[0].Extensions.RetryAfterSeconds; d < 0 || d > 1 {
			t.Fatalf("a member is told to wait %ds, a stranger a moment later %ds", member.Errors[0].Extensions.RetryAfterSeconds, stranger.Errors[0].Extensions.RetryAfterSeconds)
		}
		wait := regexp.MustCompile(`"retryAfterSeconds":\d+`)
		if diff := cmp.Diff(wait.ReplaceAllString(string(member.Body), "WAIT"), wait.ReplaceAllString(string(stranger.Body), "WAIT")); diff != "" {
			t.Fatalf("a member's refusal differs from a stranger's (-member +stranger):\n%s", diff)
		}
		return
	}
	t.Fatalf("both tries crossed a rate-limit window")
}
