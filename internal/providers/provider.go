// Package providers defines what the bridge asks a payment provider and how the
// answer, or the failure to get one, is classified. It owns the Provider
// contract, the error taxonomy and the HTTP plumbing the provider clients share.
// It knows nothing about NATS, schedules or events: one Status call is one HTTP
// exchange, and deciding what to do next belongs to the caller.
package providers

import (
	"context"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Provider reports the state of one payment at one provider.
type Provider interface {
	// Name is the stable identifier used in subjects, requests, logs and
	// metrics ("iak", "ayopop", "appotapay").
	Name() string

	// Status asks the provider once for the current state of q.Reference.
	// A payment the provider has not settled yet is a Result with
	// StatePending, not an error. A non-nil error is always an *Error
	// whose Kind says whether asking again can help.
	Status(ctx context.Context, q Query) (Result, error)
}

// Query names the payment to check.
type Query struct {
	// Reference is the partner reference the payment was made with (IAK
	// ref_id, Ayopop refNumber, AppotaPay partnerRefId). It comes from a
	// requester and is never trusted: clients escape it for wherever they
	// put it.
	Reference string
}

// State is the provider's verdict on a payment.
type State uint8

const (
	// StatePending means the provider knows the payment and it is not final:
	// ask again later. It is a normal answer, not a failure.
	StatePending State = iota + 1
	// StateSuccess means the provider says, in an authenticated response,
	// that the payment succeeded.
	StateSuccess
	// StateFailed means the provider says, in an authenticated response,
	// that the payment failed.
	StateFailed
	// StateNotFound means the provider answered that it does not know the
	// reference. Right after a payment that can be eventual consistency, so
	// the caller decides how long to keep asking.
	StateNotFound
)

func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateSuccess:
		return "success"
	case StateFailed:
		return "failed"
	case StateNotFound:
		return "not_found"
	}
	return "unknown"
}

// Final reports whether s settles the payment.
func (s State) Final() bool { return s == StateSuccess || s == StateFailed }

// Result is one authenticated, parsed answer from a provider.
type Result struct {
	State State

	// Status, Code and Message are the provider's own words, verbatim, as
	// strings (IAK status "1", code "00", message "PAYMENT SUCCESS").
	Status  string
	Code    string
	Message string

	// TransactionID is the provider's id for the payment, when it reports one.
	TransactionID string
	// Amount is what was charged, in Currency's unit, as the provider wrote
	// the number; empty when the provider did not report it.
	Amount   json.Number
	Currency string

	// Details is a JSON object of provider-specific members of the answer
	// worth passing on (written with Details), or nil. It never holds
	// credentials.
	Details json.RawMessage
}

// Scalar reads a JSON string or number as a string, for provider fields whose
// documented type is not always the type sent. ok is false for anything else,
// including null and absent fields.
func Scalar(raw json.RawMessage) (s string, ok bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		if plain, ok := plainString(raw); ok {
			return plain, true
		}
		// A local, not the named result: taking the result's address
		// would move it to the heap on every call, fast path included.
		var decoded string
		if err := json.Unmarshal(raw, &decoded); err != nil {
			return "", false
		}
		return decoded, true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		// A valid number literal is its own text, as json.Number keeps it.
		if last := raw[len(raw)-1]; last < '0' || last > '9' || !json.Valid(raw) {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

// plainString reads a JSON string that needs no decoding: quoted, valid
// UTF-8, without escapes, quotes or control characters inside. Most
// provider fields are such strings, and this skips a full json.Unmarshal.
func plainString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// isDecimal accepts an optional minus sign, digits, and an optional
// fraction: what an amount may look like, and nothing JSON would misread.
func isDecimal(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || (hasFrac && frac == "") || len(s) > 32 {
		return false
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return !(len(whole) > 1 && whole[0] == '0')
}
