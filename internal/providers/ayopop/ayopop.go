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
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
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
	version  string
	key      providers.Secret
	secret   providers.Secret
	http     *http.Client
	now      func() time.Time
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
	return &Client{
		endpoint: endpoint,
		version:  version,
		key:      cfg.APIKey,
		secret:   cfg.APISecret,
		http:     hc,
		now:      time.Now,
	}, nil
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

// statusRequest is the body of a status call and the claims of its TOKEN.
type statusRequest struct {
	PartnerID string `json:"partnerId"`
	RefNumber string `json:"refNumber"`
}

// statusResponse is the documented structure (the Payment response's).
// Only responseCode, success and data.refNumber decide anything, and the
// first two are checked by parse; every other member is kept only when its
// type makes sense, and one of an odd type or shape is left out without
// failing the response.
type statusResponse struct {
	ResponseCode jsontext.Value `json:"responseCode"`
	Success      providers.Bool `json:"success"`
	Message      message        `json:"message"`
	Data         *statusData    `json:"data"`
}

// statusData is the data member: what parse reads, and the rest, passed
// on as read.
type statusData struct {
	RefNumber     providers.Text   `json:"refNumber"`
	TransactionID providers.Text   `json:"transactionId"`
	Amount        providers.Amount `json:"amount"`
	Details       details          `json:",embed"`
}

// details are the members of data passed on in Result.Details, in key
// order, and the Indonesian message.
type details struct {
	AccountNumber   providers.Text `json:"accountNumber,omitzero"`
	Category        providers.Text `json:"category,omitzero"`
	CustomerDetails keyValues      `json:"customerDetails,omitempty"`
	CustomerName    providers.Text `json:"customerName,omitzero"`
	Denom           providers.Text `json:"denom,omitzero"`
	// MessageID is set by parse from message.ID, replacing anything data
	// held under its name.
	MessageID      providers.Text   `json:"message_id,omitzero"`
	ProcessingFee  providers.Amount `json:"processingFee,omitzero"`
	ProductCode    providers.Text   `json:"productCode,omitzero"`
	ProductDetails keyValues        `json:"productDetails,omitempty"`
	ProductName    providers.Text   `json:"productName,omitzero"`
	// The voucher, serial or PLN token is the product itself: the
	// customer needs it.
	Token      providers.Text   `json:"token,omitzero"`
	TotalAdmin providers.Amount `json:"totalAdmin,omitzero"`
	Validity   providers.Text   `json:"validity,omitzero"`
}

// Status makes one status call for q.Reference.
func (c *Client) Status(ctx context.Context, q providers.Query) (providers.Result, error) {
	// The body repeats the claims: the documented samples send only the
	// token, the documented body is these two members, and a server may
	// read either.
	body, err := json.Marshal(statusRequest{PartnerID: c.key.Reveal(), RefNumber: q.Reference})
	if err != nil {
		// Only a reference that is not UTF-8 fails to encode.
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "encode request")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	req.Header.Set("KEY", c.key.Reveal())
	req.Header.Set("TOKEN", token(c.secret.Reveal(), body))
	req.Header.Set("VERSION", c.version)
	status, raw, err := providers.Exchange(c.http, req, Name, c.now)
	if err != nil {
		return providers.Result{}, err
	}
	return parse(raw, status, q.Reference)
}

// parse reads a status response body (HTTP 2xx) for reference.
func parse(raw []byte, httpStatus int, reference string) (providers.Result, error) {
	var r statusResponse
	if e := providers.DecodeJSON(Name, httpStatus, raw, &r); e != nil {
		return providers.Result{}, e
	}
	rc, code, ok := responseCode(r.ResponseCode)
	if !ok {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no integer responseCode")
	}
	success, hasSuccess := r.Success.Get()
	messageEN := r.Message.english()
	fail := func(cause error, format string, args ...any) (providers.Result, error) {
		e := providers.Errorf(Name, cause, format, args...)
		e.HTTPStatus, e.Code, e.Message = httpStatus, code, messageEN
		return providers.Result{}, e
	}

	v := classify(rc)
	if v.cause != nil {
		return fail(v.cause, "")
	}
	d := r.Data
	if d == nil {
		d = new(statusData)
	}
	if ref, ok := d.RefNumber.Get(); ok && ref != reference {
		return fail(providers.ErrBadResponse, "response is for another refNumber")
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

	d.Details.MessageID = r.Message.ID
	res := providers.Result{
		State:         v.state,
		Code:          code,
		Message:       messageEN,
		TransactionID: d.TransactionID.String(),
		// amount is the total the partner paid: in Ayopop's samples it
		// equals the bill plus totalAdmin (747250 = 744750 + 2500), and the
		// payment request sends the same figure.
		Amount:   d.Amount.Number(),
		Currency: "IDR",
		Details:  providers.Details(d.Details),
	}
	if hasSuccess {
		// Ayopop has no status field; its success flag is the other half
		// of the verdict, so it is what provider_status carries.
		res.Status = strconv.FormatBool(success)
	}
	return res, nil
}

// responseCode reads the member of that name, documented as a JSON
// integer. A string, fraction or exponent is refused (ok is false): the
// code decides the verdict, so it is read only in the documented form.
// text is its decimal text; an integer too large for int reads as the
// extreme value, which is outside every range Ayopop gives a meaning.
func responseCode(raw jsontext.Value) (rc int, text string, ok bool) {
	if raw.Kind() != '0' || strings.ContainsAny(string(raw), ".eE") {
		return 0, "", false
	}
	rc, err := strconv.Atoi(string(raw))
	switch {
	case err == nil:
		return rc, strconv.Itoa(rc), true // -0 is 0
	case raw[0] == '-': // only overflow is left
		return math.MinInt, string(raw), true
	default:
		return math.MaxInt, string(raw), true
	}
}

// message is {"ID": …, "EN": …}; a bare string or number is taken as the
// English text.
type message struct {
	ID providers.Text `json:"ID"`
	EN providers.Text `json:"EN"`
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (m *message) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*m = message{}
	if dec.PeekKind() != '{' {
		return m.EN.UnmarshalJSONFrom(dec)
	}
	type members message // without this method
	return json.UnmarshalDecode(dec, (*members)(m))
}

// english is the English text, or the Indonesian one when there is none.
func (m message) english() string {
	if m.EN.String() != "" {
		return m.EN.String()
	}
	return m.ID.String()
}

// keyValues is one of Ayopop's [{"key": …, "value": …}] lists: the pairs
// whose key and value are both strings or numbers. A value that is not a
// list, or a list with an item that is neither an object nor null, gives
// no pairs at all: it is not the documented list, so none of it is
// trusted.
type keyValues []keyValue

type keyValue struct {
	Key   providers.Text `json:"key"`
	Value providers.Text `json:"value"`
}

// UnmarshalJSONFrom reads one value of any kind from dec.
func (kv *keyValues) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	*kv = nil
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	var items []*keyValue
	if json.Unmarshal(raw, &items, dec.Options()) != nil {
		return nil
	}
	for _, item := range items {
		if item != nil && !item.Key.IsZero() && !item.Value.IsZero() {
			*kv = append(*kv, *item)
		}
	}
	return nil
}
