// Package appotapay checks bill-payment status with AppotaPay:
// GET {base}/api/v1/service/bill/transaction/{partnerRefId}, authenticated
// with an HS256 JWT in X-APPOTAPAY-AUTH, as seed 001 documents. AppotaPay
// signs its answer with HMAC-SHA256; no success, failure or not-found is
// believed unless that signature verifies.
package appotapay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// Name is AppotaPay's provider name in subjects, requests and metrics.
const Name = "appotapay"

// DevURL is AppotaPay's development base URL; production is
// https://gateway.appotapay.com.
const DevURL = "https://gateway.dev.appotapay.com"

// statusPath is appended to the base URL, followed by the escaped reference.
const statusPath = "/api/v1/service/bill/transaction/"

// Config holds an AppotaPay partner account.
type Config struct {
	// BaseURL is scheme, host and optional path prefix, e.g. DevURL.
	BaseURL string
	// PartnerCode is the JWT's iss claim.
	PartnerCode string
	APIKey      providers.Secret
	// SecretKey signs the request JWT and verifies response signatures.
	SecretKey providers.Secret
}

// Client implements providers.Provider for AppotaPay.
type Client struct {
	endpoint    string // base URL + statusPath
	partnerCode string
	apiKey      providers.Secret
	secretKey   providers.Secret
	http        *http.Client
	now         func() time.Time // token times and Retry-After; tests pin it
}

var _ providers.Provider = (*Client)(nil)

