package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// appotaPayStatusPath is the route of the status call; the escaped
// partnerRefId follows it.
const appotaPayStatusPath = "/appotapay/api/v1/service/bill/transaction/"

// appotaPayZone is AppotaPay's local time (Vietnam, UTC+7), in which its
// transaction times are written.
var appotaPayZone = time.FixedZone("ICT", 7*60*60)

// appotaPayMaxTTL bounds how far ahead a token may expire: a long-lived
// token is a standing credential, and AppotaPay's own generator uses 300 s.
const appotaPayMaxTTL = time.Hour

// serveAppotaPay answers AppotaPay's bill transaction status as seed 001
// and AppotaPay's security pages describe: HTTP 401 with an AppotaPay body
// when the X-APPOTAPAY-AUTH JWT does not authenticate the partner,
// otherwise the scripted outcome, signed with the secret key the way the
// docs list (amount, appotapayTransId, billAmount, errorCode, time).
func (s *Server) serveAppotaPay(w http.ResponseWriter, r *http.Request) {
	// The reference is the one escaped path segment after the route.
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), appotaPayStatusPath)
	ref, err := url.PathUnescape(escaped)
	if escaped == "" || strings.Contains(escaped, "/") || err != nil {
		http.NotFound(w, r)
		return
	}
	if code, message := s.appotaPayAuth(r.Header.Get("X-APPOTAPAY-AUTH")); code != 0 {
		appotaPayUnauthorized(w, code, message)
		return
	}
	o, ok := s.admit(w, r, AppotaPay, ref)
	if !ok {
		return
	}
	if s.serveGeneric(w, r, o) {
		return
	}
	key := s.creds.AppotaPaySecretKey
	tx := s.appotaPayTransaction(ref)
	switch o {
	case Success:
		writeJSON(w, http.StatusOK, s.appotaPayAnswer(key, ref, 0, "Success", tx))
	case Pending:
		// Both documented "check again later" codes, fixed per reference.
		code := 34 + int(fact(ref, "appotapay-pending", 0, 1))
		message := map[int]string{
			34: "Transaction is processing, please check again later",
			35: "Transaction is pending, please check again later",
		}[code]
		writeJSON(w, http.StatusOK, s.appotaPayAnswer(key, ref, code, message, tx))
	case Failed:
		writeJSON(w, http.StatusOK, s.appotaPayAnswer(key, ref, 33, "Transaction failed", tx))
	case NotFound, NotReceived:
		writeJSON(w, http.StatusOK, s.appotaPayAnswer(key, ref, 36, "Transaction is not found", nil))
	case UnknownCode:
		writeJSON(w, http.StatusOK, s.appotaPayAnswer(key, ref, 777, "Unknown error", nil))
	case AuthError:
		appotaPayUnauthorized(w, 14, "API Key is invalid")
	case WrongShape:
		writeJSON(w, http.StatusOK, map[string]any{
			"data": map[string]any{"status": "SUCCESS", "transaction": tx},
		})
	case BadSignature:
		// Signed, but not with the partner's secret key: what a forger
		// without it would have to do.
		writeJSON(w, http.StatusOK, s.appotaPayAnswer("forged-"+key, ref, 0, "Success", tx))
	case Unsigned:
		body := s.appotaPayAnswer(key, ref, 0, "Success", tx)
		delete(body, "signature")
		writeJSON(w, http.StatusOK, body)
	}
}

// appotaPayClaims are the claims APP-JWT documents.
type appotaPayClaims struct {
	jwt.RegisteredClaims        // iss: partner code, jti: API key + "-" + unix seconds, exp
	APIKey               string `json:"api_key"`
}

