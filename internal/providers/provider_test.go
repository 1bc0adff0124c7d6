package providers

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeJSONText(t *testing.T) {
	type body struct {
		Code Text `json:"code"`
	}
	tests := []struct {
		name      string
		raw       string
		want      string
		wantValid bool
	}{
		{"string", `{"code":"00"}`, "00", true},
		{"number keeps its literal", `{"code":9732795}`, "9732795", true},
		{"number with exponent keeps its literal", `{"code":-1.5e3}`, "-1.5e3", true},
		{"escapes decoded", `{"code":"A\/B \u00e9"}`, "A/B é", true},
		{"invalid UTF-8 replaced", "{\"code\":\"bad\xffutf8\"}", "bad\ufffdutf8", true},
		{"empty string is set", `{"code":""}`, "", true},
		{"null is unset", `{"code":null}`, "", false},
		{"object is unset, not an error", `{"code":{"a":[1,2]}}`, "", false},
		{"bool is unset", `{"code":true}`, "", false},
		{"absent", `{"other":"00"}`, "", false},
		{"names match exactly", `{"Code":"00"}`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b body
			if err := DecodeJSON("test", 200, []byte(tc.raw), &b); err != nil {
				t.Fatal(err)
			}
			if got, valid := b.Code.Get(); got != tc.want || valid != tc.wantValid {
				t.Errorf("Get() = %q, %v; want %q, %v", got, valid, tc.want, tc.wantValid)
			}
		})
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	type body struct {
		Data *struct {
			Code Text `json:"code"`
		} `json:"data"`
	}
	tests := []struct{ raw, want string }{
		{`{"data":{"code":"00"`, "invalid JSON at offset"},
		{`<html>secret-token</html>`, "invalid JSON at offset 0"},
		{`{"data":"secret-token"}`, `member "/data" has JSON type string`},
		{`{"data":{"code":"01","code":"00"}}`, "repeated member name at offset"},
		{`{"secret-token":1,"secret-token":2}`, "repeated member name at offset"},
	}
	for _, tc := range tests {
		var b body
		err := DecodeJSON("test", 200, []byte(tc.raw), &b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeJSON(%q) = %v, want an error containing %q", tc.raw, err, tc.want)
			continue
		}
		if !errors.Is(err, ErrBadResponse) || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("DecodeJSON(%q) = %v: want ErrBadResponse without the body's content", tc.raw, err)
		}
	}
}

func TestTextAmount(t *testing.T) {
	for raw, want := range map[string]string{
		`137110`: "137110", `"52370"`: "52370", `"12.50"`: "12.50", `-0.5`: "-0.5",
		`1e3`: "", `"01"`: "", `"1."`: "", `".5"`: "", `"12,5"`: "", `"abc"`: "", `null`: "", `true`: "",
	} {
		var b struct {
			Text   Text   `json:"text"`
			Amount Amount `json:"amount"`
		}
		if err := DecodeJSON("test", 200, []byte(`{"text":`+raw+`,"amount":`+raw+`}`), &b); err != nil {
			t.Fatal(err)
		}
		if got := b.Text.Amount().Number(); string(got) != want {
			t.Errorf("Text.Amount of %s = %q; want %q", raw, got, want)
		}
		if got := b.Amount.Number(); string(got) != want {
			t.Errorf("Amount of %s = %q; want %q", raw, got, want)
		}
	}
}

func TestDecodeJSONBool(t *testing.T) {
	for raw, want := range map[string]struct{ value, ok bool }{
		`true`: {true, true}, `false`: {false, true}, `"true"`: {}, `1`: {}, `null`: {}, `[true]`: {},
	} {
		var b struct {
			Flag Bool `json:"flag"`
		}
		if err := DecodeJSON("test", 200, []byte(`{"flag":`+raw+`}`), &b); err != nil {
			t.Fatal(err)
		}
		if value, ok := b.Flag.Get(); value != want.value || ok != want.ok {
			t.Errorf("Bool of %s = %v, %v; want %v, %v", raw, value, ok, want.value, want.ok)
		}
	}
}

func TestDetails(t *testing.T) {
	var in struct {
		Amount Amount `json:"amount"`
		Bad    Amount `json:"bad"`
		Flag   Bool   `json:"flag"`
		Name   Text   `json:"name"`
		Empty  Text   `json:"empty"`
		Absent Text   `json:"absent"`
	}
	body := `{"amount":"-12.50","bad":"1e3","flag":false,"name":"</x>\u2028","empty":"","absent":null}`
	if err := DecodeJSON("test", 200, []byte(body), &in); err != nil {
		t.Fatal(err)
	}
	type details struct { // keys in byte order
		Absent Text   `json:"absent,omitzero"`
		Amount Amount `json:"amount,omitzero"`
		Bad    Amount `json:"bad,omitzero"`
		Empty  Text   `json:"empty,omitzero"`
		Flag   Bool   `json:"flag,omitzero"`
		Name   Text   `json:"name,omitzero"`
	}
	got := Details(details{in.Absent, in.Amount, in.Bad, in.Empty, in.Flag, in.Name})
	const want = `{"amount":-12.50,"empty":"","flag":false,"name":"</x>` + "\u2028" + `"}`
	if string(got) != want {
		t.Errorf("Details = %s, want %s", got, want)
	}
	if got := Details(details{}); got != nil {
		t.Errorf("Details of nothing set = %q, want nil", got)
	}
}
