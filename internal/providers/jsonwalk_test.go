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
// first.
func walk(raw string) []string {
	var out []string
	switch raw[0] {
	case '{':
		_ = Members(raw, func(name, value string) error {
			out = append(out, "name "+name, "value "+value)
			out = append(out, walk(value)...)
			return nil
		})
	case '[':
		_ = Elements(raw, func(value string) error {
			out = append(out, "element "+value)
			out = append(out, walk(value)...)
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
		`{"k":"\\\\","l":"x\\\"y\\\\","m":["]","}","\\\\\\"",{"n":"{["}]}`,
		`{"a":[[],{},[{}],""],"b":-0.0e+1,"c":false}`,
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
		if got := walk(string(raw)); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("walk of %q:\n got %q\nwant %q", body, got, want)
		}
	})
}

func TestMembersStopsAtTheFirstError(t *testing.T) {
	stop := errors.New("stop")
	var seen []string
	err := Members(`{"a":1,"b":2,"c":3}`, func(name, _ string) error {
		seen = append(seen, name)
		if name == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || fmt.Sprint(seen) != "[a b]" {
		t.Errorf("Members = %v after %v; want stop after [a b]", err, seen)
	}
}
