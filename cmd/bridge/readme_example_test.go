package main

// The functions between the markers are the Go example of README.md,
// byte for byte (TestReadmeGoExampleIsThisFile checks it), and
// TestReadmeGoExample runs them against a bridge.

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"
)

// readme-example:begin
// requestStatus asks the bridge to resolve one payment. JetStream stores the
// request before Publish returns; a re-sent request_id is deduplicated.
func requestStatus(ctx context.Context, js jetstream.JetStream, requestID, provider, reference string) error {
	body, err := json.Marshal(map[string]any{
		"request_id": requestID,
		"provider":   provider,
		"reference":  reference,
		"metadata":   map[string]string{"order_id": "7781"},
	})
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, "status.requested."+provider, body, jetstream.WithMsgID(requestID))
	return err
}

// resolvedEvent is the part of a status.resolved event a notifier reads.
type resolvedEvent struct {
	ID   string `json:"id"`
	Data struct {
		RequestID string            `json:"request_id"`
		Status    string            `json:"status"`
		Reason    string            `json:"reason"`
		Metadata  map[string]string `json:"metadata"`
	} `json:"data"`
}

// notify hands every resolved event to handle once per event id, from a
// durable consumer so nothing is missed while the notifier is down.
func notify(ctx context.Context, js jetstream.JetStream, seen func(id string) bool, handle func(resolvedEvent) error) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, "STATUS_EVENTS", jetstream.ConsumerConfig{
		Durable:       "notifier",
		FilterSubject: "status.resolved.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var e resolvedEvent
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			_ = m.Term() // not an event of ours: never redeliver it
			return
		}
		if seen(e.ID) { // a redelivery, or the same event published twice
			_ = m.Ack()
			return
		}
		if err := handle(e); err != nil {
			_ = m.Nak() // try again
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// readme-example:end