// New validates cfg and returns a client that makes its calls with hc.
// Every problem is reported, joined in one error.
func New(cfg Config, hc *http.Client) (*Client, error) {
	var errs []error
	endpoint, err := providers.Endpoint(cfg.BaseURL, statusPath)
	if err != nil {
		errs = append(errs, fmt.Errorf("appotapay: base URL: %w", err))
	}
	if cfg.PartnerCode == "" {
		errs = append(errs, errors.New("appotapay: partner code is required"))
	}
	if !cfg.APIKey.IsSet() {
		errs = append(errs, errors.New("appotapay: API key is required"))
	}
	if !cfg.SecretKey.IsSet() {
		errs = append(errs, errors.New("appotapay: secret key is required"))
	}
	if hc == nil {
		errs = append(errs, errors.New("appotapay: HTTP client is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Client{
		endpoint:    endpoint,
		partnerCode: cfg.PartnerCode,
		apiKey:      cfg.APIKey,
		secretKey:   cfg.SecretKey,
		http:        hc,
		now:         time.Now,
	}, nil
}

// Name returns "appotapay".
func (*Client) Name() string { return Name }

// Status makes one status call for q.Reference.
func (c *Client) Status(ctx context.Context, q providers.Query) (providers.Result, error) {
	if q.Reference == "" {
		// The path would name the collection, not a transaction.
		e := providers.Errorf(Name, providers.ErrRejected, "empty reference")
		e.Kind = providers.BadRequest
		return providers.Result{}, e
	}
	tok, err := token(c.partnerCode, c.apiKey.Reveal(), c.secretKey.Reveal(), c.now())
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "sign request token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+pathSegment(q.Reference), nil)
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	req.Header.Set("X-APPOTAPAY-AUTH", "Bearer "+tok)
	status, raw, err := providers.Exchange(c.http, req, Name, c.now)
	if err != nil {
		// AppotaPay explains a 4xx in its usual body (401: which credential;
		// 400: errorCode 1); keep its code and message for the operator.
		var e *providers.Error
		var body statusResponse
		if errors.As(err, &e) && providers.Unmarshal(raw, &body) == nil {
			if code, ok := errorCode(body.ErrorCode); ok {
				e.Code, e.Message = code, body.Message.String()
			}
		}
		return providers.Result{}, err
	}
	return parse(raw, status, c.secretKey)
}

// pathSegment escapes a reference as exactly one path segment. A reference
// of "." or ".." would be a dot-segment that servers and proxies remove
// (RFC 3986 §5.2.4), so its dots are percent-encoded; %2E means the same
// character to anyone who decodes, but is not a dot-segment.
func pathSegment(reference string) string {
	if reference == "." || reference == ".." {
		return strings.Repeat("%2E", len(reference))
	}
	return url.PathEscape(reference)
}

// statusResponse is AppotaPay's answer body, a status answer or the
// explanation of a 4xx. Member names match exactly and a repeated one
// fails the decoding, so the members deciding a verdict are the ones
// AppotaPay signed, never look-alikes in another case or a second copy.
// errorCode and transaction are kept raw: parse checks their form once it
// knows whether they matter.
type statusResponse struct {
	ErrorCode   jsontext.Value `json:"errorCode"`
	Message     providers.Text `json:"message"`
	Signature   providers.Text `json:"signature"`
	Transaction jsontext.Value `json:"transaction"`
	BillDetail  billDetail     `json:"billDetail"`
}

// errorCode returns the errorCode member when it is a JSON integer
// written canonically (no minus zero, fraction, exponent or quotes), so
// that its text is the one AppotaPay signed.
func errorCode(raw jsontext.Value) (string, bool) {
	n, err := strconv.Atoi(string(raw))
	code := strconv.Itoa(n)
	return code, err == nil && code == string(raw)
}

// transaction holds the members of the transaction object that AppotaPay
// signs, as text: numbers by their literal, strings decoded, absent "".
type transaction struct {
	Amount           providers.Text `json:"amount"`
	AppotapayTransID providers.Text `json:"appotapayTransId"`
	BillAmount       providers.Text `json:"billAmount"`
	Time             providers.Text `json:"time"`
}

// billDetail is the billDetail member, documented as an array of bills and
// described as "JSON string is array", so both are read. Only the
// documented members of each bill are passed on; anything unreadable is
// left out, never failing the answer, since billDetail is not signed and
// decides nothing.
type billDetail []bill

// UnmarshalJSONFrom reads one value of any kind from dec.
func (b *billDetail) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*b = nil
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	opts := dec.Options()
	if raw.Kind() == '"' {
		var s string
		_ = json.Unmarshal(raw, &s, opts) // a JSON string always decodes
		raw = jsontext.Value(s)
	}
	var items []jsontext.Value
	if json.Unmarshal(raw, &items, opts) != nil {
		return nil
	}
	for _, item := range items {
		// An item that is not an object, or has no documented member, is
		// no bill.
		var one bill
		if json.Unmarshal(item, &one, opts) == nil && one != (bill{}) {
			*b = append(*b, one)
		}
	}
	return nil
}

// bill is one element of billDetail, as read and as passed on, in key
// order.
type bill struct {
	Amount                  providers.Amount `json:"amount,omitzero"`
	BillCreated             providers.Text   `json:"billCreated,omitzero"`
	BillExpiry              providers.Text   `json:"billExpiry,omitzero"`
	BillNumber              providers.Text   `json:"billNumber,omitzero"`
	BillOtherInfo           providers.Text   `json:"billOtherInfo,omitzero"`
	BillType                providers.Text   `json:"billType,omitzero"`
	ExtraInfo               providers.Text   `json:"extraInfo,omitzero"`
	IsPartialPaymentAllowed providers.Bool   `json:"isPartialPaymentAllowed,omitzero"`
	Period                  providers.Text   `json:"period,omitzero"`
}

// details are the members of an answer passed on in Result.Details, in
// key order. billAmount and time are signed: they are set only when the
// signature verified.
type details struct {
	BillAmount providers.Amount `json:"billAmount,omitzero"`
	BillDetail billDetail       `json:"billDetail,omitempty"`
	Time       providers.Text   `json:"time,omitzero"`
}

// parse reads a status response body (HTTP 2xx) and authenticates it with
// secretKey.
func parse(raw []byte, httpStatus int, secretKey providers.Secret) (providers.Result, error) {
	var r *statusResponse
	if e := providers.DecodeJSON(Name, httpStatus, raw, &r); e != nil {
		return providers.Result{}, e
	}
	if r == nil {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "body is null")
	}
	if len(r.ErrorCode) == 0 {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no errorCode")
	}
	code, ok := errorCode(r.ErrorCode)
	if !ok {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "errorCode is not an integer")
	}
	message := r.Message.String()
	fail := func(cause error, kind providers.Kind, format string, args ...any) (providers.Result, error) {
		e := providers.Errorf(Name, cause, format, args...)
		e.Kind, e.HTTPStatus, e.Code, e.Message = kind, httpStatus, code, message
		return providers.Result{}, e
	}

	n, _ := strconv.Atoi(code)
	v, known := codes[n]
	if !known {
		return fail(providers.ErrUnknownCode, providers.Retryable, "errorCode not in AppotaPay's table")
	}
	if v.cause != nil {
		// Errors settle nothing, so they need no signature.
		return fail(v.cause, v.kind, "")
	}

	var tx transaction
	switch r.Transaction.Kind() {
	case '{':
		_ = providers.Unmarshal(r.Transaction, &tx) // its members take any kind
	case 'n', 0: // null or absent
	default:
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "transaction is not an object")
	}
	sigErr := verify(secretKey, code, tx, r.Signature)
	if sigErr != nil && v.state != providers.StatePending {
		// Success, failed and not found settle the payment or lead to it.
		// Nothing of an unauthenticated body is passed on, not even its
		// code, which an attacker chose.
		e := providers.Errorf(Name, providers.ErrSignature, "%v", sigErr)
		e.HTTPStatus = httpStatus
		return providers.Result{}, e
	}
	// A pending answer is accepted unsigned: it only delays, and whoever can
	// forge one can as well drop the answer. Its signed values are passed on
	// only when the signature verified, so an expired event never reports
	// an unauthenticated transaction id or amount.
	if sigErr != nil {
		tx = transaction{}
	}
	if v.state == providers.StateSuccess && (tx.AppotapayTransID.String() == "" || tx.Amount.Amount().IsZero()) {
		// A success must name what was paid. Without a transaction the
		// signature covers only "errorCode=0", the same for every payment
		// of the account, so it would prove nothing about this one.
		return fail(providers.ErrBadResponse, providers.Retryable, "success without transaction id and amount")
	}
	// AppotaPay reports no status besides errorCode, so Status stays empty
	// rather than repeat Code under another name.
	res := providers.Result{
		State:         v.state,
		Code:          code,
		Message:       message,
		TransactionID: tx.AppotapayTransID.String(),
		Amount:        tx.Amount.Amount().Number(),
		Details:       providers.Details(details{BillAmount: tx.BillAmount.Amount(), BillDetail: r.BillDetail, Time: tx.Time}),
	}
	if res.Amount != "" {
		res.Currency = "VND"
	}
	return res, nil
}
