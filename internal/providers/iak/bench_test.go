package iak

import (
	"context"
	"net/http"
	"testing"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

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
		&http.Client{Transport: providertest.Canned(mustRead(b, "seed_success.json"))})
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
