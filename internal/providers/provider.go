// Package providers defines what the bridge asks a payment provider and how the
// answer, or the failure to get one, is classified. It owns the Provider
// contract, the error taxonomy and the HTTP plumbing the provider clients share.
// It knows nothing about NATS, schedules or events: one Status call is one HTTP
// exchange, and deciding what to do next belongs to the caller.
package providers

import (
	"context"
	"encoding/json"
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
	// worth passing on (encoded by Details), or nil. It never holds
	// credentials.
	Details json.RawMessage
}
