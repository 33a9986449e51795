// Package auth issues and checks access tokens and carries the
// authenticated Actor through a request's context.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token settings (RFC 8725 practice: one algorithm, fixed issuer and
// audience, required expiry, explicit type, small leeway).
const (
	Issuer     = "picketline"
	Audience   = "picketline-app"
	TokenType  = "at+jwt"
	DefaultTTL = 15 * time.Minute
	// MaxTTL is the longest lifetime (exp − iat) a token may claim; Parse
	// refuses longer ones even when correctly signed, so a leaked secret's
	// worst case or an operator's mistake cannot mint a token for months.
	MaxTTL         = 24 * time.Hour
	Leeway         = 30 * time.Second
	MinSecretBytes = 32
)

// ErrInvalidToken is every reason a token is refused. Callers answer all of
// them the same way so a client learns nothing from the difference.
var ErrInvalidToken = errors.New("invalid access token")

// Claims are what an access token says.
type Claims struct {
	jwt.RegisteredClaims
	// SessionID ties the token to a session that logout can revoke.
	SessionID string `json:"sid"`
}

// Tokens signs and verifies access tokens with HMAC-SHA256.
type Tokens struct {
	kid  string
	keys map[string][]byte
	ttl  time.Duration
	now  func() time.Time
}

// NewTokens returns Tokens signing with secret. now may be nil for the wall clock.
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the token secret must be at least %d bytes", MinSecretBytes)
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	sum := sha256.Sum256(secret)
	kid := hex.EncodeToString(sum[:4])
	return &Tokens{kid: kid, keys: map[string][]byte{kid: secret}, ttl: ttl, now: now}, nil
}

// Issue signs an access token for a member's session and says when it expires.
func (t *Tokens) Issue(memberID, sessionID string) (string, time.Time, error) {
	return t.IssueTTL(memberID, sessionID, t.ttl)
}

// IssueTTL is Issue with a lifetime of its own, for operators' tokens.
func (t *Tokens) IssueTTL(memberID, sessionID string, ttl time.Duration) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   memberID,
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		SessionID: sessionID,
	})
	tok.Header["typ"] = TokenType
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.keys[t.kid])
	return s, exp, err
}

// Parse verifies an access token and returns its claims, or ErrInvalidToken.
func (t *Tokens) Parse(token string) (*Claims, error) {
	var c Claims
	parsed, err := jwt.ParseWithClaims(token, &c, t.key,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil || !parsed.Valid || parsed.Header["typ"] != TokenType || c.Subject == "" || c.SessionID == "" ||
		c.IssuedAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxTTL {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

// key picks the verification key by kid from the fixed key set; a token
// never supplies its own key.
func (t *Tokens) key(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	k, ok := t.keys[kid]
	if !ok {
		return nil, ErrInvalidToken
	}
	return k, nil
}
