package subscriber

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The request contract, as published: schemas/status.requested.v1.json and
// the examples beside it. Each example is checked against the schema and
// against decodeRequest: on every case the examples cover, the published
// contract and the bridge agree.

const (
	requestSchemaPath = "../../schemas/status.requested.v1.json"
	examplesDir       = "../../schemas/examples"
)

func TestRequestSchemaAcceptsValidExamples(t *testing.T) {
	schema := compileSchema(t, requestSchemaPath)
	known := providerEnum(t)
	for name, body := range examples(t, "valid", "request-") {
		t.Run(name, func(t *testing.T) {
			if err := validate(schema, body); err != nil {
				t.Fatalf("schema refuses a valid example: %v", err)
			}
			req, derr := decodeRequest(body, subjectProvider(body, known))
			if derr != nil {
				t.Fatalf("decodeRequest refuses a valid example: %v", derr)
			}
			var b struct {
				RequestID string            `json:"request_id"`
				Provider  string            `json:"provider"`
				Reference string            `json:"reference"`
				Deadline  string            `json:"deadline"`
				Metadata  map[string]string `json:"metadata"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatal(err)
			}
			want := Request{RequestID: b.RequestID, Provider: b.Provider, Reference: b.Reference, Metadata: b.Metadata}
			if b.Deadline != "" {
				d, err := time.Parse(time.RFC3339Nano, b.Deadline)
				if err != nil {
					t.Fatal(err)
				}
				want.Deadline = d
			}
			if diff := cmp.Diff(want, req, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decoded request differs from the body (-body +decoded):\n%s", diff)
			}
		})
	}
}

func TestRequestSchemaRefusesInvalidExamples(t *testing.T) {
	schema := compileSchema(t, requestSchemaPath)
	known := providerEnum(t)
	for name, body := range examples(t, "invalid", "request-") {
		t.Run(name, func(t *testing.T) {
			checkOneViolation(t, validate(schema, body))
			if _, derr := decodeRequest(body, subjectProvider(body, known)); derr == nil {
				t.Errorf("decodeRequest accepts an example the schema refuses")
			}
		})
	}
}

// TestRequestSchemaMatchesDecoderLimits pins the schema's numbers and
// request_id pattern to the decoder's.
func TestRequestSchemaMatchesDecoderLimits(t *testing.T) {
	var s struct {
		Required   []string `json:"required"`
		Properties struct {
			RequestID struct {
				Pattern string `json:"pattern"`
			} `json:"request_id"`
			Reference struct {
				MinLength int `json:"minLength"`
				MaxLength int `json:"maxLength"`
			} `json:"reference"`
			Metadata struct {
				MaxProperties int `json:"maxProperties"`
			} `json:"metadata"`
		} `json:"properties"`
	}
	readJSON(t, requestSchemaPath, &s)
	got := []any{s.Required, s.Properties.RequestID.Pattern, s.Properties.Reference.MinLength,
		s.Properties.Reference.MaxLength, s.Properties.Metadata.MaxProperties}
	want := []any{[]string{"request_id", "provider", "reference"}, requestIDPattern, 1, MaxReferenceLen, MaxMetadataKeys}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema limits differ from the decoder's (-decoder +schema):\n%s", diff)
	}
}

// TestRequestSchemaReferencePattern checks the reference pattern against
// validReference over the whole Basic Multilingual Plane: it must never
// refuse a character the bridge accepts, and the only characters it lets
// through that the bridge refuses are unassigned code points (which a
// portable pattern cannot name; the schema's description says so).
func TestRequestSchemaReferencePattern(t *testing.T) {
	var s struct {
		Properties struct {
			Reference struct {
				Pattern string `json:"pattern"`
			} `json:"reference"`
		} `json:"properties"`
	}
	readJSON(t, requestSchemaPath, &s)
	re := regexp.MustCompile(s.Properties.Reference.Pattern)
	assigned := []*unicode.RangeTable{unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co}
	var gaps int
	for r := rune(0); r <= 0xFFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue // surrogates: not a character in a Go string or in JSON text
		}
		s := string(r)
		bridge, schema := validReference(s), re.MatchString(s)
		switch {
		case bridge && !schema:
			t.Errorf("pattern refuses %U, which the bridge accepts", r)
		case !bridge && schema && unicode.In(r, assigned...):
			t.Errorf("pattern accepts %U (assigned, not printable), which the bridge refuses", r)
		case !bridge && schema:
			gaps++
		}
	}
	if gaps == 0 {
		t.Errorf("no unassigned code point got through the pattern: the schema's description overstates the gap")
	}
}

// subjectProvider is the provider token an example is published under:
// the provider it names when that is one the schema knows, else iak. (A
// body naming an unknown provider on that provider's own subject passes
// decodeRequest and is rejected by handle with reason unknown_provider.)
func subjectProvider(body []byte, known []string) string {
	var b struct {
		Provider any `json:"provider"`
	}
	if json.Unmarshal(body, &b, decodeOptions) == nil {
		if p, ok := b.Provider.(string); ok && slices.Contains(known, p) {
			return p
		}
	}
	return "iak"
}

func providerEnum(t *testing.T) []string {
	t.Helper()
	var s struct {
		Properties struct {
			Provider struct {
				Enum []string `json:"enum"`
			} `json:"provider"`
		} `json:"properties"`
	}
	readJSON(t, requestSchemaPath, &s)
	if len(s.Properties.Provider.Enum) == 0 {
		t.Fatal("schema lists no provider")
	}
	return s.Properties.Provider.Enum
}

// compileSchema compiles the schema at path with format assertions on, as
// the schemas ask of their validators.
func compileSchema(t *testing.T, path string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

func validate(s *jsonschema.Schema, body []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// checkOneViolation fails unless err is a schema violation of exactly one
// rule: an invalid example must show the one rule it is named after.
func checkOneViolation(t *testing.T, err error) {
	t.Helper()
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("schema accepts an invalid example (err = %v)", err)
	}
	if n := leaves(ve); n != 1 {
		t.Errorf("example breaks %d rules, want 1:\n%v", n, ve)
	}
}

func leaves(e *jsonschema.ValidationError) int {
	if len(e.Causes) == 0 {
		return 1
	}
	n := 0
	for _, c := range e.Causes {
		n += leaves(c)
	}
	return n
}

// examples reads schemas/examples/<kind>/<prefix>*.json, by file name.
func examples(t *testing.T, kind, prefix string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(examplesDir, kind, prefix+"*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no %s %s examples (err = %v)", kind, prefix, err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = b
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
