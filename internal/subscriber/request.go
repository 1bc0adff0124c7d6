// Package subscriber owns the request contract (status.requested v1) and the
// JetStream consumer semantics: decode and validate a delivery, make one
// provider check, decide between publishing the event and checking again
// later, and settle the delivery only after the event's publish was
// acknowledged.
package subscriber

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Limits of request v1 (SPEC §2).
const (
	MaxBodyBytes     = 64 << 10
	MaxReferenceLen  = 64
	MaxMetadataKeys  = 32
	MaxRequestIDLen  = 128
	requestIDPattern = `^[A-Za-z0-9._:-]{1,128}$`
)

// validRequestID reports whether id matches requestIDPattern (the
// pattern the schema and the tests use), without a regular expression on
// every delivery.
func validRequestID(id string) bool { return isPlain(id, MaxRequestIDLen, "._:-") }

// isPlain reports whether s is 1 to maxLen ASCII letters, digits and
// bytes of punct.
func isPlain(s string, maxLen int, punct string) bool {
	if len(s) < 1 || len(s) > maxLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(punct, c) >= 0) {
			return false
		}
	}
	return true
}

// Request is a decoded, validated request v1.
type Request struct {
	RequestID string
	Provider  string
	Reference string
	Deadline  time.Time // zero: publish time + BRIDGE_MAX_WAIT
	Metadata  map[string]string
}

// Dead-letter reasons: the body is too broken to read a request_id from.
const (
	DeadLetterTooLarge         = "too_large"
	DeadLetterInvalidJSON      = "invalid_json"
	DeadLetterMissingRequestID = "missing_request_id"
	DeadLetterInvalidRequestID = "invalid_request_id"
)

// decodeError says why a body is not a valid request. When DeadLetter is
// set there is no usable request_id and the body goes to the dead-letter
// subject; otherwise the request is rejected, with Partial holding what
// could be echoed (request_id always, reference and metadata when valid).
type decodeError struct {
	DeadLetter string
	Detail     string
	Partial    Request
}

func (e *decodeError) Error() string {
	if e.DeadLetter != "" {
		return e.DeadLetter + ": " + e.Detail
	}
	return "invalid request: " + e.Detail
}

// requestBody is a request v1 as JSON: its members by their exact names,
// each kept as written so that a member of the wrong type is reported
// for itself while the others are still read. Unknown members are
// skipped.
type requestBody struct {
	RequestID member `json:"request_id"`
	Provider  member `json:"provider"`
	Reference member `json:"reference"`
	Deadline  member `json:"deadline"`
	Metadata  member `json:"metadata"`
}

// member is one member's value, and whether the name appeared more than
// once (the value is then the last one's).
type member struct {
	value    jsontext.Value // nil when absent
	repeated bool
}

// UnmarshalJSONFrom reads the member's value, once per occurrence.
func (m *member) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	m.repeated = m.value != nil
	m.value = v.Clone()
	return nil
}

// absent reports whether the member is missing or null.
func (m member) absent() bool { return m.value == nil || m.value.Kind() == 'n' }

// str returns the member as a string; ok is false for any other kind.
func (m member) str() (string, bool) {
	var s string
	if m.value.Kind() != '"' || json.Unmarshal(m.value, &s, decodeOptions) != nil {
		return "", false
	}
	return s, true
}

// decodeOptions accept what encoding/json accepted: repeated names (the
// decoder reports those of known members itself) and invalid UTF-8 in
// strings, read as U+FFFD.
var decodeOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// decodeRequest parses and validates body, a request published on the
// subject of provider subjectProvider. Unknown fields are ignored.
func decodeRequest(body []byte, subjectProvider string) (Request, *decodeError) {
	if len(body) > MaxBodyBytes {
		return Request{}, &decodeError{DeadLetter: DeadLetterTooLarge, Detail: fmt.Sprintf("body is %d bytes, over %d", len(body), MaxBodyBytes)}
	}
	if jsontext.Value(body).Kind() != '{' {
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidJSON, Detail: "body is not a JSON object"}
	}
	var raw requestBody
	if err := json.Unmarshal(body, &raw, decodeOptions); err != nil {
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidJSON, Detail: "body is not valid JSON"}
	}
	if raw.RequestID.absent() {
		return Request{}, &decodeError{DeadLetter: DeadLetterMissingRequestID, Detail: "request_id is missing"}
	}
	if raw.RequestID.repeated {
		// Two request ids: answering either could settle the wrong one.
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidRequestID, Detail: "request_id appears more than once"}
	}
	var r Request
	var ok bool
	if r.RequestID, ok = raw.RequestID.str(); !ok || !validRequestID(r.RequestID) {
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidRequestID, Detail: "request_id must be a string of 1-128 characters from A-Z a-z 0-9 . _ : -"}
	}

	// From here on the request can be answered with a rejected event, so
	// collect what can be echoed before reporting the first problem.
	var problems []string
	for _, m := range []struct {
		name string
		member
	}{{"provider", raw.Provider}, {"reference", raw.Reference}, {"deadline", raw.Deadline}, {"metadata", raw.Metadata}} {
		if m.repeated {
			problems = append(problems, m.name+" appears more than once")
		}
	}
	if ref, ok := raw.Reference.str(); ok && validReference(ref) {
		r.Reference = ref
	} else if raw.Reference.absent() {
		problems = append(problems, "reference is missing")
	} else {
		problems = append(problems, "reference must be a string of 1-64 printable characters")
	}
	if !raw.Metadata.absent() {
		md, problem := decodeMetadata(raw.Metadata.value)
		if problem != "" {
			problems = append(problems, problem)
		} else {
			r.Metadata = md
		}
	}
	if p, ok := raw.Provider.str(); !ok {
		problems = append(problems, "provider must be a string")
	} else if p != subjectProvider {
		problems = append(problems, "provider does not match the subject")
	} else {
		r.Provider = p
	}
	if !raw.Deadline.absent() {
		s, ok := raw.Deadline.str()
		t, err := time.Parse(time.RFC3339, s)
		if !ok || err != nil {
			problems = append(problems, "deadline must be an RFC 3339 time")
		} else {
			r.Deadline = t
		}
	}
	if len(problems) > 0 {
		r.Provider = subjectProvider
		return Request{}, &decodeError{Detail: strings.Join(problems, "; "), Partial: r}
	}
	return r, nil
}

// validReference accepts 1-64 printable characters (SPEC §2). Printable
// excludes control characters, so a reference cannot break a log line.
func validReference(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 1 || n > MaxReferenceLen || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) || c == utf8.RuneError {
			return false
		}
	}
	return true
}

// decodeMetadata reads the metadata member, an object of strings. A key
// given twice counts once, with its last value.
func decodeMetadata(v jsontext.Value) (map[string]string, string) {
	if v.Kind() != '{' {
		return nil, "metadata must be an object of strings"
	}
	var members map[string]member
	if err := json.Unmarshal(v, &members, decodeOptions); err != nil {
		return nil, "metadata must be an object of strings"
	}
	md := make(map[string]string, len(members))
	for k, m := range members {
		s, ok := m.str()
		if !ok {
			return nil, "metadata values must be strings"
		}
		md[k] = s
	}
	if len(md) > MaxMetadataKeys {
		return nil, fmt.Sprintf("metadata has %d keys, at most %d allowed", len(md), MaxMetadataKeys)
	}
	return md, ""
}

// ValidReference reports whether s is a reference a request may carry.
func ValidReference(s string) bool { return validReference(s) }
