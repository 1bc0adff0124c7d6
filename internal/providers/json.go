package providers

import (
	"errors"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeOptions are json/v2's defaults, member names matched exactly and a
// repeated member name refused, but for invalid UTF-8 inside strings, which
// is read as U+FFFD: an odd byte in a customer name must not turn a genuine
// answer into checks until the deadline.
var decodeOptions = jsontext.AllowInvalidUTF8(true)

// Unmarshal decodes data into v as every provider answer is decoded.
// Unknown members are skipped.
func Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v, decodeOptions)
}

// DecodeJSON decodes a response body into v with Unmarshal. Failure is
// ErrBadResponse with the offset or member that broke, never the body's
// content.
func DecodeJSON(provider string, status int, body []byte, v any) *Error {
	err := Unmarshal(body, v)
	var se *jsontext.SyntacticError
	var te *json.SemanticError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &se):
		// Which of two values a provider meant, or signed, cannot be known.
		// The name is not quoted: it could be anything the body holds.
		return BadResponse(provider, status, "repeated member name at offset %d", se.ByteOffset)
	case errors.As(err, &se):
		return BadResponse(provider, status, "invalid JSON at offset %d", se.ByteOffset)
	case errors.As(err, &te):
		return BadResponse(provider, status, "member %q has JSON type %s", te.JSONPointer, te.JSONKind)
	}
	return BadResponse(provider, status, "invalid JSON")
}

// Details encodes v, a struct of the members of an answer worth passing on,
// for Result.Details, or returns nil when v has no member set. The struct's
// fields are declared in the byte order of their names, the order
// encoding/json gives map keys and providertest.CheckDetails checks, and
// are tagged omitzero, so that an unset Text, Amount or Bool is left out.
func Details(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "{}" {
		// Such a struct always encodes, and details are optional: an
		// error would drop them, never the answer.
		return nil
	}
	return b
}
