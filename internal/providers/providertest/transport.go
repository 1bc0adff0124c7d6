package providertest

import (
	"bytes"
	"io"
	"net/http"
)

// Transport answers every request of an *http.Client with whatever answer
// returns, without a network: for benchmarks and fuzz tests of a whole
// Status call.
type Transport func(*http.Request) (*http.Response, error)

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(r *http.Request) (*http.Response, error) { return t(r) }

// Canned answers every request with HTTP 200, a JSON content type and body,
// after reading the request's body as a server would.
func Canned(body []byte) Transport {
	return func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			_ = r.Body.Close()
		}
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(bytes.NewReader(body)),
			Request:    r,
		}, nil
	}
}

// Answer answers every request with status, the Retry-After and
// Content-Type headers when they are not empty, and body: any answer a
// fuzz target chooses.
func Answer(status int, retryAfter, contentType string, body []byte) Transport {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
	}
}
