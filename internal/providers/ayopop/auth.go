package ayopop

import (
	"crypto/sha256"
	"encoding/base64"
	"hash"
)

// tokenHeaderSegment is the JWS header {"alg":"HS256","typ":"JWT"}, as
// Ayopop's token-generation page writes it, base64url-encoded once.
var tokenHeaderSegment = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// token builds the TOKEN header of a status call: a compact JWS signed
// HS256 with the raw bytes of the API secret, whose claims are exactly the
// call's parameters, the encoded request body (partnerId, refNumber), as
// Ayopop's token-generation page and every sample token show. No iat, exp
// or jti: the documents show none, and a server that compares the claims
// with the body would reject them.
//
// HS256 is HMAC-SHA256 over "header.payload" (RFC 7518 §3.2). mac is that
// HMAC keyed with the secret, passed in so that a caller can reuse one
// instead of keying a new one per call; token resets it before use.
func token(mac hash.Hash, claims []byte) string {
	enc := base64.RawURLEncoding
	tok := make([]byte, 0, len(tokenHeaderSegment)+1+enc.EncodedLen(len(claims))+1+enc.EncodedLen(sha256.Size))
	tok = append(tok, tokenHeaderSegment...)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, claims)
	mac.Reset()
	mac.Write(tok)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, mac.Sum(nil))
	return string(tok)
}
