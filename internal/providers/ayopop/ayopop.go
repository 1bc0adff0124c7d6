// Package ayopop checks bill-payment status with Ayopop (Ayoconnect PPOB
// OpenAPI): POST {base}/api/v2/bill/status (or /api/v1 with VERSION 1.0),
// authenticated by a KEY header and a TOKEN header holding an HS256 JWT
// over the call's parameters, as seed 000 and providers.md §1 document.
// Ayopop does not sign its responses, so a response is trusted as far as
// TLS to the configured host goes, and only when it is self-consistent.
package ayopop

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// Name is Ayopop's provider name in subjects, requests and metrics.
const Name = "ayopop"

// DevURL is Ayopop's development base URL. The production host is given to
// partners privately; the public docs mask it.
const DevURL = "https://dev.openapi.ayopop.id"

// Versions of the API: the VERSION header and the path segment go together.
const (
	Version2 = "2.0" // /api/v2/bill/status, the default
	Version1 = "1.0" // /api/v1/bill/status
)

var statusPaths = map[string]string{
	Version2: "/api/v2/bill/status",
	Version1: "/api/v1/bill/status",
}

// Config holds an Ayopop partner account.
type Config struct {
	// BaseURL is scheme, host and optional path prefix, e.g. DevURL.
	BaseURL string
	// APIKey is the partner's API key: the KEY header and the partnerId
	// parameter.
	APIKey providers.Secret
	// APISecret is the HMAC key of the TOKEN JWT.
	APISecret providers.Secret
	// Version is "2.0" (the default when empty) or "1.0".
	Version string
}

// Client implements providers.Provider for Ayopop.
type Client struct {
	endpoint string
	// The KEY and VERSION headers' values, shared by every call, which
	// never modifies them.
	keyHeader, versionHeader []string
	key                      string
	http                     *http.Client
	now                      func() time.Time
	// macs holds HMAC-SHA256 hashes keyed with the API secret, for the
	// TOKEN: keying a new one for each call doubled the cost of signing.
	macs sync.Pool
}

var _ providers.Provider = (*Client)(nil)

