package providers

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The walk below reads the members of JSON that was validated whole
// first. On valid JSON, finding where a name or value ends needs only
// quotes, escapes and bracket depth, so the walk needs no decoder and no
// copies. The subscriber reads requests with it, and the providers read
// their answers with it (see ObjectText). FuzzMembers checks it against a
// jsontext token loop.

// ValidJSON reports whether body is one JSON value with optional
// surrounding whitespace, accepting what DecodeJSON accepts: a repeated
// member name and invalid UTF-8 inside strings.
func ValidJSON(body []byte) bool {
	return jsontext.Value(body).IsValid(decodeOptions)
}

// Members calls member with the name and value of each member of obj, a
// JSON object (starting with '{') inside JSON that ValidJSON accepted, in
// order, and stops at the first error member returns. Values, and names
// that needed no unescaping, are substrings of obj.
func Members(obj string, member func(name, value string) error) error {
	i := skipSpace(obj, 1)
	for obj[i] != '}' {
		nameEnd := stringEnd(obj, i)
		name, err := unquoteName(obj[i:nameEnd])
		if err != nil {
			return err
		}
		i = skipSpace(obj, skipSpace(obj, nameEnd)+1) // past ':'
		end := valueEnd(obj, i)
		if err := member(name, obj[i:end]); err != nil {
			return err
		}
		if i = skipSpace(obj, end); obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

// Elements calls element with each element of arr, a JSON array (starting
// with '[') inside JSON that ValidJSON accepted, in order, and stops at
// the first error element returns. Elements are substrings of arr.
func Elements(arr string, element func(value string) error) error {
	i := skipSpace(arr, 1)
	for arr[i] != ']' {
		end := valueEnd(arr, i)
		if err := element(arr[i:end]); err != nil {
			return err
		}
		if i = skipSpace(arr, end); arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return nil
}

// ObjectText returns body, trimmed, as a string when it is JSON that
// ValidJSON accepts and its value is an object: the form in which a
// provider reads its answer with Members and Text.SetJSON. One copy of the
// body is made here, and the texts taken from it are its substrings.
func ObjectText(body []byte) (string, bool) {
	start, end := 0, len(body)
	for start < end && isSpace(body[start]) {
		start++
	}
	for end > start && isSpace(body[end-1]) {
		end--
	}
	if start == end || body[start] != '{' || !ValidJSON(body) {
		return "", false
	}
	return string(body[start:end]), true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b string, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i].
func stringEnd(b string, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++ // the escaped byte cannot end the string
		}
	}
	return i + 1
}

// structural marks the bytes that open or close a value in a container;
// valueEnd skips everything else without looking at it further.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// valueEnd returns the index after the value that starts at b[i].
func valueEnd(b string, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for {
			for !structural[b[i]] {
				i++
			}
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			default: // '}', ']'
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
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

// unquoteName decodes a member name; most are ASCII without escapes and
// are returned without a copy.
func unquoteName(raw string) (string, error) {
	if plainJSONString(raw) {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	err := json.Unmarshal([]byte(raw), &s)
	return s, err
}

// plainJSONString reports whether raw, a JSON string from JSON that
// ValidJSON accepted, needs no decoding: it has no escapes and its content
// is valid UTF-8 (validation already refused control characters).
func plainJSONString(raw string) bool {
	ascii := true
	for i := 1; i < len(raw)-1; i++ {
		switch c := raw[i]; {
		case c == '\\':
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(raw[1:len(raw)-1])
}
