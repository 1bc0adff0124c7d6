// Package appotapay checks bill-payment status with AppotaPay:
// GET {base}/api/v1/service/bill/transaction/{partnerRefId}, authenticated
// with an HS256 JWT in X-APPOTAPAY-AUTH, as seed 001 documents. AppotaPay
// signs its answer with HMAC-SHA256; no success, failure or not-found is
// believed unless that signature verifies.
package appotapay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	now := c.now()
	tok, err := token(c.partnerCode, c.apiKey.Reveal(), c.secretKey.Reveal(), now)
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "sign request token")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+pathSegment(q.Reference), nil)
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	req.Header.Set("X-APPOTAPAY-AUTH", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, raw, err := providers.Exchange(c.http, req, Name)
	if err != nil {
		return providers.Result{}, err
	}
	if e := providers.CheckHTTPStatus(Name, resp, c.now()); e != nil {
		// AppotaPay explains a 4xx in its usual body (401: which credential;
		// 400: errorCode 1); keep its code and message for the operator.
		var body struct {
			ErrorCode json.RawMessage `json:"errorCode"`
			Message   json.RawMessage `json:"message"`
		}
		if json.Unmarshal(raw, &body) == nil {
			if code, ok := errorCode(body.ErrorCode); ok {
				e.Code = code
				e.Message, _ = providers.Scalar(body.Message)
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

// parse reads a status response body (HTTP 2xx) and authenticates it with
// secretKey.
//
// Members are read by their exact names: encoding/json would match struct
// fields case-insensitively, and the fields deciding a verdict must be the
// ones AppotaPay signed, not look-alikes.
func parse(raw []byte, httpStatus int, secretKey string) (providers.Result, error) {
	var r map[string]json.RawMessage
	if e := providers.DecodeJSON(Name, httpStatus, raw, &r); e != nil {
		return providers.Result{}, e
	}
	if r == nil {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "body is null")
	}
	rawCode, present := r["errorCode"]
	if !present {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no errorCode")
	}
	code, ok := errorCode(rawCode)
	if !ok {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "errorCode is not an integer")
	}
	message, _ := scalar(r, "message")
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

	var tx map[string]json.RawMessage
	if t, ok := r["transaction"]; ok && string(t) != "null" {
		if err := json.Unmarshal(t, &tx); err != nil || tx == nil {
			return providers.Result{}, providers.BadResponse(Name, httpStatus, "transaction is not an object")
		}
	}
	sigErr := verify(secretKey, signedFields(code, tx), r["signature"])
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
	details := map[string]any{}
	if trusted {
		res.TransactionID, _ = scalar(tx, "appotapayTransId")
		if amount, ok := providers.Amount(tx["amount"]); ok {
			res.Amount, res.Currency = amount, "VND"
		}
		if billAmount, ok := providers.Amount(tx["billAmount"]); ok {
			details["billAmount"] = billAmount
		}
		if t, ok := scalar(tx, "time"); ok {
			details["time"] = t
		}
	}
	if v.state == providers.StateSuccess && (res.TransactionID == "" || res.Amount == "") {
		// A success must name what was paid. Without a transaction the
		// signature covers only "errorCode=0", the same for every payment
		// of the account, so it would prove nothing about this one.
		return fail(providers.ErrBadResponse, providers.Retryable, "success without transaction id and amount")
	}
	if bills := billDetails(r["billDetail"]); len(bills) > 0 {
		details["billDetail"] = bills
	}
	if len(details) > 0 {
		res.Details = details
	}
	return res, nil
}

// errorCode reads errorCode, which decides the verdict, strictly: a JSON
// integer written canonically (no plus sign, leading zero, fraction,
// exponent or quotes), so that its text is the one AppotaPay signed.
func errorCode(raw json.RawMessage) (string, bool) {
	s := string(raw)
	n, err := strconv.Atoi(s)
	return s, err == nil && strconv.Itoa(n) == s
}

// scalar reads member name of obj as providers.Scalar does.
func scalar(obj map[string]json.RawMessage, name string) (string, bool) {
	return providers.Scalar(obj[name])
}

// billDetails reads billDetail, documented as an array of bills and
// described as "JSON string is array", so both are accepted. Only the
// documented members are passed on; anything unreadable is left out, since
// billDetail is not signed and decides nothing.
func billDetails(raw json.RawMessage) []any {
	if s, ok := providers.Scalar(raw); ok && len(raw) > 0 && raw[0] == '"' {
		raw = json.RawMessage(s)
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var bills []any
	for _, rawItem := range items {
		var item map[string]json.RawMessage
		if json.Unmarshal(rawItem, &item) != nil {
			continue
		}
		bill := map[string]any{}
		for _, name := range []string{"billNumber", "period", "billCreated", "billExpiry", "billType", "billOtherInfo", "extraInfo"} {
			if s, ok := scalar(item, name); ok {
				bill[name] = s
			}
		}
		if n, ok := providers.Amount(item["amount"]); ok {
			bill["amount"] = n
		}
		switch string(item["isPartialPaymentAllowed"]) {
		case "true":
			bill["isPartialPaymentAllowed"] = true
		case "false":
			bill["isPartialPaymentAllowed"] = false
		}
		if len(bill) > 0 {
			bills = append(bills, bill)
		}
	}
	return bills
}
