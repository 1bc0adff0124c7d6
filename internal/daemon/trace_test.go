package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

const (
	requesterTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	requesterSpan  = "00f067aa0ba902b7"
)

func traceparentOf(traceID, spanID string) string { return "00-" + traceID + "-" + spanID + "-01" }

// publishTraced publishes a request with the given headers besides its
// Nats-Msg-Id, and returns its event id.
func publishTraced(t *testing.T, w *world, provider, requestID, reference string, h nats.Header) string {
	t.Helper()
	msg := nats.NewMsg(topology.RequestSubject(provider))
	msg.Data = []byte(`{"request_id":"` + requestID + `","provider":"` + provider + `","reference":` + daemontest.JSONString(reference) + `}`)
	for k, v := range h {
		msg.Header[k] = v
	}
	if _, err := w.JS.PublishMsg(context.Background(), msg, jetstream.WithMsgID(requestID)); err != nil {
		t.Fatal(err)
	}
	return publisher.EventID(provider, requestID)
}

// extensions reads the tracing extension attributes of a stored event, and
// whether its JSON has them at all.
func extensions(t *testing.T, raw []byte) (traceparent, tracestate string, members bool) {
	t.Helper()
	var m map[string]jsontext.Value
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	_, hasTP := m["traceparent"]
	_, hasTS := m["tracestate"]
	var ev publisher.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.TraceParent, ev.TraceState, hasTP || hasTS
}

// TestTraceContextPassesThrough: with tracing off, a request's valid
// traceparent and tracestate reach its event's headers and CloudEvent
// attributes unchanged; an invalid one reaches neither, nor the log; a
// request without one has an event as before.
func TestTraceContextPassesThrough(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.Provision()
	valid := traceparentOf(requesterTrace, requesterSpan)
	oversized := valid + strings.Repeat("-ab", 2000)
	cases := []struct {
		name, reference string
		provider        string
		header          nats.Header
		traceparent     string
		tracestate      string
	}{
		{"valid, after a pending check", "pending,success#tp-1", "iak", nats.Header{"traceparent": {valid}, "tracestate": {"rojo=00f067aa0ba902b7"}}, valid, "rojo=00f067aa0ba902b7"},
		{"valid on a rejected request", "x", "paypal", nats.Header{"traceparent": {valid}}, valid, ""},
		{"all-zero trace id", "success#tp-3", "iak", nats.Header{"traceparent": {traceparentOf(strings.Repeat("0", 32), requesterSpan)}, "tracestate": {"rojo=1"}}, "", ""},
		{"upper-case hex", "success#tp-4", "iak", nats.Header{"traceparent": {strings.ToUpper(valid)}}, "", ""},
		{"oversized", "success#tp-5", "iak", nats.Header{"traceparent": {oversized}}, "", ""},
		{"none", "success#tp-6", "iak", nil, "", ""},
	}
	ids := make([]string, len(cases))
	for i, tc := range cases {
		ids[i] = publishTraced(t, w, tc.provider, "tp-"+string(rune('a'+i)), tc.reference, tc.header)
	}
	b := w.StartBridge()
	got := w.WaitEvents(20*time.Second, ids...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := got[ids[i]]
			if h := e.Header.Get("traceparent"); h != tc.traceparent {
				t.Errorf("traceparent header %q, want %q", h, tc.traceparent)
			}
			if h := e.Header.Get("tracestate"); h != tc.tracestate {
				t.Errorf("tracestate header %q, want %q", h, tc.tracestate)
			}
			tp, ts, members := extensions(t, e.Raw)
			if tp != tc.traceparent || ts != tc.tracestate {
				t.Errorf("CloudEvent traceparent %q tracestate %q, want %q %q", tp, ts, tc.traceparent, tc.tracestate)
			}
			if tc.traceparent == "" && members {
				t.Errorf("event of a request without a valid traceparent has tracing members: %s", e.Raw)
			}
		})
	}
	if logs := b.Logs.String(); strings.Contains(logs, oversized[:80]) || strings.Contains(logs, strings.ToUpper(valid)) {
		t.Error("an ignored traceparent is echoed in the log")
	}
}

