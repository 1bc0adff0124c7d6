package publisher

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The event contract, as published: schemas/status.resolved.v1.json and the
// examples beside it, checked against the Event type and NewEvent.

var update = flag.Bool("update", false, "rewrite golden files")

const (
	eventSchemaPath   = "../../schemas/status.resolved.v1.json"
	requestSchemaPath = "../../schemas/status.requested.v1.json"
	examplesDir       = "../../schemas/examples"
	goldenSuccess     = "testdata/event_success.golden.json"
)

func TestEventSchemaAcceptsValidExamples(t *testing.T) {
	schema := compileSchema(t, eventSchemaPath)
	for name, body := range examples(t, "valid", "event-") {
		t.Run(name, func(t *testing.T) {
			if err := validate(schema, body); err != nil {
				t.Fatalf("schema refuses a valid example: %v", err)
			}
			var ev Event // every field of an example is one Event carries
			if err := json.Unmarshal(body, &ev, json.RejectUnknownMembers(true)); err != nil {
				t.Fatalf("example does not decode into Event: %v", err)
			}
			checkUnexpressedRules(t, ev)
			out, err := marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(schema, out); err != nil {
				t.Fatalf("schema refuses the example re-encoded from Event: %v\n%s", err, out)
			}
			if diff := cmp.Diff(generic(t, body), generic(t, out)); diff != "" {
				t.Errorf("Event round trip changed the example (-example +re-encoded):\n%s", diff)
			}
		})
	}
}

func TestEventSchemaRefusesInvalidExamples(t *testing.T) {
	schema := compileSchema(t, eventSchemaPath)
	for name, body := range examples(t, "invalid", "event-") {
		t.Run(name, func(t *testing.T) {
			checkOneViolation(t, validate(schema, body))
		})
	}
}

// TestNewEventValidates builds the event data of every outcome handle and
// decide can publish, the way they fill it, and checks the event against
// the schema and the rules the schema cannot express.
func TestNewEventValidates(t *testing.T) {
	schema := compileSchema(t, eventSchemaPath)
	requested := time.Date(2026, 11, 22, 17, 3, 40, 123456789, time.FixedZone("WIB", 7*3600))
	resolved := requested.Add(32 * time.Second)
	md := map[string]string{"order_id": "7781"}
	checked := func(status, reason string, attempts int) Data {
		return Data{RequestID: "ord-7781-status", Provider: "iak", Reference: "091283746520", Status: status, Reason: reason,
			Attempts: attempts, RequestedAt: requested, ResolvedAt: resolved, Metadata: md}
	}
	words := func(d Data) Data {
		d.ProviderStatus, d.ProviderCode, d.ProviderMessage = "3", "39", "PENDING / TRANSAKSI SEDANG DIPROSES"
		return d
	}
	errorWords := func(d Data) Data { // a failed check's *providers.Error: code and message only
		d.ProviderCode, d.ProviderMessage = "100", "INVALID SIGNATURE"
		return d
	}
	rejected := func(provider, reference, reason string, md map[string]string) Data {
		return Data{RequestID: "ord-7781-status", Provider: provider, Reference: reference, Status: StatusRejected, Reason: reason,
			RequestedAt: requested, ResolvedAt: resolved, Metadata: md}
	}
	success := checked(StatusSuccess, "", 3)
	success.ProviderStatus, success.ProviderCode, success.ProviderMessage = "1", "00", "PAYMENT SUCCESS"
	success.ProviderTransactionID, success.Amount, success.Currency = "9732795", "137110", "IDR"
	success.Details = stdjson.RawMessage(`{"nominal":129610,"tr_name":"JAORAH"}`)
	failed := checked(StatusFailed, ReasonProviderFailed, 1)
	failed.ProviderStatus, failed.ProviderCode, failed.ProviderMessage = "2", "37", "PEMBAYARAN GAGAL"

	for name, d := range map[string]Data{
		"success":                                  success,
		"success without provider words":           checked(StatusSuccess, "", 1),
		"failed provider_failed":                   failed,
		"failed not_found":                         words(checked(StatusFailed, ReasonNotFound, 4)),
		"expired deadline while pending":           words(checked(StatusExpired, ReasonDeadline, 12)),
		"expired deadline after transport errors":  checked(StatusExpired, ReasonDeadline, 12),
		"expired not_found":                        words(checked(StatusExpired, ReasonNotFound, 3)),
		"expired auth_rejected":                    errorWords(checked(StatusExpired, ReasonAuthRejected, 7)),
		"expired bad_signature":                    checked(StatusExpired, ReasonBadSignature, 7),
		"rejected invalid_request, no reference":   rejected("iak", "", ReasonInvalidRequest, md),
		"rejected invalid_request, bad metadata":   rejected("ayopop", "AYO-1", ReasonInvalidRequest, nil),
		"rejected invalid_request, unsafe subject": rejected("unknown", "", ReasonInvalidRequest, nil),
		"rejected invalid_request, deadline far":   rejected("iak", "091283746520", ReasonInvalidRequest, md),
		"rejected invalid_request by the provider": errorWords(checked(StatusRejected, ReasonInvalidRequest, 2)),
		"rejected unknown_provider":                rejected("paypal", "PP-7781", ReasonUnknownProvider, md),
		"rejected provider_not_configured":         rejected("appotapay", "INV-7781", ReasonProviderNotConfigured, nil),
	} {
		t.Run(name, func(t *testing.T) {
			ev := NewEvent(d)
			body, err := marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(schema, body); err != nil {
				t.Fatalf("schema refuses a NewEvent event: %v\n%s", err, body)
			}
			checkUnexpressedRules(t, ev)
			// The same event of a request that carried trace context.
			ev.TraceParent, ev.TraceState = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01", "rojo=00f067aa0ba902b7"
			if body, err = marshal(ev); err != nil {
				t.Fatal(err)
			}
			if err := validate(schema, body); err != nil {
				t.Fatalf("schema refuses a traced NewEvent event: %v\n%s", err, body)
			}
		})
	}
}

