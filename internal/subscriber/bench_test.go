package subscriber

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// benchBody is a request as SPEC §7 shows it.
const benchBody = `{"request_id":"ord-7781-status","provider":"iak","reference":"091283746520",` +
	`"deadline":"2026-11-23T10:00:00Z","metadata":{"order_id":"7781","tenant":"shop-a"}}`

func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(benchBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, derr := decodeRequest(body, "iak"); derr != nil {
			b.Fatal(derr)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t := timing{Attempt: 3, Now: now, RequestedAt: now.Add(-time.Minute), Deadline: now.Add(time.Hour),
		NotFoundGrace: 5 * time.Minute, Schedule: Schedule{Initial: 5 * time.Second, Max: 10 * time.Minute, Multiplier: 2, Jitter: 0.2},
		Rand: func() float64 { return 0.5 }}
	res := providers.Result{State: providers.StatePending}
	b.ReportAllocs()
	for b.Loop() {
		decide(res, nil, t)
	}
}

// BenchmarkHandle is the subscriber's own work on one delivery that
// resolves at once: metadata, decode, the check's bookkeeping, decide,
// the event, metrics and the INFO log line (JSON, discarded). The check
// answers from memory and the publisher does not encode: see the
// provider and publisher benchmarks for those.
func BenchmarkHandle(b *testing.B) {
	s := benchSubscriber(b, providers.Result{State: providers.StateSuccess, Status: "1", Code: "00",
		Message: "PAYMENT SUCCESS", TransactionID: "9732795", Amount: "137110", Currency: "IDR",
		Details: json.RawMessage(`{"nominal":129610,"tr_name":"JAORAH"}`)})
	msg := &benchMsg{data: []byte(benchBody), meta: jetstream.MsgMetadata{
		NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: 42, Consumer: 42}, Timestamp: time.Now(),
	}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.handle(ctx, msg)
	}
}

// BenchmarkHandlePending is a delivery whose check answers pending: it is
// parked again.
func BenchmarkHandlePending(b *testing.B) {
	s := benchSubscriber(b, providers.Result{State: providers.StatePending, Status: "3", Code: "39"})
	msg := &benchMsg{data: []byte(benchBody), meta: jetstream.MsgMetadata{
		NumDelivered: 3, Sequence: jetstream.SequencePair{Stream: 42, Consumer: 44}, Timestamp: time.Now(),
	}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.handle(ctx, msg)
	}
}

func benchSubscriber(b testing.TB, answer providers.Result) *Subscriber {
	return subscriberWithLog(b, answer, slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

// subscriberWithLog is a subscriber whose only provider, iak, answers
// answer from memory, and whose publisher accepts every event.
func subscriberWithLog(b testing.TB, answer providers.Result, log *slog.Logger) *Subscriber {
	b.Helper()
	sched := Schedule{Initial: 5 * time.Second, Max: 10 * time.Minute, Multiplier: 2, Jitter: 0.2}
	s, err := New(Config{
		Concurrency: 64, RequestTimeout: 30 * time.Second, PublishTimeout: 10 * time.Second,
		MaxWait: 24 * time.Hour, MaxDeadline: 720 * time.Hour, NotFoundGrace: 5 * time.Minute,
		Schedules: map[string]Schedule{"iak": sched}, ShutdownTimeout: time.Minute, MaxPending: 100000,
	}, Options{
		Consumer:  benchConsumer{},
		Publisher: benchPublisher{},
		Providers: map[string]providers.Provider{"iak": benchProvider{answer}},
		Logger:    log,
		Metrics:   metrics.New("bench"),
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type benchProvider struct{ res providers.Result }

func (benchProvider) Name() string { return "iak" }
func (p benchProvider) Status(context.Context, providers.Query) (providers.Result, error) {
	return p.res, nil
}

type benchPublisher struct{}

func (benchPublisher) Publish(context.Context, string, publisher.Event) (bool, error) {
	return false, nil
}
func (benchPublisher) PublishDeadLetter(context.Context, publisher.DeadLetter) error { return nil }

// benchConsumer stands in for the bound consumer, which handle never uses.
type benchConsumer struct{ jetstream.Consumer }

// benchMsg is a delivery of status.requested.iak that accepts every
// acknowledgement.
type benchMsg struct {
	data []byte
	meta jetstream.MsgMetadata
}

func (m *benchMsg) Metadata() (*jetstream.MsgMetadata, error) { md := m.meta; return &md, nil }
func (m *benchMsg) Data() []byte                              { return m.data }
func (m *benchMsg) Headers() nats.Header                      { return nil }
func (m *benchMsg) Subject() string                           { return "status.requested.iak" }
func (m *benchMsg) Reply() string                             { return "" }
func (m *benchMsg) Ack() error                                { return nil }
func (m *benchMsg) DoubleAck(context.Context) error           { return nil }
func (m *benchMsg) Nak() error                                { return nil }
func (m *benchMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *benchMsg) InProgress() error                         { return nil }
func (m *benchMsg) Term() error                               { return nil }
func (m *benchMsg) TermWithReason(string) error               { return nil }
