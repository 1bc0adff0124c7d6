// Package publisher owns the event contract (status.resolved v1, a
// CloudEvents 1.0 structured-mode JSON event) and JetStream publish
// semantics: a deterministic event id sent as Nats-Msg-Id, publish confirmed
// by a PubAck. It knows nothing of providers or of the request stream.
package publisher

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
)

// Contract constants of event v1.
const (
	SpecVersion     = "1.0"
	EventType       = "io.statusbridge.status.resolved.v1"
	DataContentType = "application/json"
	// DataSchema is the $id of schemas/status.resolved.v1.json: where the
	// schema is published.
	DataSchema = "https://raw.githubusercontent.com/statusbridge/statusbridge/main/schemas/status.resolved.v1.json"
	// ContentType is the NATS Content-Type header of an event message.
	ContentType = "application/cloudevents+json"
)

// Statuses of event v1.
const (
	StatusSuccess  = "success"
	StatusFailed   = "failed"
	StatusExpired  = "expired"
	StatusRejected = "rejected"
)

// Reasons of event v1 (a status other than success always has one).
const (
	ReasonProviderFailed        = "provider_failed"
	ReasonNotFound              = "not_found"
	ReasonDeadline              = "deadline"
	ReasonInvalidRequest        = "invalid_request"
	ReasonUnknownProvider       = "unknown_provider"
	ReasonProviderNotConfigured = "provider_not_configured"
	ReasonAuthRejected          = "auth_rejected"
	ReasonBadSignature          = "bad_signature"
	// ReasonCancelled ends, as expired, a request an operator cancelled
	// (bridge cancel) before it was final.
	ReasonCancelled = "cancelled"
)

// idNamespace scopes event ids (a UUIDv5 namespace): the same provider and
// request_id always give the same id, on every replica and after restarts.
var idNamespace = uuid.MustParse("6f3c2a7e-5b1d-4f7a-9c2e-8d4b1a0e7c55")

// EventID derives the event id of a request: a name-based UUID of provider
// and request_id. It is also the event's Nats-Msg-Id.
func EventID(provider, requestID string) string {
	// uuid.NewSHA1(idNamespace, provider+"\x00"+requestID), computed over
	// a stack buffer: every event needs one, and the library's way costs
	// five allocations. TestEventIDIsUUIDv5 holds it to the library.
	var b [256]byte
	name := append(b[:0], idNamespace[:]...)
	name = append(name, provider...)
	name = append(name, 0)
	name = append(name, requestID...)
	sum := sha1.Sum(name)
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id.String()
}

// Event is a status.resolved v1 CloudEvent. Publish writes it with
// json.Marshal of these tags (see marshal).
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	DataSchema      string    `json:"dataschema"`
	Data            Data      `json:"data"`
	// TraceParent and TraceState are the CloudEvents distributed tracing
	// extension: the W3C trace context of the event's publish, set only
	// when the request carried one. Publish sends them as the traceparent
	// and tracestate headers too.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// Data is the event's data: the request echoed, the verdict, and the
// provider's own words.
type Data struct {
	RequestID string `json:"request_id"`
	Provider  string `json:"provider"`
	Reference string `json:"reference,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`

	ProviderStatus        string `json:"provider_status,omitempty"`
	ProviderCode          string `json:"provider_code,omitempty"`
	ProviderMessage       string `json:"provider_message,omitempty"`
	ProviderTransactionID string `json:"provider_transaction_id,omitempty"`
	Amount                Amount `json:"amount,omitzero"`
	Currency              string `json:"currency,omitempty"`

	Attempts    int       `json:"attempts"`
	RequestedAt time.Time `json:"requested_at"`
	ResolvedAt  time.Time `json:"resolved_at"`

	Metadata map[string]string `json:"metadata,omitempty"`
	// Details is a JSON object (the provider's, passed on), or empty.
	// Publish refuses anything else; being written as a JSON value, it
	// cannot change the event's structure.
	Details json.RawMessage `json:"details,omitempty"`
}

// Amount is a JSON number as the provider wrote it (e.g. "137110"), or
// empty. It is written as that number, with encoding/json and json/v2
// alike, and text that is not a JSON number is an encoding error.
type Amount string

// MarshalJSON returns the number a holds.
func (a Amount) MarshalJSON() ([]byte, error) {
	if v := jsontext.Value(a); v.Kind() != '0' || !v.IsValid() {
		return nil, fmt.Errorf("amount %q is not a JSON number", string(a))
	}
	return []byte(a), nil
}

// UnmarshalJSON reads a JSON number as written; null leaves a as it is.
func (a *Amount) UnmarshalJSON(b []byte) error {
	v := jsontext.Value(b)
	if v.Kind() == 'n' {
		return nil
	}
	if v.Kind() != '0' || !v.IsValid() {
		return fmt.Errorf("amount %s is not a JSON number", b)
	}
	*a = Amount(b)
	return nil
}

// NewEvent wraps d in the v1 envelope: the id derived from provider and
// request_id, the reference as subject, the resolution time as time.
// Times are UTC with millisecond precision.
func NewEvent(d Data) Event {
	d.RequestedAt = d.RequestedAt.UTC().Truncate(time.Millisecond)
	d.ResolvedAt = d.ResolvedAt.UTC().Truncate(time.Millisecond)
	return Event{
		SpecVersion:     SpecVersion,
		ID:              EventID(d.Provider, d.RequestID),
		Source:          "/statusbridge/" + d.Provider,
		Type:            EventType,
		Subject:         d.Reference,
		Time:            d.ResolvedAt,
		DataContentType: DataContentType,
		DataSchema:      DataSchema,
		Data:            d,
	}
}
