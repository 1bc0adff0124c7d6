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
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

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
	key      string
	secret   []byte
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
		key:      cfg.APIKey.Reveal(),
		secret:   []byte(cfg.APISecret.Reveal()),
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
// Only responseCode, success and data.refNumber decide anything; the other
// fields are read as raw JSON and kept only when their type makes sense.
type statusResponse struct {
	ResponseCode json.RawMessage `json:"responseCode"`
	Success      json.RawMessage `json:"success"`
	Message      json.RawMessage `json:"message"`
	Data         *struct {
		RefNumber       json.RawMessage `json:"refNumber"`
		TransactionID   json.RawMessage `json:"transactionId"`
		AccountNumber   json.RawMessage `json:"accountNumber"`
		Amount          json.RawMessage `json:"amount"`
		TotalAdmin      json.RawMessage `json:"totalAdmin"`
		ProcessingFee   json.RawMessage `json:"processingFee"`
		Denom           json.RawMessage `json:"denom"`
		ProductCode     json.RawMessage `json:"productCode"`
		ProductName     json.RawMessage `json:"productName"`
		Category        json.RawMessage `json:"category"`
		Token           json.RawMessage `json:"token"`
		CustomerName    json.RawMessage `json:"customerName"`
		Validity        json.RawMessage `json:"validity"`
		CustomerDetails json.RawMessage `json:"customerDetails"`
		ProductDetails  json.RawMessage `json:"productDetails"`
	} `json:"data"`
}

// Status makes one status call for q.Reference.
func (c *Client) Status(ctx context.Context, q providers.Query) (providers.Result, error) {
	// The body repeats the claims: the documented samples send only the
	// token, the documented body is these two members, and a server may
	// read either.
	body, err := json.Marshal(statusRequest{PartnerID: c.key, RefNumber: q.Reference})
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "encode request")
	}
	tok, err := token(c.secret, body)
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "sign token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	req.Header.Set("KEY", c.key)
	req.Header.Set("TOKEN", tok)
	req.Header.Set("VERSION", c.version)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, raw, err := providers.Exchange(c.http, req, Name)
	if err != nil {
		return providers.Result{}, err
	}
	if e := providers.CheckHTTPStatus(Name, resp, c.now()); e != nil {
		return providers.Result{}, e
	}
	return parse(raw, resp.StatusCode, q.Reference)
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
	success, hasSuccess := jsonBool(r.Success)
	messageEN, messageID := message(r.Message)
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
	if d != nil {
		if ref, ok := providers.Scalar(d.RefNumber); ok && ref != reference {
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
	details := map[string]any{}
	if messageID != "" {
		details["message_id"] = messageID
	}
	if d != nil {
		res.TransactionID, _ = providers.Scalar(d.TransactionID)
		// amount is the total the partner paid: in Ayopop's samples it
		// equals the bill plus totalAdmin (747250 = 744750 + 2500), and the
		// payment request sends the same figure.
		if amount, ok := providers.Amount(d.Amount); ok {
			res.Amount = amount
		}
		for key, field := range map[string]json.RawMessage{
			"accountNumber": d.AccountNumber, "customerName": d.CustomerName,
			"productCode": d.ProductCode, "productName": d.ProductName,
			"category": d.Category, "denom": d.Denom, "validity": d.Validity,
			// The voucher, serial or PLN token is the product itself: the
			// customer needs it.
			"token": d.Token,
		} {
			if s, ok := providers.Scalar(field); ok {
				details[key] = s
			}
		}
		for key, field := range map[string]json.RawMessage{"totalAdmin": d.TotalAdmin, "processingFee": d.ProcessingFee} {
			if n, ok := providers.Amount(field); ok {
				details[key] = n
			}
		}
		for key, field := range map[string]json.RawMessage{"customerDetails": d.CustomerDetails, "productDetails": d.ProductDetails} {
			if pairs := keyValues(field); len(pairs) > 0 {
				details[key] = pairs
			}
		}
	}
	if len(details) > 0 {
		res.Details = details
	}
	return res, nil
}

// responseCode reads responseCode, documented as a JSON integer. A string,
// fraction or exponent is refused: the code decides the verdict, so it is
// read only in the documented form. code is its decimal text; an integer
// too large for int reads as the extreme value, which is outside every
// range Ayopop gives a meaning.
func responseCode(raw json.RawMessage) (rc int, code string, ok bool) {
	s := string(raw)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, "", false
	}
	rc, err := strconv.Atoi(s)
	if err != nil { // the syntax was checked: only overflow is left
		if s[0] == '-' {
			return math.MinInt, s, true
		}
		return math.MaxInt, s, true
	}
	return rc, strconv.Itoa(rc), true
}

// jsonBool reads a JSON boolean; ok is false for anything else.
func jsonBool(raw json.RawMessage) (value, ok bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// message reads {"ID": …, "EN": …}. en falls back to the Indonesian text
// when there is no English one; a bare string is taken as the message.
func message(raw json.RawMessage) (en, id string) {
	if s, ok := providers.Scalar(raw); ok {
		return s, ""
	}
	var m struct {
		ID json.RawMessage `json:"ID"`
		EN json.RawMessage `json:"EN"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return "", ""
	}
	en, _ = providers.Scalar(m.EN)
	id, _ = providers.Scalar(m.ID)
	if en == "" {
		en = id
	}
	return en, id
}

// keyValues reads Ayopop's [{"key": …, "value": …}] lists, keeping the
// pairs whose key and value are scalars.
func keyValues(raw json.RawMessage) []map[string]string {
	var items []struct {
		Key   json.RawMessage `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var out []map[string]string
	for _, it := range items {
		k, okK := providers.Scalar(it.Key)
		v, okV := providers.Scalar(it.Value)
		if okK && okV {
			out = append(out, map[string]string{"key": k, "value": v})
		}
	}
	return out
}
