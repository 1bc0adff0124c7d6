package subscriber

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

const (
	requesterTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	requesterSpan  = "00f067aa0ba902b7"
	requesterTP    = "00-" + requesterTrace + "-" + requesterSpan + "-01"
)

func TestTraceparentIsValidatedAndPassedThrough(t *testing.T) {
	zeros32, zeros16 := strings.Repeat("0", 32), strings.Repeat("0", 16)
	for _, tc := range []struct {
		name   string
		header nats.Header
		want   string // the event's traceparent; empty: none
		state  string // the event's tracestate
	}{
		{"valid, sampled", nats.Header{"traceparent": {requesterTP}}, requesterTP, ""},
		{"valid, not sampled", nats.Header{"traceparent": {"00-" + requesterTrace + "-" + requesterSpan + "-00"}}, "00-" + requesterTrace + "-" + requesterSpan + "-00", ""},
		{"valid with tracestate", nats.Header{"traceparent": {requesterTP}, "tracestate": {"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}}, requesterTP, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{"as Go's net/http names it", nats.Header{"Traceparent": {requesterTP}, "Tracestate": {"rojo=1"}}, requesterTP, "rojo=1"},
		{"tracestate in two headers", nats.Header{"traceparent": {requesterTP}, "tracestate": {"rojo=1", "congo=2"}}, requesterTP, "rojo=1,congo=2"},
		{"invalid tracestate dropped, traceparent kept", nats.Header{"traceparent": {requesterTP}, "tracestate": {"Not A=List\x00"}}, requesterTP, ""},
		{"oversized tracestate dropped", nats.Header{"traceparent": {requesterTP}, "tracestate": {"a=" + strings.Repeat("b", 600)}}, requesterTP, ""},
		{"no header", nil, "", ""},
		{"other headers only", nats.Header{"Nats-Msg-Id": {"ord-7781-status"}}, "", ""},
		{"upper-case hex", nats.Header{"traceparent": {strings.ToUpper(requesterTP)}}, "", ""},
		{"trace id all zeros", nats.Header{"traceparent": {"00-" + zeros32 + "-" + requesterSpan + "-01"}}, "", ""},
		{"span id all zeros", nats.Header{"traceparent": {"00-" + requesterTrace + "-" + zeros16 + "-01"}}, "", ""},
		{"version 01", nats.Header{"traceparent": {"01-" + requesterTrace + "-" + requesterSpan + "-01"}}, "", ""},
		{"version ff", nats.Header{"traceparent": {"ff-" + requesterTrace + "-" + requesterSpan + "-01"}}, "", ""},
		{"version 00 with an extra field", nats.Header{"traceparent": {requesterTP + "-what"}}, "", ""},
		{"reserved flags", nats.Header{"traceparent": {"00-" + requesterTrace + "-" + requesterSpan + "-08"}}, "", ""},
		{"short", nats.Header{"traceparent": {requesterTP[:54]}}, "", ""},
		{"wrong separators", nats.Header{"traceparent": {strings.ReplaceAll(requesterTP, "-", "_")}}, "", ""},
		{"not hex", nats.Header{"traceparent": {"00-" + strings.Repeat("g", 32) + "-" + requesterSpan + "-01"}}, "", ""},
		{"two traceparent headers", nats.Header{"traceparent": {requesterTP, requesterTP}}, "", ""},
		{"oversized", nats.Header{"traceparent": {strings.Repeat(requesterTP, 100)}}, "", ""},
		{"quotes and JSON", nats.Header{"traceparent": {`00-"},"x":{"` + strings.Repeat("a", 44)}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			pub := &recordingPublisher{}
			s := tracedSubscriber(t, nil, pub, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), staticProvider{success})
			s.handle(context.Background(), tracedDelivery(tc.header, benchBody))

			ev := pub.only(t)
			if ev.TraceParent != tc.want || ev.TraceState != tc.state {
				t.Errorf("event traceparent %q tracestate %q, want %q %q", ev.TraceParent, ev.TraceState, tc.want, tc.state)
			}
			body, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" && bytes.Contains(body, []byte("trace")) {
				t.Errorf("an event of a request without a valid traceparent has trace members: %s", body)
			}
			for _, v := range tc.header["traceparent"] {
				if tc.want == "" && strings.Contains(logs.String(), v) {
					t.Errorf("the ignored traceparent is echoed in the log: %s", logs.String())
				}
			}
			// An ignored traceparent is said at DEBUG, and only there.
			ignored := tc.want == "" && len(tc.header["traceparent"]) > 0
			for line := range strings.Lines(logs.String()) {
				if strings.Contains(line, "traceparent") && (!ignored || !strings.Contains(line, `"level":"DEBUG"`)) {
					t.Errorf("log line about the traceparent: %s", line)
				}
			}
			if said := strings.Contains(logs.String(), "traceparent ignored"); said != ignored {
				t.Errorf("log says the traceparent was ignored: %v, want %v", said, ignored)
			}
		})
	}
}

func TestTracedRequestSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pub := &recordingPublisher{}
	s := tracedSubscriber(t, tp, pub, slog.New(slog.DiscardHandler), staticProvider{success})
	s.handle(context.Background(), tracedDelivery(nats.Header{"traceparent": {requesterTP}, "tracestate": {"rojo=1"}}, benchBody))

	ev := pub.only(t)
	spans := exp.GetSpans()
	check, publish := spanNamed(t, spans, "check iak"), spanNamed(t, spans, "publish status.resolved.iak.success")
	for _, sp := range []tracetest.SpanStub{check, publish} {
		if sp.SpanContext.TraceID().String() != requesterTrace {
			t.Errorf("%s: trace %s, want the request's %s", sp.Name, sp.SpanContext.TraceID(), requesterTrace)
		}
		if !sp.Parent.IsRemote() || sp.Parent.SpanID().String() != requesterSpan {
			t.Errorf("%s: parent %s (remote %v), want the requester's span %s", sp.Name, sp.Parent.SpanID(), sp.Parent.IsRemote(), requesterSpan)
		}
		attrs := attrMap(sp)
		if attrs["statusbridge.provider"] != "iak" || attrs["statusbridge.request_id"] != "ord-7781-status" {
			t.Errorf("%s: attributes %v", sp.Name, attrs)
		}
		for k, v := range attrs {
			if strings.Contains(v, "091283746520") {
				t.Errorf("%s: attribute %s holds the reference", sp.Name, k)
			}
		}
	}
	if check.SpanKind != trace.SpanKindClient || attrMap(check)["statusbridge.check.outcome"] != "success" {
		t.Errorf("check span: kind %v, attributes %v", check.SpanKind, attrMap(check))
	}
	if publish.SpanKind != trace.SpanKindProducer || attrMap(publish)["messaging.message.id"] != ev.ID {
		t.Errorf("publish span: kind %v, attributes %v", publish.SpanKind, attrMap(publish))
	}
	want := "00-" + requesterTrace + "-" + publish.SpanContext.SpanID().String() + "-01"
	if ev.TraceParent != want || ev.TraceState != "rojo=1" {
		t.Errorf("event traceparent %q tracestate %q, want the publish span's %q and rojo=1", ev.TraceParent, ev.TraceState, want)
	}
}

func TestUntracedRequestMakesNoSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pub := &recordingPublisher{}
	s := tracedSubscriber(t, tp, pub, slog.New(slog.DiscardHandler), staticProvider{success})
	s.handle(context.Background(), tracedDelivery(nats.Header{"Nats-Msg-Id": {"ord-7781-status"}}, benchBody))
	if ev := pub.only(t); ev.TraceParent != "" || ev.TraceState != "" {
		t.Errorf("event has trace context %q %q", ev.TraceParent, ev.TraceState)
	}
	if spans := exp.GetSpans(); len(spans) != 0 {
		t.Errorf("%d spans for a request without trace context", len(spans))
	}
}

// TestSharedCheckLinksEveryTrace: two traced requests for one reference
// share one call. The call's span is in the trace of the request that
// made it and links to the other's trace; the other's trace has a shared
// check span that links to the call's.
func TestSharedCheckLinksEveryTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	pub := &recordingPublisher{}
	prov := &gatedProvider{res: success, called: make(chan struct{}, 2), release: make(chan struct{})}
	s := tracedSubscriber(t, tp, pub, slog.New(slog.DiscardHandler), prov)

	const traceB = "0af7651916cd43dd8448eb211c80319c"
	const spanB = "b7ad6b7169203331"
	bodyB := strings.Replace(benchBody, "ord-7781-status", "ord-7782-status", 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		s.handle(context.Background(), tracedDelivery(nats.Header{"traceparent": {requesterTP}}, benchBody))
	})
	<-prov.called
	wg.Go(func() {
		s.handle(context.Background(), tracedDelivery(nats.Header{"traceparent": {"00-" + traceB + "-" + spanB + "-01"}}, bodyB))
	})
	waitFor(t, "the second request to join the check", func() bool {
		s.flights.mu.Lock()
		defer s.flights.mu.Unlock()
		for _, f := range s.flights.m {
			if f.waiters == 1 {
				return true
			}
		}
		return false
	})
	close(prov.release)
	wg.Wait()

	if n := prov.calls(); n != 1 {
		t.Fatalf("%d provider calls, want one shared", n)
	}
	var call, shared []tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		if sp.Name != "check iak" {
			continue
		}
		if attrMap(sp)["statusbridge.check.shared"] == "true" {
			shared = append(shared, sp)
		} else {
			call = append(call, sp)
		}
	}
	if len(call) != 1 || len(shared) != 1 {
		t.Fatalf("%d call spans and %d shared check spans, want 1 and 1", len(call), len(shared))
	}
	c, sh := call[0], shared[0]
	if c.SpanContext.TraceID().String() != requesterTrace || sh.SpanContext.TraceID().String() != traceB {
		t.Errorf("the call is in trace %s, the shared check in %s; want %s and %s", c.SpanContext.TraceID(), sh.SpanContext.TraceID(), requesterTrace, traceB)
	}
	if sh.Parent.SpanID().String() != spanB || attrMap(sh)["statusbridge.check.shared_by"] != viaFlight {
		t.Errorf("shared check: parent %s, attributes %v", sh.Parent.SpanID(), attrMap(sh))
	}
	if len(c.Links) != 1 || c.Links[0].SpanContext.TraceID().String() != traceB || c.Links[0].SpanContext.SpanID().String() != spanB {
		t.Errorf("the call's links %v, want one to the second request's span %s/%s", c.Links, traceB, spanB)
	}
	if len(sh.Links) != 1 || !sh.Links[0].SpanContext.Equal(c.SpanContext) {
		t.Errorf("the shared check's links %v, want one to the call %v", sh.Links, c.SpanContext)
	}
	for _, ev := range pub.published() {
		if !strings.Contains(ev.TraceParent, requesterTrace) && !strings.Contains(ev.TraceParent, traceB) {
			t.Errorf("event %s has traceparent %q, not its request's trace", ev.Data.RequestID, ev.TraceParent)
		}
	}
}

