package appotapay

import (
	"context"
	"net/http"
	"testing"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

// BenchmarkToken mints the X-APPOTAPAY-AUTH JWT every call sends.
func BenchmarkToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token(testPartner, testAPIKey, testSecret, vectorTime); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the response signature check of a success answer.
func BenchmarkVerify(b *testing.B) {
	var tx transaction
	var sig providers.Text
	if err := providers.DecodeJSON(Name, 200, []byte(seedTx), &tx); err != nil {
		b.Fatal(err)
	}
	if err := providers.DecodeJSON(Name, 200, []byte(`"`+seedSig+`"`), &sig); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := verify(testSecret, "0", tx, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSuccess reads and authenticates a signed success answer.
func BenchmarkParseSuccess(b *testing.B) {
	body := mustRead(b, "seed_success.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parse(body, 200, testSecret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatus is one Status call against a recorded success answer:
// the token, the client plumbing, the parse and the signature check.
func BenchmarkStatus(b *testing.B) {
	c, err := New(Config{BaseURL: DevURL, PartnerCode: testPartner, APIKey: testAPIKey, SecretKey: testSecret},
		&http.Client{Transport: providertest.Canned(mustRead(b, "seed_success.json"))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	q := providers.Query{Reference: "TESTREF-1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Status(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}
