package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// Config sets how the subscriber works.
type Config struct {
	// Concurrency is the number of requests handled at once by this
	// replica; as many more are prefetched.
	Concurrency int
	// RequestTimeout is the time one provider check may take (the
	// providers' HTTP client is built with the same timeout) and
	// PublishTimeout the time to publish the event and settle the
	// request after it: their sum bounds one delivery.
	RequestTimeout time.Duration
	PublishTimeout time.Duration
	// MaxWait is the deadline of a request that sets none, after its publish.
	MaxWait time.Duration
	// MaxDeadline is the furthest deadline a request may set, after its
	// publish; a later one is rejected rather than parked for months.
	MaxDeadline time.Duration
	// NotFoundGrace is how long "not found" is checked again before it
	// becomes a failed payment.
	NotFoundGrace time.Duration
	// Schedules holds the re-check schedule of every provider name.
	Schedules map[string]Schedule
	// ShutdownTimeout bounds how long Run waits for in-flight checks after
	// its context ends.
	ShutdownTimeout time.Duration
	// MaxPending is the planned number of parked requests, consumer-wide;
	// exceeding it is logged.
	MaxPending int
	// Callbacks names the providers whose callbacks the bridge serves:
	// their parked requests are indexed by reference for Confirm.
	Callbacks map[string]bool
}

// Publisher publishes events and dead letters and returns once JetStream
// acknowledged them (*publisher.Publisher).
type Publisher interface {
	Publish(ctx context.Context, subject string, ev publisher.Event) (duplicate bool, err error)
	PublishDeadLetter(ctx context.Context, d publisher.DeadLetter) error
}

// Subscriber consumes requests and resolves them.
type Subscriber struct {
	cfg       Config
	rebind    func(context.Context) (jetstream.Consumer, error)
	consumer  atomic.Value // jetstream.Consumer: the one being read
	pub       Publisher
	providers map[string]providers.Provider
	log       *slog.Logger
	// providerLog has a logger naming each provider the bridge
	// implements, for the line every settled request writes.
	providerLog map[string]*slog.Logger
	m           *metrics.Metrics
	perReq      requestMetrics
	now         func() time.Time
	rand        func() float64

	// Capacity: each provider's gate (nil: calls are not held), the shared
	// answers per reference and the parked requests' checks (nil: not
	// shared, counted from JetStream's deliveries' view of nothing).
	gates      map[string]*capacity.Gate
	capacityKV jetstream.KeyValue
	checksKV   jetstream.KeyValue
	capm       *capacity.Metrics
	flights    flights
	records    sync.WaitGroup // state records written after their delivery
	tracer     trace.Tracer

	ready atomic.Bool
}

// Options are the Subscriber's collaborators.
type Options struct {
	// Consumer is the bound consumer to read from.
	Consumer jetstream.Consumer
	// Rebind finds the consumer again when it disappears (deleted, or
	// lost by a cluster).
	Rebind    func(context.Context) (jetstream.Consumer, error)
	Publisher Publisher
	// Providers maps every provider name the bridge implements to its
	// client, or to nil when it has no credentials (its requests are
	// rejected with provider_not_configured).
	Providers map[string]providers.Provider
	Logger    *slog.Logger
	Metrics   *metrics.Metrics
	// Now and Rand default to time.Now and math/rand/v2.
	Now  func() time.Time
	Rand func() float64

	// Gates admits each provider's calls within its shared capacity; a
	// provider without one is called whenever a check is due.
	Gates map[string]*capacity.Gate
	// CapacityKV holds the answers shared between requests for the same
	// reference and ChecksKV each parked request's answered checks; without
	// them, only requests in this replica share answers and every delivery
	// counts as a fresh start of the schedule.
	CapacityKV, ChecksKV jetstream.KeyValue
	// CapacityMetrics defaults to unregistered metrics.
	CapacityMetrics *capacity.Metrics
	// TracerProvider makes the spans of requests that carry a traceparent
	// (see trace.go); nil is the no-op provider: tracing off.
	TracerProvider trace.TracerProvider
}