// checkUnexpressedRules checks the contract rules a JSON Schema cannot
// state, since they relate two fields.
func checkUnexpressedRules(t *testing.T, ev Event) {
	t.Helper()
	d := ev.Data
	got := []any{ev.ID, ev.Source, ev.Subject, ev.Time.Equal(d.ResolvedAt)}
	want := []any{EventID(d.Provider, d.RequestID), "/statusbridge/" + d.Provider, d.Reference, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("id, source, subject, time == resolved_at (-want +got):\n%s", diff)
	}
}

// TestEventSchemaListsEveryField keeps the schema and the Go types in step:
// the fields a fully populated event has are exactly the schema's
// properties, the statuses are the schema's enum, every reason is
// documented, and the fields echoed from the request are specified as in
// the request schema.
func TestEventSchemaListsEveryField(t *testing.T) {
	full := fullEvent()
	full.Data.Reason = ReasonDeadline // only success has no reason: set it too, to see every field
	// Only the events of traced requests have these.
	full.TraceParent, full.TraceState = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01", "rojo=1"
	b, err := marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]jsontext.Value
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	var data map[string]jsontext.Value
	if err := json.Unmarshal(ev["data"], &data); err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]jsontext.Value `json:"properties"`
		Defs       struct {
			Data struct {
				Properties map[string]jsontext.Value `json:"properties"`
			} `json:"data"`
		} `json:"$defs"`
	}
	readJSON(t, eventSchemaPath, &s)
	sorted := func(m map[string]jsontext.Value) []string { return slices.Sorted(maps.Keys(m)) }
	if diff := cmp.Diff(sorted(s.Properties), sorted(ev)); diff != "" {
		t.Errorf("envelope fields (-schema +Event):\n%s", diff)
	}
	dp := s.Defs.Data.Properties
	if diff := cmp.Diff(sorted(dp), sorted(data)); diff != "" {
		t.Errorf("data fields (-schema +Data):\n%s", diff)
	}

	var status struct {
		Enum []string `json:"enum"`
	}
	var reason struct {
		Description string `json:"description"`
	}
	if err := errors.Join(json.Unmarshal(dp["status"], &status), json.Unmarshal(dp["reason"], &reason)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{StatusSuccess, StatusFailed, StatusExpired, StatusRejected}, status.Enum); diff != "" {
		t.Errorf("status enum (-Go +schema):\n%s", diff)
	}
	for _, r := range []string{ReasonProviderFailed, ReasonNotFound, ReasonDeadline, ReasonInvalidRequest,
		ReasonUnknownProvider, ReasonProviderNotConfigured, ReasonAuthRejected, ReasonBadSignature} {
		if !strings.Contains(reason.Description, r+" (") {
			t.Errorf("reason %q is not documented in the schema", r)
		}
	}

	var req struct {
		Properties map[string]jsontext.Value `json:"properties"`
	}
	readJSON(t, requestSchemaPath, &req)
	for _, f := range []string{"request_id", "reference", "metadata"} {
		if diff := cmp.Diff(constraints(t, req.Properties[f]), constraints(t, dp[f])); diff != "" {
			t.Errorf("data.%s is not specified as the request's %s (-request +event):\n%s", f, f, diff)
		}
	}
}

