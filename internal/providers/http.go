package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxBodyBytes bounds every provider response body the clients read. The
// largest documented status response is a few KiB.
const MaxBodyBytes = 1 << 20

// NewHTTPClient returns the client the providers share: one attempt per call
// bounded by timeout, connection reuse sized for maxConns concurrent checks,
// no redirects (a status API that redirects is misconfigured, and following
// it could carry credentials elsewhere). The timeout bounds the whole call,
// reading the body included. Compression is off: status bodies are a few
// hundred bytes, and the parsers read plain ones (see Exchange).
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

// Exchange makes the one HTTP attempt of a Status call: it sends req,
// asking for JSON, reads at most MaxBodyBytes of the body and classifies
// the status. It returns the status and body of a 2xx answer. A failure is
// an *Error: ErrTransport when there was no response or the body broke off,
// ErrBadResponse when the body is too large, and for any other status the
// error checkHTTPStatus gives, returned with the body. now is the clock
// Retry-After is read against. Error texts never contain the URL.
func Exchange(client *http.Client, req *http.Request, provider string, now func() time.Time) (int, []byte, error) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	// A request naming no encoding would let a server pick any (RFC 9110
	// §12.5.3), and the parsers read plain bodies only.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, transportError(provider, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		e := transportError(provider, err)
		e.HTTPStatus = resp.StatusCode
		return resp.StatusCode, nil, e
	}
	if len(body) > MaxBodyBytes {
		return resp.StatusCode, nil, BadResponse(provider, resp.StatusCode, "body larger than %d bytes", MaxBodyBytes)
	}
	if e := checkHTTPStatus(provider, resp, now()); e != nil {
		return resp.StatusCode, body, e
	}
	return resp.StatusCode, body, nil
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

// checkHTTPStatus classifies a response status that is not 2xx, and returns
// nil for 2xx: 401 and 403 are ErrAuth; 429 is ErrRateLimited; 408 and 5xx
// are ErrUnavailable; anything else is ErrHTTPStatus. Retry-After is read on
// 429 and 503. All of them are Retryable: an HTTP status alone never
// settles a payment.
func checkHTTPStatus(provider string, resp *http.Response, now time.Time) *Error {
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