// New returns a Subscriber. Every provider in o.Providers must have a
// schedule in cfg.Schedules.
func New(cfg Config, o Options) (*Subscriber, error) {
	var errs []error
	if cfg.Concurrency < 1 {
		errs = append(errs, errors.New("concurrency must be positive"))
	}
	for name := range o.Providers {
		s, ok := cfg.Schedules[name]
		if !ok {
			errs = append(errs, fmt.Errorf("no schedule for provider %s", name))
			continue
		}
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("schedule of %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Subscriber{
		cfg: cfg, rebind: o.Rebind, pub: o.Publisher, providers: o.Providers,
		log: o.Logger, m: o.Metrics, now: o.Now, rand: o.Rand,
		gates: o.Gates, capacityKV: o.CapacityKV, checksKV: o.ChecksKV, capm: o.CapacityMetrics,
		flights: flights{m: map[string]*flight{}},
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	s.tracer = tp.Tracer(tracerName)
	if s.capm == nil {
		s.capm = capacity.NewMetrics(prometheus.NewRegistry(), nil)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Float64
	}
	s.consumer.Store(o.Consumer)
	s.m.ParkedLimit.Set(float64(cfg.MaxPending))
	s.m.AddProviders(slices.Sorted(maps.Keys(o.Providers))...)
	s.providerLog = map[string]*slog.Logger{}
	for name := range s.providers {
		s.providerLog[name] = s.log.With("provider", name)
	}
	s.perReq = requestMetrics{
		deliveries:    metrics.NewChildren(s.m.Deliveries.WithLabelValues),
		checks:        metrics.NewChildren(s.m.Checks.WithLabelValues),
		checkDuration: metrics.NewChildren(s.m.CheckDuration.WithLabelValues),
		events:        metrics.NewChildren(s.m.Events.WithLabelValues),
		resolution:    metrics.NewChildren(s.m.Resolution.WithLabelValues),
		attempts:      metrics.NewChildren(s.m.Attempts.WithLabelValues),
	}
	return s, nil
}

// requestMetrics are the metrics every request updates, with their
// children cached.
type requestMetrics struct {
	deliveries, checks, events          *metrics.Children[prometheus.Counter]
	checkDuration, resolution, attempts *metrics.Children[prometheus.Observer]
}

// Ready reports whether the subscriber is bound to its consumer and
// taking requests.
func (s *Subscriber) Ready() bool { return s.ready.Load() }

// Run consumes requests until ctx ends, then stops taking requests, hands
// the prefetched ones back for another replica, and waits up to the
// shutdown timeout for the checks in flight to finish and settle. It
// returns nil after a clean shutdown.
func (s *Subscriber) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	// Each provider has a pool of Concurrency handlers of its own, so a
	// provider that is slow or down occupies only its own pool; requests
	// naming no provider the bridge implements share one more. A fixed pool
	// keeps the stacks its handlers grew.
	pools := map[string]*pool{}
	for _, name := range append(slices.Sorted(maps.Keys(s.providers)), "unknown") {
		p := &pool{work: make(chan jetstream.Msg)}
		pools[name] = p
		defer close(p.work)
		for range s.cfg.Concurrency {
			go s.work(ctx, p.work, &wg)
		}
	}
	go s.sampleConsumer(ctx)
	go s.sweepFlights(ctx)

	for ctx.Err() == nil {
		cons := s.consumer.Load().(jetstream.Consumer)
		s.m.MaxAckPending.Set(float64(cons.CachedInfo().Config.MaxAckPending))
		it, err := cons.Messages(
			jetstream.PullMaxMessages(s.cfg.Concurrency),
			// A short expiry and heartbeat let a stalled pull surface as
			// ErrNoHeartbeat within seconds instead of half a minute.
			jetstream.PullExpiry(10*time.Second),
			jetstream.PullHeartbeat(3*time.Second),
		)
		if err != nil {
			s.log.Error("cannot start consuming; retrying", "err", err)
			sleep(ctx, 2*time.Second)
			continue
		}
		s.setReady(true)
		s.log.Info("consuming requests", "consumer", cons.CachedInfo().Name, "stream", cons.CachedInfo().Stream, "concurrency", s.cfg.Concurrency)
		reason := s.consume(ctx, it, pools, &wg)
		s.setReady(false)
		if reason == "" {
			continue
		}
		s.m.ConsumeRestarts.WithLabelValues(reason).Inc()
		s.log.Warn("re-creating the pull subscription", "reason", reason)
		if reason == "consumer_gone" {
			s.rebindUntilFound(ctx)
		}
	}
	return s.shutdown(&wg)
}

// pool is one provider's handlers.
type pool struct {
	work chan jetstream.Msg
	// congestedUntil: the pool was found full and stayed full for
	// handoffWait; until then its requests are parked at once instead of
	// waited for, so they never hold up the others'.
	congestedUntil time.Time
}

// handoffWait is how long the consume loop waits for a busy provider's
// pool before it parks the request instead. A pool that is busy because it
// is fast frees a handler well within it, even on a loaded machine; one
// whose calls hang does not, and then costs the loop this long at most
// once a second.
const handoffWait = 250 * time.Millisecond

// consume feeds messages from it to their provider's handlers until ctx
// ends (it returns "") or the subscription must be re-created (it returns
// why).
func (s *Subscriber) consume(ctx context.Context, it jetstream.MessagesContext, pools map[string]*pool, wg *sync.WaitGroup) string {
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	missedHeartbeats := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				s.handBack(it)
				return ""
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				// The library re-issues the pull itself; a subscription
				// that keeps missing heartbeats is replaced.
				missedHeartbeats++
				s.log.Warn("no heartbeat from the consumer", "in_a_row", missedHeartbeats)
				if missedHeartbeats >= 3 {
					it.Stop()
					return "no_heartbeat"
				}
				continue
			case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
				it.Stop()
				return "consumer_gone"
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return "closed"
			default:
				s.log.Warn("pull subscription error", "err", err)
				continue
			}
		}
		missedHeartbeats = 0
		_, name := providerOf(msg.Subject())
		p, ok := pools[name]
		if !ok {
			p = pools["unknown"]
		}
		wg.Add(1)
		s.m.InFlight.Add(1)
		select {
		case p.work <- msg:
			continue
		default:
		}
		if now := time.Now(); now.Before(p.congestedUntil) {
			s.parkBusy(msg, name, wg)
			continue
		}
		timer.Reset(handoffWait)
		select {
		case p.work <- msg:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
			p.congestedUntil = time.Now().Add(time.Second)
			s.parkBusy(msg, name, wg)
		}
	}
}

