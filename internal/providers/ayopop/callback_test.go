package ayopop

import (
	"errors"
	"testing"

	"github.com/statusbridge/statusbridge/internal/providers"
)

func TestParseCallback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		body    string
		ref     string
		claimed providers.State
	}{
		{"documented sample", string(mustRead(t, "seed_callback_success.json")), "cropdrdevtest1", providers.StateSuccess},
		{"failed", `{"responseCode":101,"success":false,"data":{"refNumber":"r-1"}}`, "r-1", providers.StateFailed},
		{"processing", `{"responseCode":299,"success":false,"data":{"refNumber":"r-1"}}`, "r-1", providers.StatePending},
		{"success code, success false: claims nothing", `{"responseCode":0,"success":false,"data":{"refNumber":"r-1"}}`, "r-1", 0},
		{"no responseCode", `{"data":{"refNumber":"r-1"}}`, "r-1", 0},
		{"numeric refNumber", `{"responseCode":0,"success":true,"data":{"refNumber":12345}}`, "12345", providers.StateSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb, err := ParseCallback([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if cb.RefNumber != tc.ref || cb.Claimed != tc.claimed {
				t.Errorf("got %+v, want ref %q claimed %v", cb, tc.ref, tc.claimed)
			}
		})
	}
	for _, body := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{}`, `{"data":null}`, `{"data":{}}`, `{"data":{"refNumber":""}}`,
		`{"data":{"refNumber":"a"},"data":{"refNumber":"b"}}`,
		`{"responseCode":0,"success":true,"data":{"refNumber":"r"}} trailing`,
	} {
		if cb, err := ParseCallback([]byte(body)); !errors.Is(err, ErrCallback) {
			t.Errorf("%q: got %+v, %v; want ErrCallback", body, cb, err)
		}
	}
}

// FuzzParseCallback: whatever the body, ParseCallback returns a reference
// or ErrCallback, and never panics.
func FuzzParseCallback(f *testing.F) {
	f.Add(mustRead(f, "seed_callback_success.json"))
	f.Add([]byte(`{"responseCode":299,"success":false,"data":{"refNumber":"r-1"}}`))
	f.Add([]byte(`{"data":{"refNumber":"a"},"data":{"refNumber":"b"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := ParseCallback(body)
		if err != nil {
			if !errors.Is(err, ErrCallback) || cb != (Callback{}) {
				t.Fatalf("got %+v, %v", cb, err)
			}
			return
		}
		if cb.RefNumber == "" {
			t.Fatal("a callback without a reference")
		}
	})
}
