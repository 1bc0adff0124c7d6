package publisher

import (
	"context"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/natsserver"
)

// jetStreamFor starts an embedded server with an events stream, a
// dead-letter stream and an unrelated stream, and returns its JetStream.
func jetStreamFor(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for name, subject := range map[string]string{"EVENTS": "status.resolved.>", "DEADLETTER": "status.deadletter.>", "OTHER": "other.>"} {
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Duplicates: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

func TestPublishEvent(t *testing.T) {
	js := jetStreamFor(t)
	p := New(js, "EVENTS", "DEADLETTER")
	ev := fullEvent()
	ctx := t.Context()

	dup, err := p.Publish(ctx, "status.resolved.iak.success", ev)
	if err != nil || dup {
		t.Fatalf("first publish: duplicate %v, err %v", dup, err)
	}
	dup, err = p.Publish(ctx, "status.resolved.iak.success", ev)
	if err != nil || !dup {
		t.Fatalf("second publish of the same event: duplicate %v, err %v; want a duplicate", dup, err)
	}

	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if n := stream.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("events stream holds %d messages, want 1", n)
	}
	stored, err := stream.GetLastMsgForSubject(ctx, "status.resolved.iak.success")
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
		t.Errorf("Nats-Msg-Id = %q, want the event id %q", got, ev.ID)
	}
	if got := stored.Header.Get("Content-Type"); got != ContentType {
		t.Errorf("Content-Type = %q, want %q", got, ContentType)
	}
	if got := stored.Header.Get(jetstream.ExpectedStreamHeader); got != "EVENTS" {
		t.Errorf("%s = %q, want the events stream", jetstream.ExpectedStreamHeader, got)
	}
	want, err := marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Data) != string(want) {
		t.Errorf("stored body\n%s\nwant\n%s", stored.Data, want)
	}
}

func TestPublishEventOutsideItsStreamFails(t *testing.T) {
	js := jetStreamFor(t)
	p := New(js, "EVENTS", "DEADLETTER")
	if _, err := p.Publish(t.Context(), "other.x", fullEvent()); err == nil {
		t.Fatal("an event that would land in another stream was published")
	}
	info, err := js.Stream(t.Context(), "OTHER")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("the other stream stored %d messages", n)
	}
}

func TestPublishDeadLetter(t *testing.T) {
	js := jetStreamFor(t)
	p := New(js, "EVENTS", "DEADLETTER")
	d := DeadLetter{Subject: "status.deadletter.iak", Reason: "invalid_json", OriginalSubject: "status.requested.iak", OriginalSequence: 42, Body: []byte("{not json")}
	ctx := context.Background()
	for range 2 { // a redelivery stores it once
		if err := p.PublishDeadLetter(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := js.Stream(ctx, "DEADLETTER")
	if err != nil {
		t.Fatal(err)
	}
	if n := stream.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("dead-letter stream holds %d messages, want 1", n)
	}
	stored, err := stream.GetLastMsgForSubject(ctx, d.Subject)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		HeaderDeadLetterReason: "invalid_json", HeaderOriginalSubject: "status.requested.iak",
		HeaderOriginalSequence: "42", jetstream.MsgIDHeader: "deadletter:42",
	} {
		if got := stored.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if string(stored.Data) != string(d.Body) {
		t.Errorf("stored body %q, want the request's %q", stored.Data, d.Body)
	}
}

// TestPublishTraceContext: an event with trace context carries it in the
// traceparent and tracestate headers as well as in its JSON; one without
// has neither.
func TestPublishTraceContext(t *testing.T) {
	js := jetStreamFor(t)
	p := New(js, "EVENTS", "DEADLETTER")
	ctx := t.Context()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
	for _, tc := range []struct{ subject, traceparent, tracestate string }{
		{"status.resolved.iak.success", tp, "rojo=00f067aa0ba902b7"},
		{"status.resolved.iak.failed", tp, ""},
		{"status.resolved.iak.expired", "", ""},
	} {
		ev := fullEvent()
		ev.Data.RequestID += tc.subject // an id of its own
		ev.ID = EventID(ev.Data.Provider, ev.Data.RequestID)
		ev.TraceParent, ev.TraceState = tc.traceparent, tc.tracestate
		if _, err := p.Publish(ctx, tc.subject, ev); err != nil {
			t.Fatal(err)
		}
		stream, err := js.Stream(ctx, "EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		stored, err := stream.GetLastMsgForSubject(ctx, tc.subject)
		if err != nil {
			t.Fatal(err)
		}
		_, hasTP := stored.Header[HeaderTraceParent]
		_, hasTS := stored.Header[HeaderTraceState]
		if got := stored.Header.Get(HeaderTraceParent); got != tc.traceparent || hasTP != (tc.traceparent != "") {
			t.Errorf("%s: traceparent header %q, want %q", tc.subject, got, tc.traceparent)
		}
		if got := stored.Header.Get(HeaderTraceState); got != tc.tracestate || hasTS != (tc.tracestate != "") {
			t.Errorf("%s: tracestate header %q, want %q", tc.subject, got, tc.tracestate)
		}
		var back Event
		if err := json.Unmarshal(stored.Data, &back); err != nil {
			t.Fatal(err)
		}
		if back.TraceParent != tc.traceparent || back.TraceState != tc.tracestate {
			t.Errorf("%s: event attributes %q %q, want %q %q", tc.subject, back.TraceParent, back.TraceState, tc.traceparent, tc.tracestate)
		}
	}
}