// constraints is a property's schema without its description.
func constraints(t *testing.T, raw jsontext.Value) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "description")
	return m
}

func TestEventID(t *testing.T) {
	id := EventID("iak", "ord-7781-status")
	if again := EventID("iak", "ord-7781-status"); again != id {
		t.Errorf("EventID is not deterministic: %s, then %s", id, again)
	}
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 5 {
		t.Errorf("EventID = %q, want a name-based (version 5) UUID (err = %v)", id, err)
	}
	for _, other := range [][2]string{
		{"ayopop", "ord-7781-status"},
		{"iak", "ord-7782-status"},
		{"ia", "kord-7781-status"}, // provider and request_id are not simply concatenated
	} {
		if EventID(other[0], other[1]) == id {
			t.Errorf("EventID(%q, %q) = EventID(iak, ord-7781-status)", other[0], other[1])
		}
	}
}

// TestEventIDIsUUIDv5 holds EventID to the library's UUIDv5 of
// provider, a NUL and request_id: ids published before must not change.
func TestEventIDIsUUIDv5(t *testing.T) {
	for _, tc := range [][2]string{
		{"iak", "ord-7781-status"}, {"ayopop", "a"}, {"appotapay", strings.Repeat("r", 128)},
		{"unknown", ""}, {strings.Repeat("p", 300), strings.Repeat("q", 300)}, // beyond the stack buffer
	} {
		want := uuid.NewSHA1(idNamespace, []byte(tc[0]+"\x00"+tc[1])).String()
		if got := EventID(tc[0], tc[1]); got != want {
			t.Errorf("EventID(%q, %q) = %s, want %s", tc[0], tc[1], got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { EventID("iak", "ord-7781-status") }); n != 1 {
		t.Errorf("EventID allocates %v times, want 1 (its string)", n)
	}
}

// TestEventGolden pins the wire form of a fully populated success event,
// its id included: changing the id's derivation would break deduplication
// across a deploy. Regenerate with go test ./internal/publisher -update.
func TestEventGolden(t *testing.T) {
	got := goldenEvent(t)
	if err := validate(compileSchema(t, eventSchemaPath), got); err != nil {
		t.Fatalf("schema refuses the golden event: %v", err)
	}
	if *update {
		if err := os.WriteFile(goldenSuccess, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenSuccess)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("event differs from %s (-golden +got); if intended, rerun with -update:\n%s", goldenSuccess, diff)
	}
}

// goldenEvent is fullEvent as published, indented.
func goldenEvent(t *testing.T) []byte {
	t.Helper()
	b, err := marshal(fullEvent())
	if err != nil {
		t.Fatal(err)
	}
	v := jsontext.Value(b)
	if err := v.Indent(jsontext.WithIndent("  ")); err != nil {
		t.Fatal(err)
	}
	return append(v, '\n')
}

// fullEvent is a success event with every field set, under fixed times
// given in another zone and finer than a millisecond, as NewEvent gets them.
func fullEvent() Event {
	wib := time.FixedZone("WIB", 7*3600)
	return NewEvent(Data{
		RequestID:             "ord-7781-status",
		Provider:              "iak",
		Reference:             "091283746520",
		Status:                StatusSuccess,
		ProviderStatus:        "1",
		ProviderCode:          "00",
		ProviderMessage:       "PAYMENT SUCCESS",
		ProviderTransactionID: "9732795",
		Amount:                "137110",
		Currency:              "IDR",
		Attempts:              3,
		RequestedAt:           time.Date(2026, 11, 22, 17, 3, 40, 123456789, wib),
		ResolvedAt:            time.Date(2026, 11, 22, 17, 4, 12, 987654321, wib),
		Metadata:              map[string]string{"order_id": "7781", "tenant": "shop-a"},
		Details:               stdjson.RawMessage(`{"admin":7500,"nominal":129610,"noref":"1609626","period":"201405,201407","tr_name":"JAORAH"}`),
	})
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The helpers below are duplicated in internal/subscriber/schema_test.go.

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

// schemaBase is where the schemas are published: each one's $id is this
// and its file name, a URL that serves the file from the main branch.
const schemaBase = "https://raw.githubusercontent.com/statusbridge/statusbridge/main/schemas/"

func TestDataSchemaIsTheSchemaID(t *testing.T) {
	for _, path := range []string{eventSchemaPath, requestSchemaPath} {
		var s struct {
			ID string `json:"$id"`
		}
		readJSON(t, path, &s)
		if want := schemaBase + filepath.Base(path); s.ID != want {
			t.Errorf("%s: $id = %q, want %q", path, s.ID, want)
		}
		if path == eventSchemaPath && fullEvent().DataSchema != s.ID {
			t.Errorf("events name dataschema %q, the schema's $id is %q", fullEvent().DataSchema, s.ID)
		}
	}
}

// TestSchemasStateTheirTypes holds the schemas to what Ajv's strict mode
// asks (strictTypes, strictRequired), so that they compile there: a
// keyword that applies to some JSON types only sits in a subschema that
// states such a type, and every name a subschema requires is one of its
// properties.
func TestSchemasStateTheirTypes(t *testing.T) {
	for _, path := range []string{eventSchemaPath, requestSchemaPath} {
		var schema any
		readJSON(t, path, &schema)
		n := 0
		for _, p := range strictProblems(schema, func() { n++ }) {
			t.Errorf("%s: %s", path, p)
		}
		if n < 5 {
			t.Errorf("%s: only %d subschemas visited", path, n)
		}
	}
	var bad any
	if err := json.Unmarshal([]byte(`{"type":"object","properties":{"a":{"minimum":1},"b":{"type":"string","minimum":1}},
		"allOf":[{"if":{"required":["a"]},"then":{"type":"object","required":["c"],"properties":{"c":true}}}]}`), &bad); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`#/allOf/0/if: "required" applies to object values, the subschema states no such type`,
		`#/allOf/0/if: requires "a", not one of its properties`,
		`#/properties/a: "minimum" applies to number values, the subschema states no such type`,
		`#/properties/b: "minimum" applies to number values, the subschema states no such type`,
	}
	got := strictProblems(bad, func() {})
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems of a schema with four (-want +got):\n%s", diff)
	}
}

// typeKeywords are the keywords Ajv applies to values of some JSON types
// only, with those types.
var typeKeywords = map[string][]string{
	"minimum": {"number"}, "maximum": {"number"}, "exclusiveMinimum": {"number"}, "exclusiveMaximum": {"number"},
	"multipleOf": {"number"}, "format": {"number", "string"},
	"minLength": {"string"}, "maxLength": {"string"}, "pattern": {"string"},
	"items": {"array"}, "prefixItems": {"array"}, "additionalItems": {"array"}, "contains": {"array"},
	"minContains": {"array"}, "maxContains": {"array"}, "minItems": {"array"}, "maxItems": {"array"},
	"uniqueItems": {"array"}, "unevaluatedItems": {"array"},
	"properties": {"object"}, "patternProperties": {"object"}, "additionalProperties": {"object"},
	"required": {"object"}, "minProperties": {"object"}, "maxProperties": {"object"}, "propertyNames": {"object"},
	"dependentRequired": {"object"}, "dependentSchemas": {"object"}, "unevaluatedProperties": {"object"},
}

// strictProblems walks every subschema of schema, calling visited for
// each, and describes where one breaks strictTypes or strictRequired.
func strictProblems(schema any, visited func()) []string {
	var problems []string
	var walk func(at string, s any)
	walk = func(at string, s any) {
		m, ok := s.(map[string]any)
		if !ok {
			return // true or false
		}
		visited()
		var types []string
		switch ty := m["type"].(type) {
		case string:
			types = []string{ty}
		case []any:
			for _, x := range ty {
				types = append(types, x.(string))
			}
		}
		if slices.Contains(types, "integer") {
			types = append(types, "number")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if want, ok := typeKeywords[k]; ok && !slices.ContainsFunc(want, func(w string) bool { return slices.Contains(types, w) }) {
				problems = append(problems, fmt.Sprintf("%s: %q applies to %s values, the subschema states no such type", at, k, strings.Join(want, " or ")))
			}
			switch v := m[k].(type) {
			case map[string]any:
				if k == "properties" || k == "patternProperties" || k == "$defs" || k == "dependentSchemas" {
					for _, name := range slices.Sorted(maps.Keys(v)) {
						walk(at+"/"+k+"/"+name, v[name])
					}
				} else if k != "const" && k != "default" {
					walk(at+"/"+k, v)
				}
			case []any:
				if k == "allOf" || k == "anyOf" || k == "oneOf" || k == "prefixItems" {
					for i, sub := range v {
						walk(fmt.Sprintf("%s/%s/%d", at, k, i), sub)
					}
				}
			}
		}
		props, _ := m["properties"].(map[string]any)
		required, _ := m["required"].([]any)
		for _, name := range required {
			if _, ok := props[name.(string)]; !ok {
				problems = append(problems, fmt.Sprintf("%s: requires %q, not one of its properties", at, name))
			}
		}
	}
	walk("#", schema)
	return problems
}
