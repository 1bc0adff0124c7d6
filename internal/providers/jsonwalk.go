package providers

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The walk below reads the members of JSON that was validated whole
// first. On valid JSON, finding where a name or value ends needs only
// quotes, escapes and bracket depth, so the walk needs no decoder and no
// copies; the subscriber reads requests with it. FuzzMembers checks it
// against a jsontext token loop.

// ValidJSON reports whether body is one JSON value with optional
// surrounding whitespace, accepting what DecodeJSON accepts: a repeated
// member name and invalid UTF-8 inside strings.
func ValidJSON(body []byte) bool {
	return jsontext.Value(body).IsValid(decodeOptions)
}

// Members calls member with the name and value of each member of obj, a
// JSON object (starting with '{') inside JSON that ValidJSON accepted, in
// order, and stops at the first error member returns. Values, and names
// that needed no unescaping, alias obj.
func Members(obj []byte, member func(name, value []byte) error) error {
	i := skipSpace(obj, 1)
	for obj[i] != '}' {
		nameEnd := stringEnd(obj, i)
		name, err := unquoteName(obj[i:nameEnd])
		if err != nil {
			return err
		}
		i = skipSpace(obj, skipSpace(obj, nameEnd)+1) // past ':'
		end := valueEnd(obj, i)
		if err := member(name, obj[i:end:end]); err != nil {
			return err
		}
		if i = skipSpace(obj, end); obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++ // the escaped byte cannot end the string
		}
	}
	return i + 1
}

// valueEnd returns the index after the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for ; i < len(b); i++ { // a number, true, false or null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// unquoteName decodes a member name; most need no decoding, and are
// returned without a copy.
func unquoteName(raw []byte) ([]byte, error) {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return []byte(s), err
}
