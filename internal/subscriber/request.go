// Package subscriber owns the request contract (status.requested v1) and the
// JetStream consumer semantics: decode and validate a delivery, make one
// provider check, decide between publishing the event and checking again
// later, and settle the delivery only after the event's publish was
// acknowledged.
package subscriber

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/statusbridge/statusbridge/internal/providers"
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

// decodeRequest parses and validates body, a request published on the
// subject of provider subjectProvider. Unknown fields are ignored.
func decodeRequest(body []byte, subjectProvider string) (Request, *decodeError) {
	if len(body) > MaxBodyBytes {
		return Request{}, &decodeError{DeadLetter: DeadLetterTooLarge, Detail: fmt.Sprintf("body is %d bytes, over %d", len(body), MaxBodyBytes)}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidJSON, Detail: "body is not a JSON object"}
	}
	raw, dup, err := topLevelFields(trimmed)
	if err != nil {
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidJSON, Detail: "body is not valid JSON"}
	}
	if isAbsent(raw.RequestID) {
		return Request{}, &decodeError{DeadLetter: DeadLetterMissingRequestID, Detail: "request_id is missing"}
	}
	if dup == "request_id" {
		// Two request ids: answering either could settle the wrong one.
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidRequestID, Detail: "request_id appears more than once"}
	}
	var r Request
	var ok bool
	if r.RequestID, ok = stringField(raw.RequestID); !ok || !validRequestID(r.RequestID) {
		return Request{}, &decodeError{DeadLetter: DeadLetterInvalidRequestID, Detail: "request_id must be a string of 1-128 characters from A-Z a-z 0-9 . _ : -"}
	}

	// From here on the request can be answered with a rejected event, so
	// collect what can be echoed before reporting the first problem.
	var problems []string
	if dup != "" {
		problems = append(problems, dup+" appears more than once")
	}
	if ref, ok := stringField(raw.Reference); ok && validReference(ref) {
		r.Reference = ref
	} else if isAbsent(raw.Reference) {
		problems = append(problems, "reference is missing")
	} else {
		problems = append(problems, "reference must be a string of 1-64 printable characters")
	}
	if !isAbsent(raw.Metadata) {
		md, problem := decodeMetadata(raw.Metadata)
		if problem != "" {
			problems = append(problems, problem)
		} else {
			r.Metadata = md
		}
	}
	if p, ok := stringField(raw.Provider); !ok {
		problems = append(problems, "provider must be a string")
	} else if p != subjectProvider {
		problems = append(problems, "provider does not match the subject")
	} else {
		r.Provider = p
	}
	if !isAbsent(raw.Deadline) {
		s, ok := stringField(raw.Deadline)
		t, err := time.Parse(time.RFC3339, s)
		if !ok || err != nil {
			problems = append(problems, "deadline must be an RFC 3339 time")
		} else {
			r.Deadline = t
		}
	}
	if len(problems) > 0 {
		r.Provider = subjectProvider
		return Request{}, &decodeError{Detail: joinProblems(problems), Partial: r}
	}
	return r, nil
}

// requestFields are the JSON texts of the request's known members ("" when
// absent), substrings of one copy of the body.
type requestFields struct {
	RequestID, Provider, Reference, Deadline, Metadata string
}

// topLevelFields reads the members of a JSON object by their exact names
// (encoding/json would also match "Request_ID" and let a repeated name
// silently win), and reports the first known name that appears twice.
// Unknown members are skipped.
//
// The body is validated whole first, copied once into a string and walked
// with providers.Members: it does what a json.Decoder token loop does
// (request_fuzz_test.go checks that) without its allocations, and the
// fields read from it are substrings of that one copy.
func topLevelFields(body []byte) (f requestFields, duplicate string, err error) {
	if !providers.ValidJSON(body) {
		return f, "", errors.New("invalid JSON")
	}
	err = providers.Members(string(body), func(name, value string) error {
		var slot *string
		switch name {
		case "request_id":
			slot = &f.RequestID
		case "provider":
			slot = &f.Provider
		case "reference":
			slot = &f.Reference
		case "deadline":
			slot = &f.Deadline
		case "metadata":
			slot = &f.Metadata
		default:
			return nil
		}
		if *slot != "" && duplicate == "" {
			duplicate = name
		}
		*slot = value
		return nil
	})
	return f, duplicate, err
}

func isAbsent(raw string) bool { return raw == "" || raw == "null" }

// stringField reads a JSON string member; ok is false for any other type.
// A string that needs no decoding is returned as a substring of raw.
func stringField(raw string) (string, bool) {
	if raw == "" || raw[0] != '"' {
		return "", false
	}
	var t providers.Text
	t.SetJSON(raw)
	return t.Get()
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

var errNotAString = errors.New("metadata values must be strings")

// decodeMetadata reads the metadata member of a validated body. A key
// given twice counts once, with its last value.
func decodeMetadata(raw string) (map[string]string, string) {
	if raw[0] != '{' {
		return nil, "metadata must be an object of strings"
	}
	md := map[string]string{}
	err := providers.Members(raw, func(name, value string) error {
		s, ok := stringField(value)
		if !ok {
			return errNotAString
		}
		md[name] = s
		return nil
	})
	if err != nil {
		return nil, errNotAString.Error()
	}
	if len(md) > MaxMetadataKeys {
		return nil, fmt.Sprintf("metadata has %d keys, at most %d allowed", len(md), MaxMetadataKeys)
	}
	return md, ""
}

func joinProblems(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}
