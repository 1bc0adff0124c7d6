package appotapay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// tokenTTL is how long a request JWT is valid. AppotaPay's own generator
// (AppotaPayInc/skills gen_jwt.py) uses 300 s. A token names no path, so a
// captured one opens every endpoint of the account until it expires: the
// lifetime should be short, yet long enough to absorb a few minutes of
// clock skew between us and AppotaPay.
const tokenTTL = 5 * time.Minute

// tokenHeader is the JWS header APP-JWT documents, in its member order; the
// cty member is AppotaPay's own and required.
const tokenHeader = `{"typ":"JWT","alg":"HS256","cty":"appotapay-api;v=1"}`

var tokenHeaderSegment = base64.RawURLEncoding.EncodeToString([]byte(tokenHeader))

// tokenClaims are the claims APP-JWT documents, in its order.
type tokenClaims struct {
	Issuer string `json:"iss"`     // partner code
	ID     string `json:"jti"`     // API key + "-" + unix seconds
	APIKey string `json:"api_key"` // API key
	Expiry int64  `json:"exp"`     // unix seconds
}

// token builds the X-APPOTAPAY-AUTH JWT at now: HS256 (HMAC-SHA256 over
// "header.payload", RFC 7518 §3.2) over the documented header and claims,
// keyed with the secret key.
func token(partnerCode, apiKey, secretKey string, now time.Time) (string, error) {
	claims, err := json.Marshal(tokenClaims{
		Issuer: partnerCode,
		ID:     apiKey + "-" + strconv.FormatInt(now.Unix(), 10),
		APIKey: apiKey,
		Expiry: now.Add(tokenTTL).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := tokenHeaderSegment + "." + base64.RawURLEncoding.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// signedMessage is the string a status (or pay) response signs: APP-SEC's
// rule (names sorted, name=value joined with '&', values raw) over its
// fixed fields, written in their sorted order. amount, appotapayTransId,
// billAmount and time come from tx, errorCode is the top-level code as
// written.
func signedMessage(errorCode string, tx transaction) string {
	return "amount=" + tx.Amount.String() +
		"&appotapayTransId=" + tx.AppotapayTransID.String() +
		"&billAmount=" + tx.BillAmount.String() +
		"&errorCode=" + errorCode +
		"&time=" + tx.Time.String()
}

var (
	errUnsigned  = errors.New("response carries no signature")
	errNotHex    = errors.New("signature is not hex")
	errWrongSign = errors.New("signature does not match")
)

// verify checks a response's signature, lowercase hex HMAC-SHA256 keyed
// with the secret key, over the values signedMessage joins. The comparison
// is constant-time: a timing difference would let an attacker forge a
// signature byte by byte.
func verify(secretKey providers.Secret, errorCode string, tx transaction, signature providers.Text) error {
	s, ok := signature.Get()
	if !ok || s == "" {
		return errUnsigned
	}
	got, err := hex.DecodeString(s)
	if err != nil {
		return errNotHex
	}
	mac := hmac.New(sha256.New, []byte(secretKey.Reveal()))
	mac.Write([]byte(signedMessage(errorCode, tx)))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errWrongSign
	}
	return nil
}
