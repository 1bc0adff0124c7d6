package publisher

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reflected is Event without its MarshalJSON: what encoding/json writes
// from the struct tags, the reference the encoder must agree with.
type reflected Event

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	full := fullEvent()
	minimal := NewEvent(Data{RequestID: "r1", Provider: "paypal", Status: StatusRejected, Reason: ReasonUnknownProvider})
	hostile := NewEvent(Data{
		RequestID: "r2", Provider: "ayopop", Reference: "</script>\u2028\"\\\x01", Status: StatusFailed,
		ProviderMessage: "bad \xff utf-8", Metadata: map[string]string{"": "", "\"k\"": "<&>"},
		Details: json.RawMessage(`{"bills":[{"amount":-1.5e3,"partial":true},null],"count":7,"empty":{},"nil_list":null,` +
			`"pairs":[{"key":"a","value":"\u003c/b\u003e"}],"text":"</script>\u2028"}`),
	})
	for name, ev := range map[string]Event{"full": full, "minimal": minimal, "hostile": hostile} {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(reflected(ev))
			if err != nil {
				t.Fatal(err)
			}
			// encoding/json re-escapes a Marshaler's output for HTML, so
			// compare the encoder's own bytes too.
			enc := encoders.Get().(*encoder)
			defer encoders.Put(enc)
			own, err := enc.encode(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decodeAny(t, want), decodeAny(t, own)); diff != "" {
				t.Errorf("encoder and encoding/json disagree (-reflection +encoder):\n%s", diff)
			}
			// Invalid UTF-8 becomes U+FFFD either way; encoding/json
			// writes it escaped.
			if !strings.Contains(string(want), `\ufffd`) && string(got) != string(want) {
				t.Errorf("json.Marshal(ev) = %s\nwant %s", got, want)
			}
		})
	}
}

func TestEncodeRefusesWhatIsNotANumber(t *testing.T) {
	for _, n := range []string{`1}`, `{"a":1}`, `1 `, ` 1`, `"1"`, `1,"x":2`, `NaN`, `01`} {
		ev := NewEvent(Data{RequestID: "r", Provider: "iak", Status: StatusSuccess, Amount: json.Number(n)})
		if b, err := json.Marshal(ev); err == nil {
			t.Errorf("amount %q encoded as %s, want an error", n, b)
		}
	}
}

func TestEncodeRefusesDetailsThatAreNotOneObject(t *testing.T) {
	for _, d := range []string{`{"a":1}}`, `{"a":1},{"b":2}`, `{"a":1`, `[1]`, `"x"`, "{\"a\":\"\xff\"}", `1`, ` {}`} {
		ev := NewEvent(Data{RequestID: "r", Provider: "iak", Status: StatusSuccess, Details: json.RawMessage(d)})
		if b, err := json.Marshal(ev); err == nil {
			t.Errorf("details %q encoded as %s, want an error", d, b)
		}
	}
}

// FuzzEncode checks the encoder against encoding/json on events built
// from arbitrary strings, numbers and times; details are the compact
// object encoding/json writes of them.
func FuzzEncode(f *testing.F) {
	f.Add("ord-1", "091283746520", "PAYMENT SUCCESS", "order_id", "7781", "137110", int64(1795000000123456789), 3)
	f.Add("x", "</tag>&", "\xff\xfe", "", "\u2028", "-0.5E+2", int64(0), 0)
	f.Add("", "", "", "k", "", "1 ", int64(-62135596800000000), -1)
	f.Fuzz(func(t *testing.T, id, ref, msg, key, value, number string, nanos int64, attempts int) {
		ev := NewEvent(Data{
			RequestID: id, Provider: "iak", Reference: ref, Status: StatusSuccess,
			ProviderMessage: msg, Amount: json.Number(number), Attempts: attempts,
			RequestedAt: time.Unix(0, nanos), ResolvedAt: time.Unix(0, nanos).Add(time.Second),
			Metadata: map[string]string{key: value, value: key},
		})
		// encoding/json refuses a number that is not one.
		details, err := json.Marshal(map[string]any{key: []any{value, json.Number(number), map[string]any{value: true}}})
		if err == nil {
			ev.Data.Details = details
		}
		want, wantErr := json.Marshal(reflected(ev))
		enc := encoders.Get().(*encoder)
		defer encoders.Put(enc)
		got, err := enc.encode(&ev)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("encoder error %v, encoding/json error %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("encoder wrote invalid JSON: %s", got)
		}
		if diff := cmp.Diff(decodeAny(t, want), decodeAny(t, got)); diff != "" {
			t.Fatalf("encoder and encoding/json disagree (-reflection +encoder):\n%s", diff)
		}
		if !strings.ContainsAny(string(want), `\`) && string(got) != string(want) {
			t.Fatalf("same structure, different bytes:\n got %s\nwant %s", got, want)
		}
	})
}

// decodeAny decodes b keeping numbers as written, so that a literal no
// float64 holds (1e700) compares too.
func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// FuzzIsNumber holds isNumber to encoding/json: a valid JSON value that
// starts with a sign or digit and ends with a digit is a number literal.
func FuzzIsNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "01", "1.", ".5", "1.5e3", "1E+9", "1e", "-", "", "1 ", "--1", "0.0e-0", "1.5e3x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) > 0 && (s[0] == '-' || isDigit(s[0])) && isDigit(s[len(s)-1]) && json.Valid([]byte(s))
		if got := isNumber(s); got != want {
			t.Fatalf("isNumber(%q) = %v, want %v", s, got, want)
		}
	})
}
