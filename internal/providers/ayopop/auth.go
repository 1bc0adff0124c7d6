package ayopop

import (
	"encoding/base64"

	"github.com/golang-jwt/jwt/v5"
)

// tokenHeaderSegment is the JWS header {"alg":"HS256","typ":"JWT"}, as
// Ayopop's token-generation page writes it, base64url-encoded once.
var tokenHeaderSegment = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// token builds the TOKEN header of a status call: a compact JWS signed
// HS256 with the raw bytes of the API secret, whose claims are exactly the
// call's parameters, the encoded statusRequest body (partnerId, refNumber),
// as Ayopop's token-generation page and every sample token show. No iat,
// exp or jti: the documents show none, and a server that compares the
// claims with the body would reject them.
func token(secret, claims []byte) (string, error) {
	signing := tokenHeaderSegment + "." + base64.RawURLEncoding.EncodeToString(claims)
	sig, err := jwt.SigningMethodHS256.Sign(signing, secret)
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
