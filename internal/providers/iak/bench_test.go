package iak

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/statusbridge/statusbridge/internal/providers"
)

// cannedTransport answers every request with body, without a network.
type cannedTransport []byte

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(c)),
		Request:    r,
	}, nil
}

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sign("123123123", "testapikey", "cs")
	}
}

func BenchmarkParseSuccess(b *testing.B) {
	body := mustRead(b, "seed_success.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parse(body, 200, "091283746520"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePending(b *testing.B) {
	body := mustRead(b, "seed_pending.json")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = parse(body, 200, "091283746520")
	}
}

// BenchmarkStatus is one Status call against a recorded success answer:
// building and signing the request, the client plumbing and the parse.
func BenchmarkStatus(b *testing.B) {
	c, err := New(Config{BaseURL: SandboxURL, Username: "123123123", APIKey: providers.Secret("testapikey")},
		&http.Client{Transport: cannedTransport(mustRead(b, "seed_success.json"))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	q := providers.Query{Reference: "091283746520"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Status(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