// New validates cfg and returns a client that makes its calls with hc. It
// reports every problem of cfg at once.
func New(cfg Config, hc *http.Client) (*Client, error) {
	var errs []error
	version := cfg.Version
	if version == "" {
		version = Version2
	}
	path, ok := statusPaths[version]
	if !ok {
		errs = append(errs, fmt.Errorf("ayopop: version %q: must be %q or %q", cfg.Version, Version2, Version1))
	}
	endpoint, err := providers.Endpoint(cfg.BaseURL, path)
	if err != nil {
		errs = append(errs, fmt.Errorf("ayopop: base URL: %w", err))
	}
	switch {
	case !cfg.APIKey.IsSet():
		errs = append(errs, errors.New("ayopop: API key is required"))
	case !headerSafe(cfg.APIKey.Reveal()):
		// It goes into a header; net/http would refuse it on every call.
		errs = append(errs, errors.New("ayopop: API key contains characters a header cannot carry"))
	}
	if !cfg.APISecret.IsSet() {
		errs = append(errs, errors.New("ayopop: API secret is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Client{
		endpoint:      endpoint,
		keyHeader:     []string{cfg.APIKey.Reveal()},
		versionHeader: []string{version},
		key:           cfg.APIKey.Reveal(),
		http:          hc,
		now:           time.Now,
	}
	secret := []byte(cfg.APISecret.Reveal())
	c.macs.New = func() any { return hmac.New(sha256.New, secret) }
	return c, nil
}

// headerSafe reports whether s is printable ASCII without spaces at its
// ends, so it travels in a header unchanged.
func headerSafe(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

// Name returns "ayopop".
func (*Client) Name() string { return Name }

// statusResponse is the documented structure (the Payment response's).
// Only responseCode, success and data.refNumber decide anything; every
// other member is kept only when its type makes sense, and one of an odd
// type or shape is left out without failing the response.
type statusResponse struct {
	ResponseCode responseCode `json:"responseCode"`
	Success      jsonBool     `json:"success"`
	Message      message      `json:"message"`
	Data         *statusData  `json:"data"`
}

// noData is read in place of an absent data member: it passes nothing on.
var noData statusData

// statusData is the data member.
type statusData struct {
	RefNumber       providers.Text `json:"refNumber"`
	TransactionID   providers.Text `json:"transactionId"`
	AccountNumber   providers.Text `json:"accountNumber"`
	Amount          providers.Text `json:"amount"`
	TotalAdmin      providers.Text `json:"totalAdmin"`
	ProcessingFee   providers.Text `json:"processingFee"`
	Denom           providers.Text `json:"denom"`
	ProductCode     providers.Text `json:"productCode"`
	ProductName     providers.Text `json:"productName"`
	Category        providers.Text `json:"category"`
	Token           providers.Text `json:"token"`
	CustomerName    providers.Text `json:"customerName"`
	Validity        providers.Text `json:"validity"`
	CustomerDetails keyValues      `json:"customerDetails"`
	ProductDetails  keyValues      `json:"productDetails"`
}

// member reads one member of the answer for providers.Decode, as
// DecodeJSON reads it into statusResponse.
func (r *statusResponse) member(name, value string) error {
	switch name {
	case "responseCode":
		r.ResponseCode.setJSON(value)
	case "success":
		r.Success.setJSON(value)
	case "message":
		return r.Message.setJSON(value)
	case "data":
		switch value[0] {
		case 'n':
			r.Data = nil
		case '{':
			// A repeated data object is merged into the earlier one, as
			// encoding/json/v2 does.
			if r.Data == nil {
				r.Data = new(statusData)
			}
			return providers.Members(value, r.Data.member)
		default:
			return providers.ErrUnexpectedKind
		}
	}
	return nil
}

func (d *statusData) member(name, value string) error {
	var t *providers.Text
	switch name {
	case "refNumber":
		t = &d.RefNumber
	case "transactionId":
		t = &d.TransactionID
	case "accountNumber":
		t = &d.AccountNumber
	case "amount":
		t = &d.Amount
	case "totalAdmin":
		t = &d.TotalAdmin
	case "processingFee":
		t = &d.ProcessingFee
	case "denom":
		t = &d.Denom
	case "productCode":
		t = &d.ProductCode
	case "productName":
		t = &d.ProductName
	case "category":
		t = &d.Category
	case "token":
		t = &d.Token
	case "customerName":
		t = &d.CustomerName
	case "validity":
		t = &d.Validity
	case "customerDetails":
		return d.CustomerDetails.setJSON(value)
	case "productDetails":
		return d.ProductDetails.setJSON(value)
	default:
		return nil
	}
	t.SetJSON(value)
	return nil
}

// Status makes one status call for q.Reference.
func (c *Client) Status(ctx context.Context, q providers.Query) (providers.Result, error) {
	// The body repeats the claims: the documented samples send only the
	// token, the documented body is these two members, and a server may
	// read either.
	body := requestBody(c.key, q.Reference)
	mac := c.macs.Get().(hash.Hash)
	tok := token(mac, body)
	c.macs.Put(mac)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	// The keys are written in canonical form: Header.Set would canonicalise
	// them again on every call.
	req.Header["Key"] = c.keyHeader
	req.Header["Token"] = []string{tok}
	req.Header["Version"] = c.versionHeader
	providers.SetJSONHeaders(req.Header)

	buf := providers.GetBuffer()
	defer providers.PutBuffer(buf)
	resp, raw, err := providers.Exchange(c.http, req, Name, buf)
	if err != nil {
		return providers.Result{}, err
	}
	if e := providers.CheckHTTPStatus(Name, resp, c.now()); e != nil {
		return providers.Result{}, e
	}
	return parse(raw, resp.StatusCode, q.Reference)
}

// requestBody is the body of a status call and the claims of its TOKEN,
// {"partnerId":…,"refNumber":…}, byte for byte as encoding/json writes
// those two members.
func requestBody(partnerID, reference string) []byte {
	body := make([]byte, 0, len(`{"partnerId":"","refNumber":""}`)+len(partnerID)+len(reference))
	body = append(body, `{"partnerId":`...)
	body = providers.AppendJSONString(body, partnerID)
	body = append(body, `,"refNumber":`...)
	body = providers.AppendJSONString(body, reference)
	return append(body, '}')
}

// parse reads a status response body (HTTP 2xx) for reference.
func parse(raw []byte, httpStatus int, reference string) (providers.Result, error) {
	var r statusResponse
	if e := providers.Decode(Name, httpStatus, raw, &r, r.member); e != nil {
		return providers.Result{}, e
	}
	if !r.ResponseCode.ok {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no integer responseCode")
	}
	code := r.ResponseCode.text
	success, hasSuccess := r.Success.value, r.Success.ok
	messageEN, messageID := r.Message.en, r.Message.id
	fail := func(cause error, format string, args ...any) (providers.Result, error) {
		e := providers.Errorf(Name, cause, format, args...)
		e.HTTPStatus, e.Code, e.Message = httpStatus, code, messageEN
		return providers.Result{}, e
	}

	v := classify(r.ResponseCode.value)
	if v.cause != nil {
		return fail(v.cause, "")
	}
	if r.Data != nil {
		if ref, ok := r.Data.RefNumber.Get(); ok && ref != reference {
			return fail(providers.ErrBadResponse, "response is for another refNumber")
		}
	}
	// Ayopop states the outcome twice, as responseCode and as success. A
	// verdict, and "not found" (which becomes one after the grace), needs
	// both to agree; pending settles nothing, so its flag is not checked.
	switch v.state {
	case providers.StateSuccess:
		if !hasSuccess || !success {
			return fail(providers.ErrBadResponse, "responseCode %s without success true", code)
		}
	case providers.StateFailed, providers.StateNotFound:
		if !hasSuccess || success {
			return fail(providers.ErrBadResponse, "responseCode %s without success false", code)
		}
	}

	res := providers.Result{
		State:    v.state,
		Code:     code,
		Message:  messageEN,
		Currency: "IDR",
	}
	if hasSuccess {
		// Ayopop has no status field; its success flag is the other half
		// of the verdict, so it is what provider_status carries.
		res.Status = strconv.FormatBool(success)
	}
	d := r.Data
	if d == nil {
		d = &noData
	}
	res.TransactionID = d.TransactionID.String()
	// amount is the total the partner paid: in Ayopop's samples it equals
	// the bill plus totalAdmin (747250 = 744750 + 2500), and the payment
	// request sends the same figure.
	res.Amount, _ = d.Amount.Amount()
	var details providers.Details // in key order
	details.Text("accountNumber", d.AccountNumber)
	details.Text("category", d.Category)
	d.CustomerDetails.add(&details, "customerDetails")
	details.Text("customerName", d.CustomerName)
	details.Text("denom", d.Denom)
	if messageID != "" {
		details.String("message_id", messageID)
	}
	details.Amount("processingFee", d.ProcessingFee)
	details.Text("productCode", d.ProductCode)
	d.ProductDetails.add(&details, "productDetails")
	details.Text("productName", d.ProductName)
	// The voucher, serial or PLN token is the product itself: the customer
	// needs it.
	details.Text("token", d.Token)
	details.Amount("totalAdmin", d.TotalAdmin)
	details.Text("validity", d.Validity)
	res.Details = details.JSON()
	return res, nil
}

// responseCode is the member of that name, documented as a JSON integer.
// A string, fraction or exponent is refused (ok is false): the code
// decides the verdict, so it is read only in the documented form. text is
// its decimal text; an integer too large for int reads as the extreme
// value, which is outside every range Ayopop gives a meaning.
type responseCode struct {
	value int
	text  string
	ok    bool
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (c *responseCode) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	*c = responseCode{}
	s := string(raw)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return nil
	}
	rc, err := strconv.Atoi(s)
	switch {
	case err == nil:
		*c = responseCode{value: rc, text: strconv.Itoa(rc), ok: true}
	case s[0] == '-': // the syntax was checked: only overflow is left
		*c = responseCode{value: math.MinInt, text: s, ok: true}
	default:
		*c = responseCode{value: math.MaxInt, text: s, ok: true}
	}
	return nil
}

// setJSON sets c from raw, a member's value in text that ObjectText
// returned, as UnmarshalJSONFrom would. An integer in valid JSON is
// already the decimal text Itoa writes, but for -0, so raw is kept as the
// text without a copy.
func (c *responseCode) setJSON(raw string) {
	*c = responseCode{}
	// In valid JSON, a value starting so is a number, and an integer
	// unless it has a fraction or an exponent.
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') || strings.ContainsAny(raw, ".eE") {
		return
	}
	rc, err := strconv.Atoi(raw)
	switch {
	case err == nil && rc == 0:
		*c = responseCode{text: "0", ok: true} // 0 or -0
	case err == nil:
		*c = responseCode{value: rc, text: raw, ok: true}
	case raw[0] == '-': // only overflow is left
		*c = responseCode{value: math.MinInt, text: raw, ok: true}
	default:
		*c = responseCode{value: math.MaxInt, text: raw, ok: true}
	}
}

// jsonBool is a member read only as a JSON boolean; ok is false for
// anything else.
type jsonBool struct{ value, ok bool }

// UnmarshalJSONFrom reads one value of any kind from dec.
func (b *jsonBool) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch string(raw) {
	case "true":
		*b = jsonBool{value: true, ok: true}
	case "false":
		*b = jsonBool{value: false, ok: true}
	default:
		*b = jsonBool{}
	}
	return nil
}