// parkBusy parks a request whose provider's handlers are all busy, for
// about a second, without using a step of its schedule.
func (s *Subscriber) parkBusy(msg jetstream.Msg, provider string, wg *sync.WaitGroup) {
	_ = msg.NakWithDelay(500*time.Millisecond + time.Duration(s.rand()*float64(time.Second)))
	s.capm.PoolBusy.WithLabelValues(s.label(provider)).Inc()
	s.m.InFlight.Add(-1)
	wg.Done()
}

// work handles the deliveries consume hands over, one at a time.
func (s *Subscriber) work(ctx context.Context, work <-chan jetstream.Msg, wg *sync.WaitGroup) {
	base := context.WithoutCancel(ctx) // see handle
	for msg := range work {
		s.handle(base, msg)
		s.m.InFlight.Add(-1)
		wg.Done()
	}
}

// handBack returns prefetched, unstarted requests to JetStream at once so
// another replica can take them, instead of after AckWait.
func (s *Subscriber) handBack(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next()
		if err != nil {
			return
		}
		_ = msg.Nak()
	}
}

func (s *Subscriber) shutdown(wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		s.records.Wait() // records of requests settled at first delivery
		close(done)
	}()
	select {
	case <-done:
		s.log.Info("in-flight checks finished")
		return nil
	case <-time.After(s.cfg.ShutdownTimeout):
		n := s.m.InFlight.Load()
		s.log.Warn("shutdown timeout: unfinished checks will be redelivered after the ack wait", "inflight", n)
		return fmt.Errorf("shutdown: %d checks still in flight after %v", n, s.cfg.ShutdownTimeout)
	}
}

// rebindUntilFound calls Rebind until it succeeds or ctx ends.
func (s *Subscriber) rebindUntilFound(ctx context.Context) {
	for ctx.Err() == nil {
		cons, err := s.rebind(ctx)
		if err == nil {
			s.consumer.Store(cons)
			return
		}
		s.log.Error("cannot bind the consumer; retrying", "err", err)
		sleep(ctx, 2*time.Second)
	}
}

func (s *Subscriber) setReady(v bool) {
	s.ready.Store(v)
	if v {
		s.m.Ready.Set(1)
	} else {
		s.m.Ready.Set(0)
	}
}

// sampleConsumer keeps the parked and backlog gauges current.
func (s *Subscriber) sampleConsumer(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cons := s.consumer.Load().(jetstream.Consumer)
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err != nil {
			s.m.ConsumerInfoErrs.Inc()
			continue
		}
		parked := max(0, int64(info.NumAckPending)-s.m.InFlight.Load())
		s.m.Parked.Set(float64(parked))
		s.m.Backlog.Set(float64(info.NumPending))
		over := s.cfg.MaxPending > 0 && parked > int64(s.cfg.MaxPending)
		if over && !warned {
			s.log.Warn("more requests parked than BRIDGE_MAX_PENDING; new requests get delivered until MaxAckPending is reached, then wait in the stream",
				"parked", parked, "max_pending", s.cfg.MaxPending, "max_ack_pending", info.Config.MaxAckPending)
		}
		warned = over
	}
}

// sweepFlights forgets answers too old to serve another request.
func (s *Subscriber) sweepFlights(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.flights.sweep(s.now(), localFresh)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// providerOf reads the provider token of a request subject. A token that is
// not a plain name becomes "unknown", so nothing a requester chose beyond a
// plain name reaches our subjects, logs or metric labels.
func providerOf(subject string) (token, name string) {
	token = strings.TrimPrefix(subject, topology.RequestPrefix)
	if isPlain(token, 32, "_-") {
		return token, token
	}
	return token, "unknown"
}
