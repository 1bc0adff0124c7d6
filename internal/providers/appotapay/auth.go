package appotapay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// tokenTTL is how long a request JWT is valid. AppotaPay's own generator
// (AppotaPayInc/skills gen_jwt.py) uses 300 s. A token names no path, so a
// captured one opens every endpoint of the account until it expires: the
// lifetime should be short, yet long enough to absorb a few minutes of
// clock skew between us and AppotaPay.
const tokenTTL = 5 * time.Minute

// tokenReuse is how long a minted token is sent again instead of minting
// one per call. A token reused no longer than this still has over 4
// minutes of tokenTTL left for clock skew.
const tokenReuse = 30 * time.Second

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

// mintedToken is a request token, as the X-APPOTAPAY-AUTH header's value
// ("Bearer " and the token), and the time it was minted at. The header
// value is shared by every call that sends the token, none of which
// modifies it.
type mintedToken struct {
	header []string
	minted time.Time
}

// authHeader returns the X-APPOTAPAY-AUTH header for a call at now: the
// last token minted, while it is younger than tokenReuse, or a new one.
// Concurrent calls may each mint one; every one of them is valid.
func (c *Client) authHeader(now time.Time) ([]string, error) {
	if t := c.lastToken.Load(); t != nil {
		// A negative age is a clock set back: re-mint, as the old token's
		// jti and exp are ahead of it.
		if age := now.Sub(t.minted); age >= 0 && age < tokenReuse {
			return t.header, nil
		}
	}
	tok, err := token(c.partnerCode, c.apiKey.Reveal(), c.secretKey.Reveal(), now)
	if err != nil {
		return nil, err
	}
	header := []string{"Bearer " + tok}
	c.lastToken.Store(&mintedToken{header: header, minted: now})
	return header, nil
}

// signedMessage appends to dst the string a status (or pay) response
// signs: APP-SEC's rule (names sorted, name=value joined with '&', values
// raw) over its fixed fields, written in their sorted order. amount,
// appotapayTransId, billAmount and time come from tx, errorCode is the
// top-level code as written.
func signedMessage(dst []byte, errorCode string, tx *transaction) []byte {
	dst = append(dst, "amount="...)
	dst = append(dst, tx.Amount.String()...)
	dst = append(dst, "&appotapayTransId="...)
	dst = append(dst, tx.AppotapayTransID.String()...)
	dst = append(dst, "&billAmount="...)
	dst = append(dst, tx.BillAmount.String()...)
	dst = append(dst, "&errorCode="...)
	dst = append(dst, errorCode...)
	dst = append(dst, "&time="...)
	return append(dst, tx.Time.String()...)
}

var (
	errUnsigned  = errors.New("response carries no signature")
	errNotHex    = errors.New("signature is not hex")
	errWrongSign = errors.New("signature does not match")
)

// answerMACs holds HMAC-SHA256 hashes keyed with the secret key, for
// verify: keying one costs eight allocations, and Reset returns a used one
// to its keyed state.
type answerMACs struct{ pool sync.Pool }

func newAnswerMACs(secretKey string) *answerMACs {
	key := []byte(secretKey)
	m := &answerMACs{}
	m.pool.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

// verify checks a response's signature, lowercase hex HMAC-SHA256 keyed
// with the secret key, over the values signedMessage joins. The comparison
// is constant-time: a timing difference would let an attacker forge a
// signature byte by byte.
func verify(macs *answerMACs, errorCode string, tx *transaction, signature providers.Text) error {
	s, ok := signature.Get()
	if !ok || s == "" {
		return errUnsigned
	}
	got, err := hex.DecodeString(s)
	if err != nil {
		return errNotHex
	}
	// Sized for the documented values, so the message is built without
	// growing; longer ones still fit by reallocating. The MAC then reuses
	// it: Write keeps nothing of the message.
	var buf [192]byte
	h := macs.pool.Get().(hash.Hash)
	h.Write(signedMessage(buf[:0], errorCode, tx))
	match := hmac.Equal(got, h.Sum(buf[:0]))
	h.Reset()
	macs.pool.Put(h)
	if !match {
		return errWrongSign
	}
	return nil
}
