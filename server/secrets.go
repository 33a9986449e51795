package main

import (
	"crypto/hmac"
	"crypto/sha256"
)

// pepper derives the key for login-code hashes from the token secret, so
// the two uses never share a key and operators manage one secret.
func pepper(secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("picketline login codes"))
	return mac.Sum(nil)
}
