package publisher

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names on dead-letter messages.
const (
	HeaderDeadLetterReason = "Statusbridge-Deadletter-Reason"
	HeaderOriginalSubject  = "Statusbridge-Original-Subject"
	HeaderOriginalSequence = "Statusbridge-Original-Sequence"
)

// contentTypeHeader is shared by every event message; nothing modifies it.
var contentTypeHeader = []string{ContentType}

// streamPublisher is the one method of jetstream.JetStream the publisher
// uses. PublishMsg must keep nothing of msg once it returned, as
// jetstream's does not: Publish reuses the message.
type streamPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Publisher publishes events and dead letters and waits for JetStream to
// acknowledge them.
type Publisher struct {
	js                 streamPublisher
	eventsStreamHeader []string // shared by every event; nothing modifies it
	deadLetterStream   string
}

// New returns a Publisher that expects events to land in eventsStream and
// dead letters in deadLetterStream (a publish that lands elsewhere fails).
func New(js streamPublisher, eventsStream, deadLetterStream string) *Publisher {
	return &Publisher{js: js, eventsStreamHeader: []string{eventsStream}, deadLetterStream: deadLetterStream}
}

// Publish sends ev to subject with Nats-Msg-Id = ev.ID and returns once
// JetStream acknowledged it. duplicate reports that JetStream had already
// stored an event with this id inside its duplicate window: the event is
// published, by an earlier delivery.
func (p *Publisher) Publish(ctx context.Context, subject string, ev Event) (duplicate bool, err error) {
	out := outgoings.Get().(*outgoing)
	defer outgoings.Put(out)
	body, err := out.enc.encode(&ev)
	if err != nil {
		return false, err
	}
	// The headers WithMsgID and WithExpectStream would set, written
	// directly: the options cost a closure and a pass over them per publish.
	out.id[0] = ev.ID
	out.header[jetstream.MsgIDHeader] = out.id[:]
	out.header[jetstream.ExpectedStreamHeader] = p.eventsStreamHeader
	out.msg = nats.Msg{Subject: subject, Data: body, Header: out.header}
	ack, err := p.js.PublishMsg(ctx, &out.msg)
	if err != nil {
		return false, fmt.Errorf("publish event to %s: %w", subject, err)
	}
	return ack.Duplicate, nil
}

// outgoing is what one Publish sends: the event's encoding, the message
// and its headers, reused from one publish to the next. nats.go copies the
// message into the connection's buffer before PublishMsg returns, and
// keeps nothing of it after, so none of it is in use once Publish
// returned; a message, a header map and an id slice of their own cost
// every publish four allocations.
type outgoing struct {
	enc    encoder
	msg    nats.Msg
	header nats.Header // Content-Type, and the id and stream set per publish
	id     [1]string
}

var outgoings = sync.Pool{New: func() any {
	return &outgoing{enc: encoder{buf: make([]byte, 0, 2048)}, header: nats.Header{"Content-Type": contentTypeHeader}}
}}

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
