package subscriber

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// requestIDRE is the schema's request_id pattern, the reference that
// validRequestID must agree with.
var requestIDRE = regexp.MustCompile(requestIDPattern)

// FuzzValidRequestID checks validRequestID against the pattern.
func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"ord-7781-status", "", "a b", "é", "x:y.z_1-2", strings.Repeat("a", 128), strings.Repeat("a", 129), "a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validRequestID(id), requestIDRE.MatchString(id); got != want {
			t.Fatalf("validRequestID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}

// FuzzDecodeRequest feeds decodeRequest arbitrary bodies, seeded with every
// example of schemas/examples. It must never panic, and its answer must
// keep to the contract:
//   - an accepted request has a valid request_id, the subject's provider, a
//     valid reference and at most 32 metadata keys, and the published
//     schema accepts its body too;
//   - a refused one is either dead-lettered (for a reason from the fixed
//     set) or rejected with a request_id that is valid, so the rejection
//     can be answered;
//   - a body the schema accepts is refused only for what the schema cannot
//     express (size, repeated members, characters Go does not deem
//     printable outside ASCII).
func FuzzDecodeRequest(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(examplesDir, "*", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no examples (err = %v)", err)
	}
	known := []string{"iak", "ayopop", "appotapay"}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, subjectProvider(b, known))
	}
	for _, s := range []string{
		`{"request_id":"r","provider":"iak","reference":"x","request_id":"s"}`,
		`{"request_id":"r","provider":"iak","reference":"x","Request_ID":"s"}`,
		`{"request_id":"r","provider":"iak","reference":"x"}{"request_id":"s"}`,
		`{"request_id":"r","provider":"iak","reference":"\ud800"}`,
		`{"request_id":"r","provider":"iak","reference":"a\u0000b","metadata":{"k":1}}`,
		"\ufeff{\"request_id\":\"r\",\"provider\":\"iak\",\"reference\":\"x\"}",
		`{"request_id":"r","provider":"iak","reference":"x","deadline":"2026-02-30T00:00:00Z"}`,
		`{"request_id":"r","provider":"iak","reference":"x","deadline":"2026-11-23T10:00:00.123456789012Z"}`,
		`{"request_id":"r","provider":"iak","reference":"x","x":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}`,
		`{"request_id":"r","provider":"iak","reference":"x","metadata":{"a":"1","a":2}}`,
		` {"request_id":"r","provider":"iak","reference":"x"} `,
	} {
		f.Add([]byte(s), "iak")
	}
	f.Add([]byte(`{"request_id":"r","provider":"*","reference":"x"}`), "*")
	f.Add([]byte(`{"request_id":"r","provider":"appotapay","reference":"x"}`), "iak")

	c := jsonschema.NewCompiler()
	c.AssertFormat()
	schema, err := c.Compile(requestSchemaPath)
	if err != nil {
		f.Fatal(err)
	}
	deadLetters := []string{DeadLetterTooLarge, DeadLetterInvalidJSON, DeadLetterMissingRequestID, DeadLetterInvalidRequestID}

	f.Fuzz(func(t *testing.T, body []byte, subjectProvider string) {
		req, derr := decodeRequest(body, subjectProvider)
		// The schema cannot know the subject: compare bodies that name its
		// provider.
		var named struct {
			Provider any `json:"provider"`
		}
		_ = json.Unmarshal(body, &named, decodeOptions)
		schemaOK := slices.Contains(known, subjectProvider) && named.Provider == subjectProvider &&
			len(body) <= MaxBodyBytes && schemaAccepts(schema, body)

		if derr != nil {
			if derr.DeadLetter != "" {
				if !slices.Contains(deadLetters, derr.DeadLetter) {
					t.Fatalf("dead letter reason %q", derr.DeadLetter)
				}
			} else if !requestIDRE.MatchString(derr.Partial.RequestID) {
				t.Fatalf("rejected with request_id %q, which cannot be answered", derr.Partial.RequestID)
			}
			if p := derr.Partial; p.Reference != "" && !validReference(p.Reference) {
				t.Fatalf("rejection echoes the invalid reference %q", p.Reference)
			}
			if schemaOK && !schemaCannotSay(body, derr) {
				t.Fatalf("refused (%v) a body the schema accepts: %q", derr, body)
			}
			return
		}
		switch {
		case !requestIDRE.MatchString(req.RequestID):
			t.Fatalf("accepted request_id %q", req.RequestID)
		case req.Provider != subjectProvider:
			t.Fatalf("accepted provider %q on subject %q", req.Provider, subjectProvider)
		case !validReference(req.Reference):
			t.Fatalf("accepted reference %q", req.Reference)
		case len(req.Metadata) > MaxMetadataKeys:
			t.Fatalf("accepted %d metadata keys", len(req.Metadata))
		case len(body) > MaxBodyBytes:
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
		if slices.Contains(known, subjectProvider) && !schemaAccepts(schema, withoutNulls(t, body)) {
			t.Fatalf("accepted a body the schema refuses: %q", body)
		}
	})
}

func schemaAccepts(s *jsonschema.Schema, body []byte) bool {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	return err == nil && s.Validate(v) == nil
}

// withoutNulls drops the optional members that are null: decodeRequest
// reads them as absent, the schema's types do not allow null.
func withoutNulls(t *testing.T, body []byte) []byte {
	var m map[string]jsontext.Value
	if err := json.Unmarshal(body, &m, decodeOptions); err != nil {
		t.Fatalf("accepted a body that is not a JSON object: %q", body)
	}
	for _, k := range []string{"deadline", "metadata"} {
		if string(m[k]) == "null" {
			delete(m, k)
		}
	}
	out, err := json.Marshal(m, decodeOptions)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// schemaCannotSay reports whether decodeRequest refused a body for a
// reason the schema cannot express: a member repeated (the schema sees the
// last one), a reference of characters Go does not deem printable beyond
// what the schema's pattern names, or a JSON text Go reads differently
// (invalid UTF-8, which Go replaces).
func schemaCannotSay(body []byte, derr *decodeError) bool {
	d := derr.Detail
	if strings.Contains(d, "appears more than once") || !utf8.Valid(body) {
		return true
	}
	if strings.Contains(d, "reference must be") {
		var b struct {
			Reference string `json:"reference"`
		}
		if json.Unmarshal(body, &b, decodeOptions) == nil {
			for _, r := range b.Reference {
				if r > 0x7e {
					return true
				}
			}
		}
	}
	return false
}
