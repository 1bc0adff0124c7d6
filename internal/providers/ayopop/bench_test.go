package ayopop

import (
	"context"
	"net/http"
	"testing"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

const benchReference = "HNAY0020200604000067000000006720200604150658000067"

// BenchmarkToken is the TOKEN JWT every call signs (HS256).
func BenchmarkToken(b *testing.B) {
	claims := []byte(`{"partnerId":"UP0t6fB4qZ7j","refNumber":"prdtesttd11345"}`)
	b.ReportAllocs()
	for b.Loop() {
		token("test-api-secret", claims)
	}
}

func BenchmarkParseSuccess(b *testing.B) {
	body := mustRead(b, "seed_dev_success.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parse(body, 200, benchReference); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatus is one Status call against a recorded success answer:
// the request body, the token, the client plumbing and the parse.
func BenchmarkStatus(b *testing.B) {
	c, err := New(Config{BaseURL: DevURL, APIKey: "UP0t6fB4qZ7j", APISecret: "test-api-secret"},
		&http.Client{Transport: providertest.Canned(mustRead(b, "seed_dev_success.json"))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	q := providers.Query{Reference: benchReference}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Status(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
