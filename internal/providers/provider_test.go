package providers

import (
	"encoding/json"
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
