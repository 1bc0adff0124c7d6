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

// checkStatusResponse is the documented wrapper; IAK does not keep the
// types of its members consistent, so each is read as text.
type checkStatusResponse struct {
	Data *checkStatusData `json:"data"`
}

type checkStatusData struct {
	TrID         providers.Text `json:"tr_id"`
	Code         providers.Text `json:"code"`
	Datetime     providers.Text `json:"datetime"`
	HP           providers.Text `json:"hp"`
	TrName       providers.Text `json:"tr_name"`
	Period       providers.Text `json:"period"`
	Nominal      providers.Text `json:"nominal"`
	Admin        providers.Text `json:"admin"`
	Status       providers.Text `json:"status"`
	ResponseCode providers.Text `json:"response_code"`
	Message      providers.Text `json:"message"`
	Price        providers.Text `json:"price"`
	Noref        providers.Text `json:"noref"`
	RefID        providers.Text `json:"ref_id"`
}

// member reads one member of the answer for providers.Decode.
func (r *checkStatusResponse) member(name, value string) error {
	if name != "data" {
		return nil
	}
	switch value[0] {
	case 'n':
		r.Data = nil
	case '{':
		// A repeated data object is merged into the earlier one, as
		// encoding/json/v2 does.
		if r.Data == nil {
			r.Data = new(checkStatusData)
		}
		return providers.Members(value, r.Data.member)
	default:
		return providers.ErrUnexpectedKind
	}
	return nil
}

func (d *checkStatusData) member(name, value string) error {
	var t *providers.Text
	switch name {
	case "tr_id":
		t = &d.TrID
	case "code":
		t = &d.Code
	case "datetime":
		t = &d.Datetime
	case "hp":
		t = &d.HP
	case "tr_name":
		t = &d.TrName
	case "period":
		t = &d.Period
	case "nominal":
		t = &d.Nominal
	case "admin":
		t = &d.Admin
	case "status":
		t = &d.Status
	case "response_code":
		t = &d.ResponseCode
	case "message":
		t = &d.Message
	case "price":
		t = &d.Price
	case "noref":
		t = &d.Noref
	case "ref_id":
		t = &d.RefID
	default:
		return nil
	}
	t.SetJSON(value)
	return nil
}

// Status makes one checkstatus call for q.Reference.
func (c *Client) Status(ctx context.Context, q providers.Query) (providers.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(c.requestBody(q.Reference)))
	if err != nil {
		return providers.Result{}, providers.Errorf(Name, providers.ErrProtocol, "build request")
	}
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

// requestBody is the checkstatus body, byte for byte as encoding/json
// writes {"commands","username","ref_id","sign"}.
func (c *Client) requestBody(reference string) []byte {
	body := make([]byte, 0, 96+len(c.username)+len(reference))
	body = append(body, `{"commands":"checkstatus","username":`...)
	body = providers.AppendJSONString(body, c.username)
	body = append(body, `,"ref_id":`...)
	body = providers.AppendJSONString(body, reference)
	body = append(body, `,"sign":`...)
	body = providers.AppendJSONString(body, c.sign)
	return append(body, '}')
}

// parse reads a checkstatus response body (HTTP 2xx) for reference.
func parse(raw []byte, httpStatus int, reference string) (providers.Result, error) {
	var r checkStatusResponse
	if e := providers.Decode(Name, httpStatus, raw, &r, r.member); e != nil {
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
	status, hasStatus := d.Status.Get()
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

	res := providers.Result{
		State:    v.state,
		Code:     rc,
		Message:  message,
		Currency: "IDR",
	}
	if hasStatus {
		res.Status = status
	}
	res.TransactionID = d.TrID.String()
	res.Amount, _ = d.Price.Amount()
	var details providers.Details // in key order
	details.Amount("admin", d.Admin)
	details.Text("datetime", d.Datetime)
	details.Text("hp", d.HP)
	details.Amount("nominal", d.Nominal)
	details.Text("noref", d.Noref)
	details.Text("period", d.Period)
	details.Text("product_code", d.Code)
	details.Text("tr_name", d.TrName)
	res.Details = details.JSON()
	return res, nil
}
