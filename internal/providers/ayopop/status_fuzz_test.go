package ayopop

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

// FuzzStatusResponse drives a whole Status call with an arbitrary HTTP
// answer: status code, Retry-After, Content-Type and body. Whatever comes
// back, the call returns a retryable *providers.Error or a result; a
// verdict comes only from a 2xx answer; no error text carries a credential;
// Retry-After stays within a day.
func FuzzStatusResponse(f *testing.F) {
	for _, name := range []string{"seed_callback_success.json", "seed_payment_processing.json", "seed_dev_success.json"} {
		f.Add(200, "", "application/json", mustRead(f, name))
	}
	f.Add(200, "", "application/json", []byte(`{"responseCode":398,"success":false,"data":{"refNumber":"cropdrdevtest1"}}`))
	f.Add(401, "", "application/json", []byte(`{"responseCode":401,"success":false}`))
	f.Add(429, "120", "application/json", []byte(`{"message":"too many requests"}`))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", "text/html", []byte(`<html>down</html>`))
	f.Add(503, "-1", "", []byte(nil))
	f.Add(200, "", "text/plain", []byte(`{"responseCode":0,"success":true,"data":{"refNumber":"other"}}`))

	const key, secret = "fuzzSECRETkey", "fuzz-SECRET-hmac"
	f.Fuzz(func(t *testing.T, status int, retryAfter, contentType string, body []byte) {
		status = 100 + int(uint(status)%500)
		hc := &http.Client{Transport: providertest.Answer(status, retryAfter, contentType, body)}
		c, err := New(Config{BaseURL: "https://ayopop.invalid", APIKey: key, APISecret: secret}, hc)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Status(t.Context(), providers.Query{Reference: "cropdrdevtest1"})
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *providers.Error", err)
			}
			if pe.Kind != providers.Retryable {
				t.Fatalf("kind %v: no answer may end a check for good", pe.Kind)
			}
			if pe.RetryAfter < 0 || pe.RetryAfter > 24*time.Hour {
				t.Fatalf("RetryAfter %v from %q", pe.RetryAfter, retryAfter)
			}
			providertest.AssertNoSecrets(t, []string{key, secret}, err.Error(), fmt.Sprintf("%+v", err))
			return
		}
		if status < 200 || status >= 300 {
			t.Fatalf("HTTP %d gave a result: %+v", status, res)
		}
		if res.State.Final() && res.Status == "" {
			t.Fatalf("verdict %v without Ayopop's success flag", res.State)
		}
	})
}
