package subscriber

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// checksBucket is a checks bucket on an embedded server of the test's own.
func checksBucket(t testing.TB) jetstream.KeyValue {
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
	kv, err := js.CreateKeyValue(context.Background(), topology.Config{ChecksBucket: "STATUS_CHECKS", ChecksMaxAge: time.Hour, Replicas: 1}.ChecksBucketConfig())
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// scriptedProvider answers from answers in turn (the last one repeats) and
// runs during, when set, inside each check.
type scriptedProvider struct {
	mu      sync.Mutex
	answers []providers.Result
	calls   int
	during  func(call int)
}

func (*scriptedProvider) Name() string { return "iak" }
func (p *scriptedProvider) Status(context.Context, providers.Query) (providers.Result, error) {
	p.mu.Lock()
	p.calls++
	n := p.calls
	res := p.answers[min(n, len(p.answers))-1]
	during := p.during
	p.mu.Unlock()
	if during != nil {
		during(n)
	}
	return res, nil
}

func (p *scriptedProvider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// recordingPublisher keeps the events published; failures makes that many
// publishes fail first.
type recordingPublisher struct {
	mu       sync.Mutex
	events   []publisher.Event
	failures int
}

func (p *recordingPublisher) Publish(_ context.Context, _ string, ev publisher.Event) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		p.failures--
		return false, errors.New("no PubAck")
	}
	p.events = append(p.events, ev)
	return false, nil
}
func (*recordingPublisher) PublishDeadLetter(context.Context, publisher.DeadLetter) error { return nil }

func (p *recordingPublisher) published() []publisher.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]publisher.Event(nil), p.events...)
}

// settlingMsg is a delivery that counts how it was settled.
type settlingMsg struct {
	benchMsg
	mu           sync.Mutex
	acks, parked int
}

func (m *settlingMsg) DoubleAck(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acks++
	return nil
}

func (m *settlingMsg) NakWithDelay(time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parked++
	return nil
}

func stateSubscriber(t *testing.T, p *scriptedProvider, pub *recordingPublisher) *Subscriber {
	return stateSubscriberTB(t, p, pub)
}