// TestBucketAnswerLinksTheCallThatMadeIt: an answer another replica
// shared through the capacity bucket serves a traced request, whose check
// span links to the span of the call that made it.
func TestBucketAnswerLinksTheCallThatMadeIt(t *testing.T) {
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
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "capacity"})
	if err != nil {
		t.Fatal(err)
	}
	const callTrace, callSpan = "11111111111111111111111111111111", "2222222222222222"
	answer, err := json.Marshal(sharedAnswer{AnsweredAt: time.Now().UnixNano(), Result: storeResult(success),
		Trace: "00-" + callTrace + "-" + callSpan + "-01"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, refKey("iak", "091283746520"), answer); err != nil {
		t.Fatal(err)
	}

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prov := &gatedProvider{res: success, called: make(chan struct{}, 1), release: make(chan struct{})}
	close(prov.release)
	pub := &recordingPublisher{}
	s := tracedSubscriber(t, tp, pub, slog.New(slog.DiscardHandler), prov)
	s.capacityKV = kv
	s.handle(ctx, tracedDelivery(nats.Header{"traceparent": {requesterTP}}, benchBody))

	if ev := pub.only(t); ev.Data.Status != publisher.StatusSuccess || prov.calls() != 0 {
		t.Fatalf("status %s after %d calls, want success from the shared answer", ev.Data.Status, prov.calls())
	}
	sp := spanNamed(t, exp.GetSpans(), "check iak")
	if a := attrMap(sp); a["statusbridge.check.shared"] != "true" || a["statusbridge.check.shared_by"] != viaBucket {
		t.Errorf("attributes %v", a)
	}
	if sp.SpanContext.TraceID().String() != requesterTrace || sp.Parent.SpanID().String() != requesterSpan {
		t.Errorf("span in trace %s under %s, want the request's", sp.SpanContext.TraceID(), sp.Parent.SpanID())
	}
	if len(sp.Links) != 1 || sp.Links[0].SpanContext.TraceID().String() != callTrace || sp.Links[0].SpanContext.SpanID().String() != callSpan {
		t.Errorf("links %v, want one to the call %s/%s", sp.Links, callTrace, callSpan)
	}
}

