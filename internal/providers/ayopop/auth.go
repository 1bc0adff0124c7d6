package ayopop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// tokenHeaderSegment is the JWS header {"alg":"HS256","typ":"JWT"}, as
// Ayopop's token-generation page writes it, base64url-encoded.
var tokenHeaderSegment = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// token builds the TOKEN header of a status call: a compact JWS signed
// HS256 (HMAC-SHA256 over "header.payload", RFC 7518 §3.2) with the raw
// bytes of the API secret, whose claims are exactly the call's parameters,
// the encoded request body (partnerId, refNumber), as Ayopop's
// token-generation page and every sample token show. No iat, exp or jti:
// the documents show none, and a server that compares the claims with the
// body would reject them.
func token(secret string, claims []byte) string {
	signing := tokenHeaderSegment + "." + base64.RawURLEncoding.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