// TestTraceSpans: with an OpenTelemetry SDK, the checks and the publish
// are spans of the request's trace, children of the requester's span, and
// the event carries the publish span's context; two requests for one
// reference share a check whose span links to the other's trace.
func TestTraceSpans(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	w := newWorld(t)
	w.TracerProvider = tp
	if err := w.Sim.SetProfile(sim.IAK, sim.Profile{Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	w.Provision()
	const traceB, spanB = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	one := publishTraced(t, w, "iak", "span-1", "pending,success#spans", nats.Header{"traceparent": {traceparentOf(requesterTrace, requesterSpan)}})
	two := publishTraced(t, w, "iak", "span-2", "success#shared", nats.Header{"traceparent": {traceparentOf(requesterTrace, requesterSpan)}})
	three := publishTraced(t, w, "iak", "span-3", "success#shared", nats.Header{"traceparent": {traceparentOf(traceB, spanB)}})
	w.StartBridge()
	got := w.WaitEvents(20*time.Second, one, two, three)

	spans := exp.GetSpans()
	byRequest := map[string][]tracetest.SpanStub{}
	for _, sp := range spans {
		for _, kv := range sp.Attributes {
			if kv.Key == "statusbridge.request_id" {
				byRequest[kv.Value.AsString()] = append(byRequest[kv.Value.AsString()], sp)
			}
		}
	}

	t.Run("checks and publish in the request's trace", func(t *testing.T) {
		var checks, publishes []tracetest.SpanStub
		for _, sp := range byRequest["span-1"] {
			if sp.SpanContext.TraceID().String() != requesterTrace || !sp.Parent.IsRemote() || sp.Parent.SpanID().String() != requesterSpan {
				t.Errorf("%s: trace %s parent %s, want a child of the requester's %s/%s", sp.Name, sp.SpanContext.TraceID(), sp.Parent.SpanID(), requesterTrace, requesterSpan)
			}
			switch sp.Name {
			case "check iak":
				checks = append(checks, sp)
			case "publish status.resolved.iak.success":
				publishes = append(publishes, sp)
			}
		}
		if len(checks) != 2 || len(publishes) != 1 {
			t.Fatalf("%d check spans and %d publish spans, want 2 (pending, success) and 1", len(checks), len(publishes))
		}
		e := got[one]
		want := traceparentOf(requesterTrace, publishes[0].SpanContext.SpanID().String())
		tp, _, _ := extensions(t, e.Raw)
		if h := e.Header.Get("traceparent"); h != want || tp != want {
			t.Errorf("event traceparent header %q, attribute %q; want the publish span's %q", h, tp, want)
		}
	})

	t.Run("a shared check links both traces", func(t *testing.T) {
		if n := w.Sim.Calls(sim.IAK, "success#shared"); n != 1 {
			t.Fatalf("%d calls for two requests of one reference, want one shared", n)
		}
		var call, shared []tracetest.SpanStub
		for _, id := range []string{"span-2", "span-3"} {
			for _, sp := range byRequest[id] {
				if sp.Name != "check iak" {
					continue
				}
				if sp.SpanKind == trace.SpanKindClient {
					call = append(call, sp)
				} else {
					shared = append(shared, sp)
				}
			}
		}
		if len(call) != 1 || len(shared) != 1 {
			t.Fatalf("%d call spans and %d shared check spans, want 1 and 1", len(call), len(shared))
		}
		c, sh := call[0], shared[0]
		if c.SpanContext.TraceID() == sh.SpanContext.TraceID() {
			t.Fatalf("both check spans are in trace %s", c.SpanContext.TraceID())
		}
		if len(c.Links) != 1 || c.Links[0].SpanContext.TraceID() != sh.SpanContext.TraceID() || c.Links[0].SpanContext.SpanID() != sh.Parent.SpanID() {
			t.Errorf("the call's links %v, want one to the other request's span %s/%s", c.Links, sh.SpanContext.TraceID(), sh.Parent.SpanID())
		}
		if len(sh.Links) != 1 || !sh.Links[0].SpanContext.Equal(c.SpanContext) {
			t.Errorf("the shared check's links %v, want one to the call %v", sh.Links, c.SpanContext)
		}
		for _, id := range []string{two, three} {
			tp, _, _ := extensions(t, got[id].Raw)
			if !strings.Contains(tp, requesterTrace) && !strings.Contains(tp, traceB) {
				t.Errorf("event %s: traceparent %q is in neither trace", id, tp)
			}
		}
	})
}

// TestTraceContextOutsideTheDelivery: a request settled outside its
// delivery (a cancel, a callback's confirming check) keeps its trace
// context, stored with its state: its event carries the requester's
// traceparent and tracestate.
func TestTraceContextOutsideTheDelivery(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) {
		c.CallbackAddr = "127.0.0.1:0"
		c.Backoff.Initial, c.Backoff.Max = time.Minute, time.Minute
	})
	b := w.StartBridge()
	w.Sim.SetCallbackURL("http://" + b.CallbackAddr + "/callbacks/ayopop")
	valid := traceparentOf(requesterTrace, requesterSpan)
	h := nats.Header{"traceparent": {valid}, "tracestate": {"rojo=00f067aa0ba902b7"}}
	const ref = "pending*1000,success#tp-outside"
	id := publishTraced(t, w, "ayopop", "tp-outside", ref, h)
	kv, err := w.JS.KeyValue(context.Background(), w.Config.ChecksBucket)
	if err != nil {
		t.Fatal(err)
	}
	daemontest.WaitFor(t, 10*time.Second, "the request parked", func() bool { return len(openKeys(t, kv)) == 1 })
	if _, err := w.Sim.AyopopCallback(context.Background(), ref, false); err != nil {
		t.Fatal(err)
	}
	e := w.WaitEvents(10*time.Second, id)[id]
	tp, ts, _ := extensions(t, e.Raw)
	if e.Event.Data.Status != publisher.StatusSuccess || tp != valid || ts != "rojo=00f067aa0ba902b7" {
		t.Errorf("event %s: traceparent %q, tracestate %q; want the requester's", e.Raw, tp, ts)
	}
	if got := e.Header.Get("traceparent"); got != valid {
		t.Errorf("event header traceparent %q, want %q", got, valid)
	}
}
