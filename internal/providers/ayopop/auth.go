package ayopop

import "github.com/golang-jwt/jwt/v5"

// token builds the TOKEN header of a status call: a compact JWS signed
// HS256 with the raw bytes of the API secret, whose claims are exactly the
// call's parameters (partnerId, refNumber), as Ayopop's token-generation
// page and every sample token show. No iat, exp or jti: the documents show
// none, and a server that compares the claims with the body would reject
// them.
//
// golang-jwt writes the header as {"alg":"HS256","typ":"JWT"} and the
// claims in key order, which is also the documented member order.
func token(secret []byte, partnerID, refNumber string) (string, error) {
	claims := jwt.MapClaims{"partnerId": partnerID, "refNumber": refNumber}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