func stateSubscriberTB(t testing.TB, p *scriptedProvider, pub *recordingPublisher) *Subscriber {
	t.Helper()
	sched := Schedule{Initial: time.Minute, Max: time.Minute, Multiplier: 2}
	s, err := New(Config{
		Concurrency: 4, RequestTimeout: 5 * time.Second, PublishTimeout: 5 * time.Second,
		MaxWait: 24 * time.Hour, MaxDeadline: 720 * time.Hour, NotFoundGrace: time.Minute,
		Schedules: map[string]Schedule{"iak": sched, "ayopop": sched, "appotapay": sched}, ShutdownTimeout: time.Minute,
	}, Options{
		Consumer: benchConsumer{}, Publisher: pub,
		Providers: map[string]providers.Provider{"iak": p, "ayopop": nil, "appotapay": nil}, // inspect reads a key per provider
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New("test"),
		ChecksKV: checksBucket(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// deliveryOf is the n-th delivery of request ord-1.
func deliveryOf(n uint64) *settlingMsg {
	return &settlingMsg{benchMsg: benchMsg{data: []byte(`{"request_id":"ord-1","provider":"iak","reference":"091283746520","metadata":{"k":"v"}}`),
		meta: jetstream.MsgMetadata{NumDelivered: n, Sequence: jetstream.SequencePair{Stream: 7, Consumer: n}, Timestamp: time.Now().Add(-time.Second)}}}
}

var (
	pending = providers.Result{State: providers.StatePending, Status: "3"}
	success = providers.Result{State: providers.StateSuccess, Status: "1", Code: "00"}
)

// TestCancelSettlesAParkedRequest: the cancel publishes the event; the
// parked delivery, back, acks without a check or a publish.
func TestCancelSettlesAParkedRequest(t *testing.T) {
	p := &scriptedProvider{answers: []providers.Result{pending, success}}
	pub := &recordingPublisher{}
	s := stateSubscriber(t, p, pub)
	ctx := context.Background()

	first := deliveryOf(1)
	s.handle(ctx, first)
	in, err := s.Inspect(ctx, "ord-1")
	if err != nil || in.State != StateParked || *in.Attempts != 1 || in.LastOutcome != "pending" || first.parked != 1 {
		t.Fatalf("after the first check: %+v, %v, parked %d", in, err, first.parked)
	}
	in, err = s.Cancel(ctx, "ord-1")
	if err != nil || in.State != StateResolved || in.Reason != publisher.ReasonCancelled {
		t.Fatalf("cancel: %+v, %v", in, err)
	}
	evs := pub.published()
	if len(evs) != 1 || evs[0].Data.Status != publisher.StatusExpired || evs[0].Data.Reason != publisher.ReasonCancelled ||
		evs[0].Data.Attempts != 1 || evs[0].Data.Metadata["k"] != "v" || evs[0].ID != publisher.EventID("iak", "ord-1") {
		t.Fatalf("events after the cancel: %+v", evs)
	}
	second := deliveryOf(2)
	s.handle(ctx, second)
	if second.acks != 1 || second.parked != 0 || p.count() != 1 || len(pub.published()) != 1 {
		t.Errorf("the parked delivery: acks %d, parked %d, checks %d, events %d; want 1 ack, no check, no event",
			second.acks, second.parked, p.count(), len(pub.published()))
	}
	if again, err := s.Cancel(ctx, "ord-1"); err != nil || again.Reason != publisher.ReasonCancelled || len(pub.published()) != 1 {
		t.Errorf("second cancel: %+v, %v, %d events", again, err, len(pub.published()))
	}
	if u, err := s.Cancel(ctx, "ord-2"); err != nil || u.State != StateUnknown {
		t.Errorf("cancel of an unknown id: %+v, %v", u, err)
	}
	if _, err := s.Inspect(ctx, "bad id"); !errors.Is(err, ErrInvalidRequestID) {
		t.Errorf("inspect of an invalid id: %v", err)
	}
}

// TestCancelDuringACheck: a cancel that lands while the delivery checks
// wins; the delivery, whose check said success, publishes nothing of its
// own and acks.
func TestCancelDuringACheck(t *testing.T) {
	p := &scriptedProvider{answers: []providers.Result{pending, success}}
	pub := &recordingPublisher{}
	s := stateSubscriber(t, p, pub)
	ctx := context.Background()
	s.handle(ctx, deliveryOf(1))
	p.during = func(call int) {
		if _, err := s.Cancel(ctx, "ord-1"); err != nil {
			t.Errorf("cancel: %v", err)
		}
	}
	second := deliveryOf(2)
	s.handle(ctx, second)
	evs := pub.published()
	if len(evs) != 1 || evs[0].Data.Reason != publisher.ReasonCancelled || second.acks != 1 {
		t.Errorf("events %+v, acks %d: want only the cancel's event, and the delivery acked", evs, second.acks)
	}
	if in, _ := s.Inspect(ctx, "ord-1"); in.Reason != publisher.ReasonCancelled {
		t.Errorf("inspect: %+v", in)
	}
}

// TestCancelWhosePublishFailed: the cancel stands; the parked delivery
// publishes the recorded event.
func TestCancelWhosePublishFailed(t *testing.T) {
	p := &scriptedProvider{answers: []providers.Result{pending}}
	pub := &recordingPublisher{}
	s := stateSubscriber(t, p, pub)
	ctx := context.Background()
	s.handle(ctx, deliveryOf(1))
	pub.failures = 1
	if in, err := s.Cancel(ctx, "ord-1"); err != nil || in.Reason != publisher.ReasonCancelled {
		t.Fatalf("cancel: %+v, %v", in, err)
	}
	second := deliveryOf(2)
	s.handle(ctx, second)
	evs := pub.published()
	if len(evs) != 1 || evs[0].Data.Reason != publisher.ReasonCancelled || second.acks != 1 || p.count() != 1 {
		t.Errorf("events %+v, acks %d, checks %d", evs, second.acks, p.count())
	}
}

// TestResolvedStateOutlivesTheDelivery: a request resolved at its first
// check is inspected as resolved, and a redelivery (its ack was lost)
// publishes the same event again without a check.
func TestResolvedStateOutlivesTheDelivery(t *testing.T) {
	p := &scriptedProvider{answers: []providers.Result{success}}
	pub := &recordingPublisher{}
	s := stateSubscriber(t, p, pub)
	ctx := context.Background()
	s.handle(ctx, deliveryOf(1))
	in, err := s.Inspect(ctx, "ord-1")
	if err != nil || in.State != StateResolved || in.Status != "success" || *in.Attempts != 1 || in.EventID != publisher.EventID("iak", "ord-1") {
		t.Fatalf("inspect: %+v, %v", in, err)
	}
	again := deliveryOf(2)
	s.handle(ctx, again)
	evs := pub.published()
	if p.count() != 1 || len(evs) != 2 || evs[1].ID != evs[0].ID || evs[1].Data.Status != "success" || again.acks != 1 {
		t.Errorf("redelivery: %d checks, events %+v, acks %d", p.count(), evs, again.acks)
	}
	// A rejected request is recorded too.
	s.handle(ctx, &settlingMsg{benchMsg: benchMsg{data: []byte(`{"request_id":"ord-9","provider":"iak","reference":"r","deadline":"nope"}`),
		meta: jetstream.MsgMetadata{NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: 8}, Timestamp: time.Now()}}})
	if in, _ := s.Inspect(ctx, "ord-9"); in.State != StateResolved || in.Status != "rejected" || *in.Attempts != 0 {
		t.Errorf("rejected request: %+v", in)
	}
}

// BenchmarkInspectParked: inspect among 100,000 parked requests (the
// target: p99 ≤ 50 ms). The requests are parked through handle, each
// writing its state as a parked delivery does; the inspections then read
// random ones. It takes a while to set up: run it with -benchtime=2000x.
func BenchmarkInspectParked(b *testing.B) {
	const parked = 100_000
	p := &scriptedProvider{answers: []providers.Result{pending}}
	s := stateSubscriberTB(b, p, &recordingPublisher{})
	ctx := context.Background()
	for i := range parked {
		id := "ord-" + strconv.Itoa(i)
		s.handle(ctx, &settlingMsg{benchMsg: benchMsg{
			data: []byte(`{"request_id":"` + id + `","provider":"iak","reference":"ref-` + id + `"}`),
			meta: jetstream.MsgMetadata{NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: uint64(i + 1)}, Timestamp: time.Now()},
		}})
	}
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		id := "ord-" + strconv.Itoa(rand.IntN(parked))
		start := time.Now()
		in, err := s.Inspect(ctx, id)
		took = append(took, time.Since(start))
		if err != nil || in.State != StateParked {
			b.Fatalf("%s: %+v, %v", id, in, err)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}

// TestStateOfAnEarlierVersion: a parked request's checks as the previous
// version wrote them (no sequence) still count.
func TestStateOfAnEarlierVersion(t *testing.T) {
	p := &scriptedProvider{answers: []providers.Result{pending}}
	s := stateSubscriber(t, p, &recordingPublisher{})
	ctx := context.Background()
	if _, err := s.checksKV.Put(ctx, checkKey("iak", "ord-1"), []byte(`{"attempts":3,"last_check":1,"last_outcome":"pending"}`)); err != nil {
		t.Fatal(err)
	}
	s.handle(ctx, deliveryOf(4))
	if in, err := s.Inspect(ctx, "ord-1"); err != nil || in.State != StateParked || *in.Attempts != 4 {
		t.Errorf("inspect: %+v, %v; want parked after 4 answered checks", in, err)
	}
}
