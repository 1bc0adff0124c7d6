package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// walk lists every name and value of the objects, and every element of
// the arrays, in a validated value that Members and Elements reach, depth
// first. It walks the value as a string too, and fails t when the two
// walks differ.
func walk(t *testing.T, raw []byte) []string {
	out := walkText(raw)
	if fromString := walkText(string(raw)); strings.Join(fromString, "\n") != strings.Join(out, "\n") {
		t.Fatalf("walk of %q as a string:\n got %q\nwant %q", raw, fromString, out)
	}
	return out
}

func walkText[T ~string | ~[]byte](raw T) []string {
	var out []string
	switch raw[0] {
	case '{':
		_ = Members(raw, func(name, value T) error {
			out = append(out, "name "+string(name), "value "+string(value))
			out = append(out, walkText(value)...)
			return nil
		})
	case '[':
		_ = Elements(raw, func(value T) error {
			out = append(out, "element "+string(value))
			out = append(out, walkText(value)...)
			return nil
		})
	}
	return out
}

// walkByDecoder is the reference walk: a jsontext token loop.
func walkByDecoder(raw []byte) ([]string, error) {
	var out []string
	if raw[0] != '{' && raw[0] != '[' {
		return nil, nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(raw), decodeOptions)
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	for kind := dec.PeekKind(); kind != '}' && kind != ']'; kind = dec.PeekKind() {
		label := "element "
		if raw[0] == '{' {
			name, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			out = append(out, "name "+name.String())
			label = "value "
		}
		value, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		value = bytes.Clone(value)
		out = append(out, label+string(value))
		inner, err := walkByDecoder(value)
		if err != nil {
			return nil, err
		}
		out = append(out, inner...)
	}
	return out, nil
}

// FuzzMembers checks the walk against a jsontext token loop on whatever
// ValidJSON accepts, and ValidJSON against encoding/json's Valid.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{"data":{"code":"00","n":-1.5e3,"list":[1,"a",{"b":null}],"t":true}}`,
		` { "a" : [ ] , "b" : { } , "c\"d" : "e\\\"" } `,
		`{"\u0061":"x","a":"y"}`,
		`[1,[2,[3]],{"x":"]"}]`,
		"{\"bad\xffutf8\":\"v\xfe\"}",
		`{"a":1,}`,
		`"just a string"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		valid := ValidJSON(body)
		if valid != json.Valid(body) {
			t.Fatalf("ValidJSON(%q) = %v, encoding/json says %v", body, valid, !valid)
		}
		if !valid {
			return
		}
		raw := bytes.TrimSpace(body)
		want, err := walkByDecoder(raw)
		if err != nil {
			t.Fatalf("the decoder failed on valid JSON %q: %v", body, err)
		}
		if got := walk(t, raw); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("walk of %q:\n got %q\nwant %q", body, got, want)
		}
	})
}

func TestMembersStopsAtTheFirstError(t *testing.T) {
	stop := errors.New("stop")
	var seen []string
	err := Members([]byte(`{"a":1,"b":2,"c":3}`), func(name, _ []byte) error {
		seen = append(seen, string(name))
		if string(name) == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || fmt.Sprint(seen) != "[a b]" {
		t.Errorf("Members = %v after %v; want stop after [a b]", err, seen)
	}
}
