package providers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// scalarByUnmarshal is what Scalar must equal: a full json.Unmarshal of a
// string or a number.
func scalarByUnmarshal(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
	return "", false
}

func TestScalar(t *testing.T) {
	tests := []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{`"00"`, "00", true},
		{`"PENDING \/ TRANSAKSI"`, "PENDING / TRANSAKSI", true},
		{`"ünïcødé"`, "ünïcødé", true},
		{`"tab\there"`, "tab\there", true},
		{`""`, "", true},
		{"\"bad\xffutf8\"", "bad\ufffdutf8", true},
		{`9732795`, "9732795", true},
		{`-1.5e3`, "-1.5e3", true},
		{`12 `, "", false}, // json.Number would drop the space; a RawMessage never has it
		{`01`, "", false},
		{`-`, "", false},
		{`"unterminated`, "", false},
		{`"a"b"`, "", false},
		{`null`, "", false},
		{`true`, "", false},
		{`{"a":1}`, "", false},
		{``, "", false},
	}
	for _, tc := range tests {
		got, ok := Scalar(json.RawMessage(tc.raw))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Scalar(%q) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.wantOK)
		}
	}
}

// FuzzScalar checks the fast paths against json.Unmarshal.
func FuzzScalar(f *testing.F) {
	for _, s := range []string{`"00"`, `"a\"b"`, `"\u00e9"`, `123`, `-0.5E+2`, `"x` + "\x01" + `"`, `1.`, `"` + "\xc3" + `"`, `7 `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := Scalar(raw)
		want, wantOK := scalarByUnmarshal(raw)
		if got == want && ok == wantOK {
			return
		}
		// The one difference allowed: a number with whitespace after it,
		// which no RawMessage holds, is refused rather than trimmed.
		if !ok && wantOK && raw[0] != '"' && strings.TrimRight(string(raw), " \t\r\n") != string(raw) {
			return
		}
		t.Fatalf("Scalar(%q) = %q, %v; Unmarshal gives %q, %v", raw, got, ok, want, wantOK)
	})
}

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
		{"escapes decoded", `{"code":"A\/B \u00e9"}`, "A/B é", true},
		{"invalid UTF-8 replaced", "{\"code\":\"bad\xffutf8\"}", "bad\ufffdutf8", true},
		{"null is unset", `{"code":null}`, "", false},
		{"object is unset, not an error", `{"code":{"a":[1,2]}}`, "", false},
		{"bool is unset", `{"code":true}`, "", false},
		{"absent", `{"other":"00"}`, "", false},
		{"names match exactly", `{"Code":"00"}`, "", false},
		{"a repeated name: the last counts", `{"code":"01","code":"00"}`, "00", true},
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
	for raw, want := range map[string]string{`137110`: "137110", `"52370"`: "52370", `"12.50"`: "12.50", `1e3`: "", `"01"`: "", `"abc"`: "", `null`: ""} {
		var b struct {
			Amount Text `json:"amount"`
		}
		if err := DecodeJSON("test", 200, []byte(`{"amount":`+raw+`}`), &b); err != nil {
			t.Fatal(err)
		}
		got, ok := b.Amount.Amount()
		if string(got) != want || ok != (want != "") {
			t.Errorf("Amount of %s = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

// FuzzAppendJSONString checks the quoting against encoding/json, whose
// bytes the request bodies keep.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"091283746520", "", `a"b\c`, "<script>&amp;</script>", "line\nbreak\t\x00\x1f\x7f",
		"caf\u00e9 \u65e5\u672c", "\u2028\u2029", "bad\xff\xfeutf8", `","ref_id":"other`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}
