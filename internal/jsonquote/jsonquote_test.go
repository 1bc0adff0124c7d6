package jsonquote

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// FuzzAppend holds Append to jsontext.AppendQuote, byte for byte.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain text 123", `a"b`, `a\b`, "tab\there", "\x7f", "é", "\xff", "<&>", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := jsontext.AppendQuote([]byte("x"), s)
		if got := Append([]byte("x"), s); string(got) != string(want) {
			t.Fatalf("Append(%q) = %s, want %s", s, got, want)
		}
	})
}