// setJSON sets b from raw as UnmarshalJSONFrom would.
func (b *jsonBool) setJSON(raw string) {
	*b = jsonBool{value: raw == "true", ok: raw == "true" || raw == "false"}
}

// message is {"ID": …, "EN": …}. en falls back to the Indonesian text
// when there is no English one; a bare string is taken as the message.
type message struct{ en, id string }

// UnmarshalJSONFrom reads one value of any kind from dec. A repeated
// message replaces the earlier one, as a repeated scalar does.
func (m *message) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*m = message{}
	if dec.PeekKind() != '{' {
		var err error
		m.en, _, err = readScalar(dec)
		return err
	}
	err := readMembers(dec, func(name jsontext.Token) (err error) {
		switch name.String() {
		case "ID":
			m.id, _, err = readScalar(dec)
		case "EN":
			m.en, _, err = readScalar(dec)
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if m.en == "" {
		m.en = m.id
	}
	return err
}

// setJSON sets m from raw, a member's value in text that ObjectText
// returned, as UnmarshalJSONFrom would; the texts alias raw where they
// need no decoding.
func (m *message) setJSON(raw string) error {
	var en, id providers.Text
	if raw[0] != '{' {
		en.SetJSON(raw)
		*m = message{en: en.String()}
		return nil
	}
	err := providers.Members(raw, func(name, value string) error {
		switch name {
		case "ID":
			id.SetJSON(value)
		case "EN":
			en.SetJSON(value)
		}
		return nil
	})
	*m = message{en: en.String(), id: id.String()}
	if m.en == "" {
		m.en = m.id
	}
	return err
}

// keyValues is one of Ayopop's [{"key": …, "value": …}] lists: the pairs
// whose key and value are scalars. A value that is not a list, or a list
// with an item that is neither an object nor null, gives no pairs at all:
// it is not the documented list, so none of it is trusted.
type keyValues struct{ pairs []pair }

type pair struct{ key, value string }

// add writes the pairs under name, as [{"key": …, "value": …}], when
// there are any.
func (kv keyValues) add(d *providers.Details, name string) {
	d.Objects(name, len(kv.pairs), func(i int) {
		d.String("key", kv.pairs[i].key)
		d.String("value", kv.pairs[i].value)
	})
}

// UnmarshalJSONFrom reads one value of any kind from dec. A repeated list
// replaces the earlier one.
func (kv *keyValues) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*kv = keyValues{}
	if dec.PeekKind() != '[' {
		return dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	itemsFit := true
	for kind := dec.PeekKind(); kind != ']'; kind = dec.PeekKind() {
		var err error
		switch kind {
		case '{':
			var p pair
			var ok bool
			if p, ok, err = readPair(dec); ok {
				kv.pairs = append(kv.pairs, p)
			}
		case 'n':
			err = dec.SkipValue()
		default:
			itemsFit = false
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	if !itemsFit {
		kv.pairs = nil
	}
	_, err := dec.ReadToken()
	return err
}

// errOddItem stops the count of a list's items at one that voids it.
var errOddItem = errors.New("list item neither an object nor null")

// setJSON sets kv from raw, a member's value in text that ObjectText
// returned, as UnmarshalJSONFrom would. The objects are counted first, so
// that the pairs take one allocation and a list that is not trusted none.
func (kv *keyValues) setJSON(raw string) error {
	*kv = keyValues{}
	if raw[0] != '[' {
		return nil
	}
	objects := 0
	err := providers.Elements(raw, func(item string) error {
		switch item[0] {
		case '{':
			objects++
		case 'n':
		default:
			return errOddItem
		}
		return nil
	})
	if err != nil || objects == 0 {
		return nil // errOddItem: no pairs at all
	}
	return providers.Elements(raw, func(item string) error {
		if item[0] != '{' {
			return nil
		}
		p, ok, err := pairJSON(item)
		if ok {
			if kv.pairs == nil {
				kv.pairs = make([]pair, 0, objects)
			}
			kv.pairs = append(kv.pairs, p)
		}
		return err
	})
}

// readPair reads one {"key": …, "value": …} item; ok is false unless both
// are scalars.
func readPair(dec *jsontext.Decoder) (p pair, ok bool, err error) {
	var key, value string
	var hasKey, hasValue bool
	err = readMembers(dec, func(name jsontext.Token) (err error) {
		switch name.String() {
		case "key":
			key, hasKey, err = readScalar(dec)
		case "value":
			value, hasValue, err = readScalar(dec)
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if err != nil || !hasKey || !hasValue {
		return pair{}, false, err
	}
	return pair{key, value}, true, nil
}

// pairJSON reads obj, one list item in text that ObjectText returned, as
// readPair would.
func pairJSON(obj string) (p pair, ok bool, err error) {
	var key, value providers.Text
	err = providers.Members(obj, func(name, v string) error {
		switch name {
		case "key":
			key.SetJSON(v)
		case "value":
			value.SetJSON(v)
		}
		return nil
	})
	k, hasKey := key.Get()
	v, hasValue := value.Get()
	if err != nil || !hasKey || !hasValue {
		return pair{}, false, err
	}
	return pair{k, v}, true, nil
}

// readMembers reads the object dec is at, calling read with each member's
// name while dec is at the member's value, which read must consume.
func readMembers(dec *jsontext.Decoder, read func(name jsontext.Token) error) error {
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if err := read(name); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// readScalar reads one value of any kind from dec as a providers.Text.
func readScalar(dec *jsontext.Decoder) (s string, ok bool, err error) {
	var t providers.Text
	err = t.UnmarshalJSONFrom(dec)
	s, ok = t.Get()
	return s, ok, err
}
