package publisher

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Header names on dead-letter messages.
const (
	HeaderDeadLetterReason = "Statusbridge-Deadletter-Reason"
	HeaderOriginalSubject  = "Statusbridge-Original-Subject"
	HeaderOriginalSequence = "Statusbridge-Original-Sequence"
)

// Header names of the W3C trace context an event carries (as W3C writes
// them: NATS headers are case-sensitive).
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// streamPublisher is the one method of jetstream.JetStream the publisher
// uses.
type streamPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Publisher publishes events and dead letters and waits for JetStream to
// acknowledge them.
type Publisher struct {
	js                             streamPublisher
	eventsStream, deadLetterStream string
	signer                         nkeys.KeyPair // nil: events are unsigned
}

// New returns a Publisher that expects events to land in eventsStream and
// dead letters in deadLetterStream (a publish that lands elsewhere fails).
func New(js streamPublisher, eventsStream, deadLetterStream string, opts ...Option) *Publisher {
	p := &Publisher{js: js, eventsStream: eventsStream, deadLetterStream: deadLetterStream}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish sends ev to subject with Nats-Msg-Id = ev.ID (and ev's trace
// context as the traceparent and tracestate headers) and returns once
// JetStream acknowledged it. duplicate reports that JetStream had already
// stored an event with this id inside its duplicate window: the event is
// published, by an earlier delivery.
func (p *Publisher) Publish(ctx context.Context, subject string, ev Event) (duplicate bool, err error) {
	body, err := marshal(ev)
	if err != nil {
		return false, err
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{"Content-Type": {ContentType}}}
	if ev.TraceParent != "" {
		msg.Header.Set(HeaderTraceParent, ev.TraceParent)
		if ev.TraceState != "" {
			msg.Header.Set(HeaderTraceState, ev.TraceState)
		}
	}
	if p.signer != nil {
		if err := p.sign(msg); err != nil {
			return false, err
		}
	}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(p.eventsStream))
	if err != nil {
		return false, fmt.Errorf("publish event to %s: %w", subject, err)
	}
	return ack.Duplicate, nil
}

// marshalOptions make the encoding of an event a function of the event:
// metadata keys sorted. Text that is not valid UTF-8 is written with
// U+FFFD in its place, and repeated names in details are kept, as
// encoding/json does: neither may stop an event from being published.
var marshalOptions = json.JoinOptions(
	json.Deterministic(true),
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true),
)

// marshal encodes ev as Publish sends it.
func marshal(ev Event) ([]byte, error) {
	if d := jsontext.Value(ev.Data.Details); len(d) > 0 && d.Kind() != '{' {
		return nil, errors.New("encode event: details are not a JSON object")
	}
	body, err := json.Marshal(&ev, marshalOptions)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return body, nil
}

// DeadLetter is a request too broken to answer.
type DeadLetter struct {
	Subject         string // status.deadletter.<provider>
	Reason          string
	OriginalSubject string
	// OriginalSequence is the request's stream sequence; it makes the
	// dead letter's Nats-Msg-Id, so a redelivery stores it once.
	OriginalSequence uint64
	Body             []byte
}

// PublishDeadLetter stores d's body unchanged, with the reason and origin in
// headers, and returns once JetStream acknowledged it.
func (p *Publisher) PublishDeadLetter(ctx context.Context, d DeadLetter) error {
	seq := strconv.FormatUint(d.OriginalSequence, 10)
	msg := &nats.Msg{Subject: d.Subject, Data: d.Body, Header: nats.Header{}}
	msg.Header.Set(HeaderDeadLetterReason, d.Reason)
	msg.Header.Set(HeaderOriginalSubject, d.OriginalSubject)
	msg.Header.Set(HeaderOriginalSequence, seq)
	_, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID("deadletter:"+seq),
		jetstream.WithExpectStream(p.deadLetterStream))
	if err != nil {
		return fmt.Errorf("publish dead letter to %s: %w", d.Subject, err)
	}
	return nil
}
