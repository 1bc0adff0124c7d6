package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// CheckDetails fails t unless details, a Result's Details, is nil or what
// providers.Details promises the event encoder: one compact JSON object,
// valid UTF-8 without repeated names, and the keys of every object in
// ascending byte order, as encoding/json orders map keys.
func CheckDetails(t testing.TB, details []byte) {
	t.Helper()
	if details == nil {
		return
	}
	v := jsontext.Value(bytes.Clone(details))
	if !v.IsValid() || v.Kind() != '{' {
		t.Fatalf("details %q: not one valid JSON object", details)
	}
	if err := v.Compact(); err != nil || !bytes.Equal(v, details) {
		t.Fatalf("details %q: not compact", details)
	}
	dec := jsontext.NewDecoder(bytes.NewReader(details))
	var last []*string // the previous key of each open object or array
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return // the end: the value was checked valid above
		}
		switch tok.Kind() {
		case '{':
			last = append(last, new(string))
			continue
		case '[':
			last = append(last, new(string)) // unused: arrays have no keys
			continue
		case '}', ']':
			last = last[:len(last)-1]
			continue
		}
		if kind, n := dec.StackIndex(dec.StackDepth()); kind == '{' && n%2 == 1 {
			// An object's name: it must sort after the one before it.
			top, name := last[len(last)-1], tok.String()
			if *top != "" && name <= *top {
				t.Fatalf("details %q: key %q after %q", details, name, *top)
			}
			*top = name
		}
	}
}

// DetailsJSON writes details as providers.Details does (keys sorted,
// strings as json/v2 writes them, json.Number as the number it holds), for
// tests that state the Details they expect as a map.
func DetailsJSON(details map[string]any) json.RawMessage {
	if len(details) == 0 {
		return nil
	}
	b, err := jsonv2.Marshal(numbersAsValues(details), jsonv2.Deterministic(true))
	if err != nil {
		panic(fmt.Sprintf("providertest.DetailsJSON: %v", err))
	}
	return b
}

// numbersAsValues replaces every json.Number in v by its literal, which
// encoding/json/v2 writes as it is.
func numbersAsValues(v any) any {
	switch v := v.(type) {
	case json.Number:
		return jsontext.Value(v)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = numbersAsValues(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = numbersAsValues(x)
		}
		return l
	}
	return v
}
