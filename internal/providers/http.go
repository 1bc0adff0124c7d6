package providers

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxBodyBytes bounds every provider response body the clients read. The
// largest documented status response is a few KiB.
const MaxBodyBytes = 1 << 20

// SetJSONHeaders sets the headers every provider call carries:
// Content-Type and Accept application/json, and Accept-Encoding identity.
// The transport asks for no compression (see NewHTTPClient), and a
// request that names no encoding would let a server pick any (RFC 9110
// §12.5.3); identity is the only encoding the parsers read. The values
// are slices shared by every call rather than allocated per header per
// call: a transport never modifies a request's headers.
func SetJSONHeaders(h http.Header) {
	// Canonical keys, assigned: Header.Set would canonicalise them on
	// every call.
	h["Content-Type"] = applicationJSON
	h["Accept"] = applicationJSON
	h["Accept-Encoding"] = identityEncoding
}

var (
	applicationJSON  = []string{"application/json"}
	identityEncoding = []string{"identity"}
)

// NewHTTPClient returns the client the providers share: one attempt per call
// bounded by timeout, connection reuse sized for maxConns concurrent checks,
// no redirects (a status API that redirects is misconfigured, and following
// it could carry credentials elsewhere).
//
// The timeout bounds the whole call, so the transport sets no header
// timeout of its own, which cost a timer per call. Nor does it ask for
// gzip: status bodies are a few hundred bytes, and the request for it
// cost a header map per call.
func NewHTTPClient(timeout time.Duration, maxConns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(100, 2*maxConns)
	t.MaxIdleConnsPerHost = max(2, maxConns)
	t.DisableCompression = true
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{
		Timeout:   timeout,
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Exchange makes the one HTTP attempt of a Status call and reads at most
// MaxBodyBytes of the body into buf (see GetBuffer), returning buf's bytes:
// the caller must be done with them before it puts buf back. A failure is
// an *Error: ErrTransport when there was no response, ErrBadResponse when
// the body is too large or cut short. Error texts never contain the URL.
func Exchange(client *http.Client, req *http.Request, provider string, buf *bytes.Buffer) (*http.Response, []byte, error) {
	// One attempt that follows no redirect and keeps no cookie: the
	// client's transport is called directly, bounded by the client's
	// Timeout, which skips what http.Client.Do adds to every call for
	// redirects (a copy of the request's headers, the redirect loop).
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if client.Timeout > 0 && !boundedWithin(req.Context(), client.Timeout) {
		ctx, cancel := context.WithTimeout(req.Context(), client.Timeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, nil, transportError(provider, err)
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(&io.LimitedReader{R: resp.Body, N: MaxBodyBytes + 1}); err != nil {
		e := transportError(provider, err)
		e.HTTPStatus = resp.StatusCode
		return resp, nil, e
	}
	if buf.Len() > MaxBodyBytes {
		e := Errorf(provider, ErrBadResponse, "body larger than %d bytes", MaxBodyBytes)
		e.HTTPStatus = resp.StatusCode
		return resp, nil, e
	}
	return resp, buf.Bytes(), nil
}

// boundedWithin reports whether ctx ends within d from now, so that a
// call under it needs no timer of its own (and no copy of its request to
// carry one): the subscriber gives every check a deadline of the client's
// Timeout.
func boundedWithin(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && !deadline.After(time.Now().Add(d))
}

// bodies recycles the buffers response bodies are read into: what the
// parsers keep of a body they copy, so a buffer is free once the parse
// returned, and a body no longer costs a few allocations every check.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps a rare large body's buffer out of the pool.
const maxPooledBuffer = 64 << 10

// GetBuffer returns an empty buffer for Exchange.
func GetBuffer() *bytes.Buffer { return bodies.Get().(*bytes.Buffer) }

// PutBuffer hands buf back once nothing uses its bytes.
func PutBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		buf.Reset()
		bodies.Put(buf)
	}
}

func transportError(provider string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop method and URL
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Errorf(provider, ErrTransport, "timeout")
	case errors.Is(err, context.Canceled):
		return Errorf(provider, ErrTransport, "canceled")
	}
	return Errorf(provider, ErrTransport, "%v", err)
}

// CheckHTTPStatus classifies a response status that is not 2xx, and returns
// nil for 2xx: 401 and 403 are ErrAuth; 429 is ErrRateLimited; 408 and 5xx
// are ErrUnavailable; anything else is ErrHTTPStatus. Retry-After is read on
// 429 and 503. All of them are Retryable: an HTTP status alone never
// settles a payment.
func CheckHTTPStatus(provider string, resp *http.Response, now time.Time) *Error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	var cause error
	switch {
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		cause = ErrAuth
	case code == http.StatusTooManyRequests:
		cause = ErrRateLimited
	case code == http.StatusRequestTimeout, code >= 500:
		cause = ErrUnavailable
	default:
		cause = ErrHTTPStatus
	}
	e := &Error{Provider: provider, Err: cause, HTTPStatus: code}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		e.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// RetryAfter parses a Retry-After value, delay-seconds or an HTTP date, into
// a wait from now. Missing, invalid or past values give 0.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Beyond a day is nonsense for a status API; cap before multiplying
		// so a huge value cannot overflow.
		return time.Duration(min(secs, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// BadResponse builds the error for a body that cannot be read as the
// provider's documented shape. The body itself is never quoted.
func BadResponse(provider string, status int, format string, args ...any) *Error {
	e := Errorf(provider, ErrBadResponse, format, args...)
	e.HTTPStatus = status
	return e
}

// decodeOptions keep what encoding/json accepted of a provider body: a
// repeated member name (the last one counts) and invalid UTF-8 (replaced
// by U+FFFD). Rejecting them would turn a genuine success with an odd
// byte in a customer name into checks until the deadline; what decides a
// verdict is read and, for AppotaPay, authenticated after decoding.
var decodeOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// DecodeJSON decodes a response body into v (encoding/json/v2 semantics:
// member names match exactly, unknown members are skipped). Failure is
// ErrBadResponse with the offset or member that broke, never the body's
// content.
func DecodeJSON(provider string, status int, body []byte, v any) *Error {
	err := json.Unmarshal(body, v, decodeOptions)
	if err == nil {
		return nil
	}
	var se *jsontext.SyntacticError
	var te *json.SemanticError
	switch {
	case errors.As(err, &se):
		return BadResponse(provider, status, "invalid JSON at offset %d", se.ByteOffset)
	case errors.As(err, &te):
		return BadResponse(provider, status, "member %q has JSON type %s", te.JSONPointer, te.JSONKind)
	}
	return BadResponse(provider, status, "invalid JSON")
}

// Decode reads raw into v as DecodeJSON does. When raw is an object that
// ValidJSON accepts, it is read by walking it (ObjectText, Members), with
// member called on each top-level member; anything else, and any walk
// that member stops with an error (ErrUnexpectedKind where DecodeJSON
// would refuse a member's kind), is left to DecodeJSON, which starts
// again from the zero value and says what is wrong. Each provider holds
// its walk to DecodeJSON's result with a fuzz test.
func Decode[T any](provider string, status int, raw []byte, v *T, member func(name, value string) error) *Error {
	if obj, ok := ObjectText(raw); ok && Members(obj, member) == nil {
		return nil
	}
	// Decoded into a value of its own, so that v, which DecodeJSON would
	// make escape, can stay on the caller's stack.
	fresh := new(T)
	e := DecodeJSON(provider, status, raw, fresh)
	*v = *fresh
	return e
}

// ErrUnexpectedKind stops a walk at a member of a kind DecodeJSON refuses.
var ErrUnexpectedKind = errors.New("member of an unexpected kind")

// Endpoint joins a provider base URL (scheme, host, optional path prefix)
// with a documented path. The base must be an absolute http or https URL
// without query, fragment or user info (credentials never go in URLs).
func Endpoint(base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("scheme must be http or https")
	case u.Host == "":
		return "", errors.New("host is missing")
	case u.User != nil:
		return "", errors.New("user info is not allowed")
	case u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("query and fragment are not allowed")
	}
	return strings.TrimSuffix(u.String(), "/") + path, nil
}
