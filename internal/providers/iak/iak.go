// Package iak checks postpaid payment status with IAK (mobilepulsa):
// POST {base}/api/v1/bill/check with commands "checkstatus", signed with
// md5(username + api_key + "cs") as seed 002 documents.
package iak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// Name is IAK's provider name in subjects, requests and metrics.
const Name = "iak"

// SandboxURL is IAK's postpaid development base URL; production is
// https://mobilepulsa.net.
const SandboxURL = "https://testpostpaid.mobilepulsa.net"

// checkStatusPath is appended to the base URL.
const checkStatusPath = "/api/v1/bill/check"

// Config holds an IAK postpaid account.
type Config struct {
	// BaseURL is scheme, host and optional path prefix, e.g. SandboxURL.
	BaseURL string
	// Username is the registered phone number of the account.
	Username string
	APIKey   providers.Secret
}

// Client implements providers.Provider for IAK.
type Client struct {
	endpoint string
	username string
	sign     string // constant per account for checkstatus; it is a credential
	http     *http.Client
	now      func() time.Time
}

var _ providers.Provider = (*Client)(nil)

// New validates cfg and returns a client that makes its calls with hc.
func New(cfg Config, hc *http.Client) (*Client, error) {
	var errs []error
	endpoint, err := providers.Endpoint(cfg.BaseURL, checkStatusPath)
	if err != nil {
		errs = append(errs, fmt.Errorf("iak: base URL: %w", err))
	}
	if cfg.Username == "" {
		errs = append(errs, errors.New("iak: username is required"))
	}
	if !cfg.APIKey.IsSet() {
		errs = append(errs, errors.New("iak: API key is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Client{
		endpoint: endpoint,
		username: cfg.Username,
		sign:     sign(cfg.Username, cfg.APIKey.Reveal(), "cs"),
		http:     hc,
		now:      time.Now,
	}, nil
}

// Name returns "iak".
func (*Client) Name() string { return Name }

// checkStatusRequest is the checkstatus body.
type checkStatusRequest struct {
	Commands string `json:"commands"`
	Username string `json:"username"`
	RefID    string `json:"ref_id"`
	Sign     string `json:"sign"`
}

// checkStatusResponse is the documented wrapper.
type checkStatusResponse struct {
	Data *checkStatusData `json:"data"`
}

// checkStatusData is the data member: what parse reads, and the rest,
// passed on as read. IAK does not keep the types of its members
// consistent, so each is read as text or an amount.
type checkStatusData struct {
	TrID         providers.Text   `json:"tr_id"`
	Code         providers.Text   `json:"code"`
	Status       providers.Text   `json:"status"`
	ResponseCode providers.Text   `json:"response_code"`
	Message      providers.Text   `json:"message"`
	Price        providers.Amount `json:"price"`
	RefID        providers.Text   `json:"ref_id"`
	Details      details          `json:",embed"`
}

// details are the members of data passed on in Result.Details, in key
// order.
type details struct {
	Admin    providers.Amount `json:"admin,omitzero"`
	Datetime providers.Text   `json:"datetime,omitzero"`
	HP       providers.Text   `json:"hp,omitzero"`
	Nominal  providers.Amount `json:"nominal,omitzero"`
	Noref    providers.Text   `json:"noref,omitzero"`
	Period   providers.Text   `json:"period,omitzero"`
	// ProductCode is set by parse from code, replacing anything data held
	// under its name.
	ProductCode providers.Text `json:"product_code,omitzero"`
	TrName      providers.Text `json:"tr_name,omitzero"`
}

// Status makes one checkstatus call for q.Reference.
func (c *Client) Status(ctx context.Context, q providers.Query) (providers.Result, error) {
	body, err := json.Marshal(checkStatusRequest{Commands: "checkstatus", Username: c.username, RefID: q.Reference, Sign: c.sign})
	if err != nil {
		// Only text that is not UTF-8 fails to encode.
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "encode request")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
	status, raw, err := providers.Exchange(c.http, req, Name, c.now)
	if err != nil {
		return providers.Result{}, err
	}
	return parse(raw, status, q.Reference)
}

// parse reads a checkstatus response body (HTTP 2xx) for reference.
func parse(raw []byte, httpStatus int, reference string) (providers.Result, error) {
	var r checkStatusResponse
	if e := providers.DecodeJSON(Name, httpStatus, raw, &r); e != nil {
		return providers.Result{}, e
	}
	d := r.Data
	if d == nil {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no data object")
	}
	rc := d.ResponseCode.String()
	if rc == "" {
		return providers.Result{}, providers.BadResponse(Name, httpStatus, "no response_code")
	}
	status := d.Status.String()
	message := d.Message.String()
	fail := func(cause error, kind providers.Kind, format string, args ...any) (providers.Result, error) {
		e := providers.Errorf(Name, cause, format, args...)
		e.Kind, e.HTTPStatus, e.Code, e.Message = kind, httpStatus, rc, message
		return providers.Result{}, e
	}

	v, known := codes[rc]
	if !known {
		return fail(providers.ErrUnknownCode, providers.Retryable, "response_code not in IAK's table")
	}
	if v.cause != nil {
		return fail(v.cause, v.kind, "")
	}
	if ref, ok := d.RefID.Get(); ok && ref != reference {
		return fail(providers.ErrBadResponse, providers.Retryable, "response is for another ref_id")
	}
	// IAK reports the state twice, as status (0 not received, 1 success,
	// 2 failed, 3 in process) and as response_code. A verdict needs both
	// to agree; a contradiction is not trusted either way.
	switch {
	case v.state == providers.StateSuccess && status != "1":
		return fail(providers.ErrBadResponse, providers.Retryable, "response_code 00 with status %q", status)
	case v.state != providers.StateSuccess && status == "1":
		return fail(providers.ErrBadResponse, providers.Retryable, "status 1 with response_code %s", rc)
	case v.state == providers.StateFailed && status == "3":
		return fail(providers.ErrBadResponse, providers.Retryable, "status 3 with response_code %s", rc)
	}

	d.Details.ProductCode = d.Code
	return providers.Result{
		State:         v.state,
		Status:        status,
		Code:          rc,
		Message:       message,
		TransactionID: d.TrID.String(),
		Amount:        d.Price.Number(),
		Currency:      "IDR",
		Details:       providers.Details(d.Details),
	}, nil
}
