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
	"sync/atomic"
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
	lastToken   atomic.Pointer[mintedToken]
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
	tok, err := c.requestToken(c.now())
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "sign request token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+pathSegment(q.Reference), nil)
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	// Canonical keys, assigned: Header.Set would canonicalise them on
	// every call.
	req.Header["X-Appotapay-Auth"] = []string{"Bearer " + tok}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"application/json"}

	buf := providers.GetBuffer()
	defer providers.PutBuffer(buf)
	resp, raw, err := providers.Exchange(c.http, req, Name, buf)
	if err != nil {
		return providers.Result{}, err
	}
	if e := providers.CheckHTTPStatus(Name, resp, c.now()); e != nil {
		// AppotaPay explains a 4xx in its usual body (401: which credential;
		// 400: errorCode 1); keep its code and message for the operator.
		var body statusResponse
		if providers.DecodeJSON(Name, resp.StatusCode, raw, &body) == nil {
			if code, ok := body.ErrorCode.Get(); ok {
				e.Code, e.Message = code, body.Message.String()
			}
		}
		return providers.Result{}, e
	}
	return parse(raw, resp.StatusCode, c.secretKey.Reveal())
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
// explanation of a 4xx. DecodeJSON matches member names exactly, so the
// members deciding a verdict are the ones AppotaPay signed, never
// look-alikes in another case; a repeated member counts by its last value.
type statusResponse struct {
	ErrorCode   errorCode         `json:"errorCode"`
	Message     providers.Text    `json:"message"`
	Signature   providers.Text    `json:"signature"`
	Transaction transactionMember `json:"transaction"`
	BillDetail  billDetail        `json:"billDetail"`
}

// errorCode is the errorCode member, which decides the verdict, read
// strictly: a JSON integer written canonically (no plus sign, leading
// zero, fraction, exponent or quotes), so that its text is the one
// AppotaPay signed.
type errorCode struct {
	text      string // set when canonical
	present   bool
	canonical bool
}

// UnmarshalJSONFrom reads one value of any kind from dec; one that is not
// a canonical integer is reported by parse, not as a decoding failure.
func (c *errorCode) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	*c = errorCode{present: true}
	n, err := strconv.Atoi(string(raw))
	if text := strconv.Itoa(n); err == nil && text == string(raw) {
		c.text, c.canonical = text, true
	}
	return nil
}

// Get returns the code and whether it was a canonical integer.
func (c errorCode) Get() (string, bool) { return c.text, c.canonical }

// transaction holds the members of the transaction object that AppotaPay
// signs, as text: numbers by their literal, strings decoded, absent "".
type transaction struct {
	Amount           providers.Text `json:"amount"`
	AppotapayTransID providers.Text `json:"appotapayTransId"`
	BillAmount       providers.Text `json:"billAmount"`
	Time             providers.Text `json:"time"`
}

// transactionMember is the transaction member: an object, null (read as
// absent), or a value of another kind, which parse reports only once
// errorCode says the transaction matters.
type transactionMember struct {
	transaction
	notObject bool
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (m *transactionMember) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	// A repeated member replaces the earlier one whole; decoding into the
	// same struct again would merge the two objects, and the values
	// checked against the signature would then be ones no object held.
	*m = transactionMember{}
	kind := dec.PeekKind()
	if kind == '{' {
		return json.UnmarshalDecode(dec, &m.transaction)
	}
	m.notObject = kind != 'n'
	return dec.SkipValue()
}

// billDetail is the billDetail member, documented as an array of bills and
// described as "JSON string is array", so both are read. Only the
// documented members of each bill are passed on; anything unreadable is
// left out, never failing the answer, since billDetail is not signed and
// decides nothing.
type billDetail []billItem

// UnmarshalJSONFrom reads one value of any kind from dec.
func (b *billDetail) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*b = nil
	var items []billItem
	switch dec.PeekKind() {
	case '[':
		if err := json.UnmarshalDecode(dec, &items); err != nil {
			return err
		}
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		// The string's own content is decoded as leniently as the body.
		if json.Unmarshal([]byte(tok.String()), &items, dec.Options()) != nil {
			return nil
		}
	default:
		return dec.SkipValue()
	}
	*b = items
	return nil
}

// add writes the bills under name, each with the members that were read,
// when any bill has one.
func (b billDetail) add(d *providers.Details, name string) {
	d.Objects(name, len(b), func(i int, obj *providers.Details) { b[i].add(obj) })
}

// billItem is one element of billDetail: a bill object, or a value of
// another kind, which leaves it empty.
type billItem struct {
	BillNumber              providers.Text `json:"billNumber"`
	Period                  providers.Text `json:"period"`
	Amount                  providers.Text `json:"amount"`
	BillCreated             providers.Text `json:"billCreated"`
	BillExpiry              providers.Text `json:"billExpiry"`
	BillType                providers.Text `json:"billType"`
	BillOtherInfo           providers.Text `json:"billOtherInfo"`
	IsPartialPaymentAllowed jsontext.Value `json:"isPartialPaymentAllowed"`
	ExtraInfo               providers.Text `json:"extraInfo"`
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (b *billItem) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' {
		return dec.SkipValue()
	}
	// The conversion drops this method, so the members are decoded as
	// plain struct fields.
	type members billItem
	return json.UnmarshalDecode(dec, (*members)(b))
}

// add writes the members of b that were read, in key order.
func (b *billItem) add(bill *providers.Details) {
	bill.Amount("amount", b.Amount)
	bill.Text("billCreated", b.BillCreated)
	bill.Text("billExpiry", b.BillExpiry)
	bill.Text("billNumber", b.BillNumber)
	bill.Text("billOtherInfo", b.BillOtherInfo)
	bill.Text("billType", b.BillType)
	bill.Text("extraInfo", b.ExtraInfo)
	switch string(b.IsPartialPaymentAllowed) {
	case "true":
		bill.Bool("isPartialPaymentAllowed", true)
	case "false":
		bill.Bool("isPartialPaymentAllowed", false)
	}
	bill.Text("period", b.Period)
}

// parse reads a status response body (HTTP 2xx) and authenticates it with
// secretKey.
func parse(raw []byte, httpStatus int, secretKey string) (providers.Result, error) {
	var r *statusResponse
	if e := providers.DecodeJSON(Name, httpStatus, raw, &r); e != nil {
		return providers.Result{}, e
	}
	if r == nil {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "body is null")
	}
	if !r.ErrorCode.present {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no errorCode")
	}
	code, ok := r.ErrorCode.Get()
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

	if r.Transaction.notObject {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "transaction is not an object")
	}
	tx := &r.Transaction.transaction
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
	trusted := sigErr == nil

	// AppotaPay reports no status besides errorCode, so Status stays empty
	// rather than repeat Code under another name.
	res := providers.Result{State: v.state, Code: code, Message: message}
	var details providers.Details // in key order
	if trusted {
		res.TransactionID = tx.AppotapayTransID.String()
		if amount, ok := tx.Amount.Amount(); ok {
			res.Amount, res.Currency = amount, "VND"
		}
		details.Amount("billAmount", tx.BillAmount)
	}
	if v.state == providers.StateSuccess && (res.TransactionID == "" || res.Amount == "") {
		// A success must name what was paid. Without a transaction the
		// signature covers only "errorCode=0", the same for every payment
		// of the account, so it would prove nothing about this one.
		return fail(providers.ErrBadResponse, providers.Retryable, "success without transaction id and amount")
	}
	r.BillDetail.add(&details, "billDetail")
	if trusted {
		details.Text("time", tx.Time)
	}
	res.Details = details.JSON()
	return res, nil
}
