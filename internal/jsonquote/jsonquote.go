// Package jsonquote writes JSON strings for the event and details
// encoders, which quote every text that comes from a request or a
// provider.
package jsonquote

import "github.com/go-json-experiment/json/jsontext"

// Append appends s to dst as a JSON string, byte for byte as
// jsontext.AppendQuote writes it: invalid UTF-8 comes out as U+FFFD (as
// encoding/json writes it) rather than failing. Printable ASCII other
// than '"' and '\\', which most texts are, is copied as it is, skipping
// jsontext's general path.
func Append(dst []byte, s string) []byte {
	if plainASCII(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst, _ = jsontext.AppendQuote(dst, s) // the error only reports the replaced UTF-8
	return dst
}

// plainASCII reports whether s is printable ASCII other than '"' and
// '\\', which a JSON string holds unescaped.
func plainASCII(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