// appotaPayAuth checks an X-APPOTAPAY-AUTH value as AppotaPay documents
// it and returns 0, or the errorCode and message of the refusal. The docs
// show the token both with and without "Bearer ", so both are accepted.
func (s *Server) appotaPayAuth(header string) (code int, message string) {
	raw := header
	if len(raw) > len("Bearer ") && strings.EqualFold(raw[:len("Bearer ")], "Bearer ") {
		raw = raw[len("Bearer "):]
	}
	if raw == "" {
		return 2, "X-APPOTAPAY-AUTH is missing"
	}
	if s.creds.AppotaPaySecretKey == "" {
		return 11, "Partner is not found" // no account configured: nothing can authenticate
	}
	var c appotaPayClaims
	tok, err := jwt.ParseWithClaims(raw, &c,
		func(*jwt.Token) (any, error) { return []byte(s.creds.AppotaPaySecretKey), nil },
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	switch {
	case err != nil:
		return 2, "JWT is invalid or expired"
	case tok.Header["cty"] != "appotapay-api;v=1":
		return 2, "JWT cty must be appotapay-api;v=1"
	case c.Issuer != s.creds.AppotaPayPartnerCode:
		return 11, "Partner is not found"
	case c.APIKey != s.creds.AppotaPayAPIKey || !strings.HasPrefix(c.ID, s.creds.AppotaPayAPIKey+"-"):
		return 14, "API Key is invalid"
	case c.ExpiresAt.After(s.now().Add(appotaPayMaxTTL)):
		return 2, "JWT expires too far in the future"
	}
	return 0, ""
}

func appotaPayUnauthorized(w http.ResponseWriter, code int, message string) {
	writeJSON(w, http.StatusUnauthorized, map[string]any{"errorCode": code, "message": message})
}

// appotaPayTx is a status answer's transaction object. Its numbers are
// integers, so they encode exactly as they are signed.
type appotaPayTx struct {
	AppotapayTransID string `json:"appotapayTransId"`
	Amount           uint64 `json:"amount"`
	BillAmount       uint64 `json:"billAmount"`
	Time             string `json:"time"`
}

// appotaPayTransaction returns the transaction of ref: id and amounts
// stable per reference, time now in AppotaPay's "dd-MM-yyyy HH:mm:ss".
func (s *Server) appotaPayTransaction(ref string) *appotaPayTx {
	amount := 1000 * fact(ref, "appotapay-amount", 10, 2000)
	id := strconv.FormatUint(fact(ref, "appotapay-trans", 101_559_956_668_416, 3_656_158_440_062_975), 36) // 10 base-36 digits
	return &appotaPayTx{
		AppotapayTransID: "01" + strings.ToUpper(id),
		Amount:           amount,
		BillAmount:       amount,
		Time:             s.now().In(appotaPayZone).Format("02-01-2006 15:04:05"),
	}
}

// appotaPayAnswer builds a status answer with code and message, carrying
// tx and the bill it paid when tx is not nil, signed with key.
func (s *Server) appotaPayAnswer(key, ref string, code int, message string, tx *appotaPayTx) map[string]any {
	body := map[string]any{"errorCode": code, "message": message}
	if tx != nil {
		body["transaction"] = tx
		body["billDetail"] = []map[string]any{{
			"billNumber":              strconv.FormatUint(fact(ref, "appotapay-bill", 100_000, 999_999), 10),
			"period":                  s.now().In(appotaPayZone).Format("1/2006"),
			"amount":                  tx.BillAmount,
			"billCreated":             "",
			"billExpiry":              "",
			"billType":                "",
			"billOtherInfo":           "",
			"isPartialPaymentAllowed": false,
			"extraInfo":               "",
		}}
	}
	body["signature"] = appotaPaySign(key, code, tx)
	return body
}

// appotaPaySign signs a status answer as APP-SEC lists: HMAC-SHA256 in
// lowercase hex over amount, appotapayTransId, billAmount, errorCode and
// time, sorted by name, joined raw. Without a transaction its values are
// empty.
func appotaPaySign(key string, code int, tx *appotaPayTx) string {
	var amount, transID, billAmount, when string
	if tx != nil {
		amount, billAmount = strconv.FormatUint(tx.Amount, 10), strconv.FormatUint(tx.BillAmount, 10)
		transID, when = tx.AppotapayTransID, tx.Time
	}
	message := fmt.Sprintf("amount=%s&appotapayTransId=%s&billAmount=%s&errorCode=%d&time=%s",
		amount, transID, billAmount, code, when)
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(message))
	return hex.EncodeToString(h.Sum(nil))
}
