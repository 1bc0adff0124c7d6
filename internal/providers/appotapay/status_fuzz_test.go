package appotapay

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

// FuzzStatusResponse drives a whole Status call with an arbitrary HTTP
// answer: status code, Retry-After, Content-Type and body. Whatever comes
// back, the call returns a *providers.Error or a result; a verdict comes
// only from a 2xx answer whose signature verifies; no error text carries a
// credential; Retry-After stays within a day.
func FuzzStatusResponse(f *testing.F) {
	for _, name := range []string{"seed_success.json", "pending.json", "failed.json", "not_found.json"} {
		f.Add(200, "", "application/json", mustRead(f, name))
	}
	f.Add(401, "", "application/json", []byte(`{"errorCode":14,"message":"API Key is invalid"}`))
	f.Add(400, "", "application/json", []byte(`{"errorCode":1,"message":"invalid params"}`))
	f.Add(429, "120", "application/json", []byte(`{"message":"too many requests"}`))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", "text/html", []byte(`<html>down</html>`))
	f.Add(503, "99999999999999999999", "", []byte(nil))
	f.Add(200, "", "text/html", []byte(`<!DOCTYPE html>`))
	f.Add(302, "", "", []byte(nil))

	const secret = "fuzz-SECRET-key"
	const apiKey = "fuzz-SECRET-apikey"
	f.Fuzz(func(t *testing.T, status int, retryAfter, contentType string, body []byte) {
		status = 100 + int(uint(status)%500)
		hc := &http.Client{Transport: providertest.Answer(status, retryAfter, contentType, body)}
		c, err := New(Config{BaseURL: "https://appotapay.invalid", PartnerCode: "FUZZPARTNER", APIKey: apiKey, SecretKey: secret}, hc)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Status(t.Context(), providers.Query{Reference: "fuzz-ref"})
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *providers.Error", err)
			}
			if pe.RetryAfter < 0 || pe.RetryAfter > 24*time.Hour {
				t.Fatalf("RetryAfter %v from %q", pe.RetryAfter, retryAfter)
			}
			if status >= 300 && pe.Kind != providers.Retryable {
				t.Fatalf("HTTP %d ended the check for good: %v", status, err)
			}
			providertest.AssertNoSecrets(t, []string{secret, apiKey}, err.Error(), fmt.Sprintf("%+v", err))
			return
		}
		if status < 200 || status >= 300 {
			t.Fatalf("HTTP %d gave a result: %+v", status, res)
		}
		if res.State != providers.StatePending && !validSignature(body, secret) {
			t.Fatalf("verdict %v without a valid signature", res.State)
		}
		if strings.Contains(fmt.Sprint(res), secret) {
			t.Fatalf("result carries the secret: %+v", res)
		}
	})
}
