package appotapay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// tokenTTL is how long a request JWT is valid. AppotaPay's own generator
// (AppotaPayInc/skills gen_jwt.py) uses 300 s. A token is minted for each
// call and names no path, so a captured one opens every endpoint of the
// account until it expires: the lifetime should be short, yet long enough
// to absorb a few minutes of clock skew between us and AppotaPay.
const tokenTTL = 5 * time.Minute

// tokenHeader is the JWS header APP-JWT documents, in its member order. The
// cty member is AppotaPay's own and required; golang-jwt builds headers
// from a map, which would sort the members, so the segment is written here.
const tokenHeader = `{"typ":"JWT","alg":"HS256","cty":"appotapay-api;v=1"}`

var tokenHeaderSegment = base64.RawURLEncoding.EncodeToString([]byte(tokenHeader))

// tokenClaims are the claims APP-JWT documents, in its order.
type tokenClaims struct {
	Issuer string `json:"iss"`     // partner code
	ID     string `json:"jti"`     // API key + "-" + unix seconds
	APIKey string `json:"api_key"` // API key
	Expiry int64  `json:"exp"`     // unix seconds
}

// token builds the X-APPOTAPAY-AUTH JWT at now: HS256 over the documented
// header and claims, keyed with the secret key.
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
	sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(secretKey))
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// param is one signed field: its name and its value as written.
type param struct{ name, value string }

// canonical joins params the way APP-SEC signs them: names sorted, each as
// name=value, joined with '&', values raw (no escaping). A slice rather
// than a map keeps the work the same on every call.
func canonical(params []param) string {
	sorted := slices.SortedStableFunc(slices.Values(params), func(a, b param) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for i, p := range sorted {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// mac is the raw HMAC-SHA256 of message keyed with the secret key.
func mac(secretKey, message string) []byte {
	h := hmac.New(sha256.New, []byte(secretKey))
	h.Write([]byte(message))
	return h.Sum(nil)
}

// sign returns AppotaPay's signature of params: lowercase hex HMAC-SHA256
// of their canonical string.
func sign(secretKey string, params []param) string {
	return hex.EncodeToString(mac(secretKey, canonical(params)))
}

// signedFields are the values a status (or pay) response signs: amount,
// appotapayTransId, billAmount and time from transaction, errorCode from the
// top level, each as written in the JSON (numbers by their literal,
// strings decoded). Absent values are empty strings.
func signedFields(errorCode string, tx map[string]json.RawMessage) []param {
	params := make([]param, 0, 5)
	for _, name := range []string{"amount", "appotapayTransId", "billAmount", "time"} {
		v, _ := scalar(tx, name)
		params = append(params, param{name, v})
	}
	return append(params, param{"errorCode", errorCode})
}

var (
	errUnsigned  = errors.New("response carries no signature")
	errNotHex    = errors.New("signature is not hex")
	errWrongSign = errors.New("signature does not match")
)

// verify checks a response's signature against params. The comparison is
// constant-time: a timing difference would let an attacker forge a
// signature byte by byte.
func verify(secretKey string, params []param, signature json.RawMessage) error {
	s, ok := providers.Scalar(signature)
	if !ok || s == "" {
		return errUnsigned
	}
	got, err := hex.DecodeString(s)
	if err != nil {
		return errNotHex
	}
	if !hmac.Equal(got, mac(secretKey, canonical(params))) {
		return errWrongSign
	}
	return nil
}