func tracedSubscriber(t *testing.T, tp trace.TracerProvider, pub Publisher, log *slog.Logger, p providers.Provider) *Subscriber {
	t.Helper()
	sched := Schedule{Initial: 5 * time.Second, Max: 10 * time.Minute, Multiplier: 2, Jitter: 0.2}
	s, err := New(Config{
		Concurrency: 4, RequestTimeout: 5 * time.Second, PublishTimeout: 5 * time.Second,
		MaxWait: 24 * time.Hour, MaxDeadline: 720 * time.Hour, NotFoundGrace: 5 * time.Minute,
		Schedules: map[string]Schedule{"iak": sched}, ShutdownTimeout: time.Minute,
	}, Options{
		Consumer: benchConsumer{}, Publisher: pub, Providers: map[string]providers.Provider{"iak": p},
		Logger: log, Metrics: metrics.New("test"), TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tracedDelivery is a first delivery of body on status.requested.iak with
// header h.
func tracedDelivery(h nats.Header, body string) jetstream.Msg {
	return &headerMsg{benchMsg: benchMsg{data: []byte(body), meta: jetstream.MsgMetadata{
		NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: 42, Consumer: 42}, Timestamp: time.Now(),
	}}, h: h}
}

type headerMsg struct {
	benchMsg
	h nats.Header
}

func (m *headerMsg) Headers() nats.Header { return m.h }

func (p *recordingPublisher) only(t *testing.T) publisher.Event {
	t.Helper()
	evs := p.published()
	if len(evs) != 1 {
		t.Fatalf("%d events published, want 1", len(evs))
	}
	return evs[0]
}

type staticProvider struct{ res providers.Result }

func (staticProvider) Name() string { return "iak" }
func (p staticProvider) Status(context.Context, providers.Query) (providers.Result, error) {
	return p.res, nil
}

// gatedProvider answers res once release is closed, and signals each call
// on called.
type gatedProvider struct {
	res     providers.Result
	called  chan struct{}
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (*gatedProvider) Name() string { return "iak" }
func (p *gatedProvider) Status(ctx context.Context, _ providers.Query) (providers.Result, error) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	p.called <- struct{}{}
	select {
	case <-p.release:
		return p.res, nil
	case <-ctx.Done():
		return providers.Result{}, ctx.Err()
	}
}

func (p *gatedProvider) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, sp := range spans {
		if sp.Name == name {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, sp := range spans {
			names = append(names, sp.Name)
		}
		t.Fatalf("%d spans named %q, want 1 (spans: %v)", len(found), name, names)
	}
	return found[0]
}

func attrMap(sp tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range sp.Attributes {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
