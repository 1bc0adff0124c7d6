// Package appotapay checks bill-payment status with AppotaPay:
// GET {base}/api/v1/service/bill/transaction/{partnerRefId}, authenticated
// with an HS256 JWT in X-APPOTAPAY-AUTH, as seed 001 documents. AppotaPay
// signs its answer with HMAC-SHA256; no success, failure or not-found is
// believed unless that signature verifies.
package appotapay

import (
	"bytes"
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
	answerMACs  *answerMACs // keyed with secretKey
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
		answerMACs:  newAnswerMACs(cfg.SecretKey.Reveal()),
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
	auth, err := c.authHeader(c.now())
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "sign request token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+pathSegment(q.Reference), nil)
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	// Canonical keys, assigned: Header.Set would canonicalise them on
	// every call.
	req.Header["X-Appotapay-Auth"] = auth
	providers.SetJSONHeaders(req.Header)

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
		if providers.Decode(Name, resp.StatusCode, raw, &body, body.member) == nil {
			if code, ok := body.ErrorCode.Get(); ok {
				e.Code, e.Message = code, body.Message.String()
			}
		}
		return providers.Result{}, e
	}
	return parse(raw, resp.StatusCode, c.answerMACs)
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
// providers.Decode reads it with member instead, which
// FuzzWalkMatchesDecodeJSON holds to DecodeJSON's result.
type statusResponse struct {
	ErrorCode   errorCode         `json:"errorCode"`
	Message     providers.Text    `json:"message"`
	Signature   providers.Text    `json:"signature"`
	Transaction transactionMember `json:"transaction"`
	BillDetail  billDetail        `json:"billDetail"`
}

// member reads one member of the answer for providers.Decode. DecodeJSON
// refuses no member of a valid object (every member takes any kind), so
// the walk never returns ErrUnexpectedKind; it stops only where Members
// cannot read a name, which leaves the body to DecodeJSON.
func (r *statusResponse) member(name, value string) error {
	switch name {
	case "errorCode":
		r.ErrorCode.setJSON(value)
	case "message":
		r.Message.SetJSON(value)
	case "signature":
		r.Signature.SetJSON(value)
	case "transaction":
		return r.Transaction.setJSON(value)
	case "billDetail":
		return r.BillDetail.setJSON(value)
	}
	return nil
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

// setJSON is UnmarshalJSONFrom for the walk. The text kept is raw itself,
// equal to the one UnmarshalJSONFrom formats, and is compared without
// allocating.
func (c *errorCode) setJSON(raw string) {
	*c = errorCode{present: true}
	var buf [20]byte
	if n, err := strconv.Atoi(raw); err == nil && string(strconv.AppendInt(buf[:0], int64(n), 10)) == raw {
		c.text, c.canonical = raw, true
	}
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

// setJSON is UnmarshalJSONFrom for the walk: it too replaces an earlier
// transaction whole.
func (m *transactionMember) setJSON(raw string) error {
	*m = transactionMember{}
	switch raw[0] {
	case '{':
		return providers.Members(raw, m.transaction.member)
	case 'n':
	default:
		m.notObject = true
	}
	return nil
}

// member reads one member of the transaction object.
func (tx *transaction) member(name, value string) error {
	var t *providers.Text
	switch name {
	case "amount":
		t = &tx.Amount
	case "appotapayTransId":
		t = &tx.AppotapayTransID
	case "billAmount":
		t = &tx.BillAmount
	case "time":
		t = &tx.Time
	default:
		return nil
	}
	t.SetJSON(value)
	return nil
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

// setJSON is UnmarshalJSONFrom for the walk.
func (b *billDetail) setJSON(raw string) error {
	*b = nil
	switch raw[0] {
	case '[':
		return b.setArray(raw)
	case '"':
		// The content as tok.String() unquotes it (invalid UTF-8 as
		// U+FFFD), read only when it is valid JSON holding an array:
		// for null json.Unmarshal leaves the slice nil, and for another
		// kind or invalid JSON it fails, so billDetail stays out.
		content, _ := jsontext.AppendUnquote(nil, raw)
		content = bytes.Trim(content, " \t\n\r")
		if len(content) > 0 && content[0] == '[' && providers.ValidJSON(content) {
			return b.setArray(string(content))
		}
	}
	return nil
}

// setArray reads arr, a JSON array, into b in one allocation. An empty
// array gives an empty slice, not nil, as encoding/json/v2 decodes [].
func (b *billDetail) setArray(arr string) error {
	n := 0
	_ = providers.Elements(arr, func(string) error { n++; return nil })
	*b = make(billDetail, n)
	i := 0
	return providers.Elements(arr, func(value string) error {
		item := &(*b)[i]
		i++
		if value[0] != '{' {
			return nil // another kind leaves the bill empty
		}
		return providers.Members(value, item.member)
	})
}

// add writes the bills under name, each with the members that were read,
// when any bill has one.
func (b billDetail) add(d *providers.Details, name string) {
	d.Objects(name, len(b), func(i int) { b[i].add(d) })
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

// member reads one member of a bill object.
func (b *billItem) member(name, value string) error {
	var t *providers.Text
	switch name {
	case "billNumber":
		t = &b.BillNumber
	case "period":
		t = &b.Period
	case "amount":
		t = &b.Amount
	case "billCreated":
		t = &b.BillCreated
	case "billExpiry":
		t = &b.BillExpiry
	case "billType":
		t = &b.BillType
	case "billOtherInfo":
		t = &b.BillOtherInfo
	case "isPartialPaymentAllowed":
		b.IsPartialPaymentAllowed = rawValue(value)
		return nil
	case "extraInfo":
		t = &b.ExtraInfo
	default:
		return nil
	}
	t.SetJSON(value)
	return nil
}

// The values isPartialPaymentAllowed nearly always has, shared rather than
// copied from every answer. Nothing writes through them: jsontext.Value's
// UnmarshalJSON, which reuses a slice, runs only within DecodeJSON, and
// every DecodeJSON of this package starts from a zero statusResponse.
var (
	jsonTrue  = jsontext.Value("true")
	jsonFalse = jsontext.Value("false")
)

// rawValue returns raw as the jsontext.Value DecodeJSON keeps of it.
func rawValue(raw string) jsontext.Value {
	switch raw {
	case "true":
		return jsonTrue
	case "false":
		return jsonFalse
	}
	return jsontext.Value(raw)
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
// the secret key macs are keyed with.
func parse(raw []byte, httpStatus int, macs *answerMACs) (providers.Result, error) {
	var r statusResponse
	if e := providers.Decode(Name, httpStatus, raw, &r, r.member); e != nil {
		return providers.Result{}, e
	}
	if !r.ErrorCode.present {
		if nullBody(raw) {
			return providers.Result{}, providers.BadResponse(Name, httpStatus, "body is null")
		}
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
	sigErr := verify(macs, code, tx, r.Signature)
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

// nullBody reports whether raw, a body DecodeJSON accepted, is null, which
// it decodes into a statusResponse as the zero value.
func nullBody(raw []byte) bool {
	return string(bytes.Trim(raw, " \t\n\r")) == "null"
}
