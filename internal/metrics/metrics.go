// Package metrics owns the bridge's Prometheus catalogue: every metric's
// name, labels and meaning are defined here, once, and documented in the
// README. Label values are bounded: providers are the known names or
// "unknown", outcomes and reasons come from fixed sets, and no label value
// is empty. The counters' series whose label values are known in advance
// are exported at 0 from the start, so that a rate over them is defined
// and an alert on their increase fires on the first event.
package metrics

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/statusbridge/statusbridge/internal/publisher"
)

// Label values known in advance.
var (
	// Outcomes are the checks metric's outcomes (see the subscriber's
	// outcomeLabel): a provider's answer or the cause of a failed check.
	Outcomes = []string{
		"success", "failed", "pending", "not_found",
		"transport", "unavailable", "rate_limited", "auth_rejected", "bad_signature",
		"bad_response", "unknown_code", "protocol", "rejected", "http_status",
	}
	// DeadLetterReasons are the subscriber's DeadLetter* reasons.
	DeadLetterReasons = []string{"too_large", "invalid_json", "missing_request_id", "invalid_request_id"}
	// ConsumeRestartReasons are why the pull subscription is re-created.
	ConsumeRestartReasons = []string{"no_heartbeat", "consumer_gone"}
	// Published are the publish errors metric's "what": an event or a dead
	// letter.
	Published = []string{"event", "deadletter"}
)

// ReasonNone is the events metric's reason of a success, which has none.
const ReasonNone = "none"

// ReasonLabel is an event's reason as the events metric labels it:
// ReasonNone for a success, which has no reason.
func ReasonLabel(reason string) string {
	if reason == "" {
		return ReasonNone
	}
	return reason
}

// eventReasons are the reasons each status is published with, for a
// provider the bridge implements; a request naming another provider, or
// no provider name at all ("unknown"), can only be rejected.
var (
	eventReasons = map[string][]string{
		publisher.StatusSuccess:  {ReasonNone},
		publisher.StatusFailed:   {publisher.ReasonProviderFailed, publisher.ReasonNotFound},
		publisher.StatusExpired:  {publisher.ReasonDeadline, publisher.ReasonNotFound, publisher.ReasonAuthRejected, publisher.ReasonBadSignature, publisher.ReasonCancelled},
		publisher.StatusRejected: {publisher.ReasonInvalidRequest, publisher.ReasonProviderNotConfigured},
	}
	unknownEventReasons = map[string][]string{
		publisher.StatusRejected: {publisher.ReasonInvalidRequest, publisher.ReasonUnknownProvider},
	}
)

// Metrics holds the bridge's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Deliveries      *prometheus.CounterVec   // provider
	Checks          *prometheus.CounterVec   // provider, outcome
	CheckDuration   *prometheus.HistogramVec // provider
	Events          *prometheus.CounterVec   // provider, status, reason
	EventDuplicates *prometheus.CounterVec   // provider
	PublishErrors   *prometheus.CounterVec   // what
	DeadLetters     *prometheus.CounterVec   // reason
	Resolution      *prometheus.HistogramVec // provider, status
	Attempts        *prometheus.HistogramVec // provider, status
	// InFlight counts the requests this replica is handling; the
	// statusbridge_inflight gauge reads it when scraped, so a request
	// costs one atomic add each way instead of a gauge update.
	InFlight         atomic.Int64
	Parked           prometheus.Gauge
	ParkedLimit      prometheus.Gauge
	MaxAckPending    prometheus.Gauge
	Backlog          prometheus.Gauge
	ConsumeRestarts  *prometheus.CounterVec // reason
	Ready            prometheus.Gauge
	NATSReconnects   prometheus.Counter
	NATSDisconnects  prometheus.Counter
	ConsumerInfoErrs prometheus.Counter
}

// New registers the catalogue, the Go runtime and process collectors, and a
// build-info gauge on a new registry. The counters' series that name no
// provider, or provider "unknown", start at 0; AddProviders starts those
// of the providers the bridge implements.
func New(version string) *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		Registry: r,
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_deliveries_total",
			Help: "Request deliveries received from JetStream (first deliveries and scheduled re-checks).",
		}, []string{"provider"}),
		Checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_checks_total",
			Help: "Provider status checks by outcome: success, failed, pending, not_found, or the failure cause (transport, unavailable, rate_limited, auth_rejected, bad_signature, bad_response, unknown_code, protocol, rejected, http_status).",
		}, []string{"provider", "outcome"}),
		CheckDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "statusbridge_check_duration_seconds",
			Help:    "Duration of one provider status check (one HTTP exchange).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_events_total",
			Help: "status.resolved events acknowledged by JetStream, by status and reason (none for success).",
		}, []string{"provider", "status", "reason"}),
		EventDuplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_event_duplicates_total",
			Help: "Event publishes JetStream reported as duplicates of an earlier publish (a redelivery re-published the same event id).",
		}, []string{"provider"}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_publish_errors_total",
			Help: "Publishes that JetStream did not acknowledge (the request is retried), by what was published: event or deadletter.",
		}, []string{"what"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_deadletters_total",
			Help: "Requests too broken to answer, moved to status.deadletter.<provider>, by reason.",
		}, []string{"reason"}),
		Resolution: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "statusbridge_resolution_seconds",
			Help:    "Time from the request's publish to its event's publish.",
			Buckets: []float64{.05, .1, .5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}, []string{"provider", "status"}),
		Attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "statusbridge_attempts",
			Help:    "Answered provider checks that served a request (shared ones included) by the time its event was published.",
			Buckets: []float64{0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89},
		}, []string{"provider", "status"}),
		Parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "statusbridge_parked",
			Help: "Requests waiting between checks, consumer-wide (JetStream ack-pending minus this replica's in-flight work), sampled.",
		}),
		ParkedLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "statusbridge_parked_limit",
			Help: "BRIDGE_MAX_PENDING: requests that may wait between checks at once, consumer-wide.",
		}),
		MaxAckPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "statusbridge_max_ack_pending",
			Help: "The consumer's MaxAckPending: when ack-pending reaches it, JetStream delivers nothing new to any replica.",
		}),
		Backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "statusbridge_backlog",
			Help: "Requests in the stream not yet delivered to any replica (the consumer's num_pending): work that is due now. Scale on this, not on ack-pending, which counts parked requests.",
		}),
		ConsumeRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_consume_restarts_total",
			Help: "Times the pull consumer's subscription was re-created, by reason (no_heartbeat, consumer_gone).",
		}, []string{"reason"}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "statusbridge_ready",
			Help: "1 when NATS is connected and the consumer is bound and consuming.",
		}),
		NATSReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statusbridge_nats_reconnects_total",
			Help: "Reconnections to NATS.",
		}),
		NATSDisconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statusbridge_nats_disconnects_total",
			Help: "Disconnections from NATS.",
		}),
		ConsumerInfoErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statusbridge_consumer_info_errors_total",
			Help: "Failed samples of the consumer's state (parked, backlog).",
		}),
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "statusbridge_inflight",
		Help: "Requests being handled by this replica right now.",
	}, func() float64 { return float64(m.InFlight.Load()) })
	for _, c := range []prometheus.Collector{
		m.Deliveries, m.Checks, m.CheckDuration, m.Events, m.EventDuplicates, m.PublishErrors, m.DeadLetters,
		m.Resolution, m.Attempts, inFlight, m.Parked, m.ParkedLimit, m.MaxAckPending, m.Backlog,
		m.ConsumeRestarts, m.Ready, m.NATSReconnects, m.NATSDisconnects, m.ConsumerInfoErrs,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "statusbridge_build_info",
		Help:        "Always 1; the version label is the build's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	f(build)
	for _, what := range Published {
		m.PublishErrors.WithLabelValues(what)
	}
	for _, reason := range DeadLetterReasons {
		m.DeadLetters.WithLabelValues(reason)
	}
	for _, reason := range ConsumeRestartReasons {
		m.ConsumeRestarts.WithLabelValues(reason)
	}
	m.addProvider("unknown", unknownEventReasons)
	return m
}

// AddProviders starts the counters' series of the named providers (the
// ones the bridge implements, configured or not) at 0: deliveries, checks
// by outcome, events by status and reason, duplicates. Adding a provider
// twice changes nothing.
func (m *Metrics) AddProviders(names ...string) {
	for _, p := range names {
		m.addProvider(p, eventReasons)
		for _, outcome := range Outcomes {
			m.Checks.WithLabelValues(p, outcome)
		}
	}
}

func (m *Metrics) addProvider(p string, reasons map[string][]string) {
	m.Deliveries.WithLabelValues(p)
	m.EventDuplicates.WithLabelValues(p)
	for status, rs := range reasons {
		for _, reason := range rs {
			m.Events.WithLabelValues(p, status, reason)
		}
	}
}

// Children caches the children of a metric vector by their label values.
// A vector finds a child by hashing and checking every value on each
// call, and the bridge's path makes several such calls per request; this
// is one map read under a read lock.
type Children[T any] struct {
	with func(...string) T
	mu   sync.RWMutex
	m    map[[3]string]T
}

// NewChildren caches the children with returns, e.g.
// NewChildren(vec.WithLabelValues), for vectors of up to three labels.
func NewChildren[T any](with func(...string) T) *Children[T] {
	return &Children[T]{with: with, m: map[[3]string]T{}}
}

// With returns the child of values, as the vector's WithLabelValues
// would, creating it on first use: label values must still be bounded.
func (c *Children[T]) With(values ...string) T {
	var key [3]string
	if len(values) > len(key) {
		panic("metrics: Children holds vectors of at most three labels")
	}
	copy(key[:], values)
	c.mu.RLock()
	child, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return child
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if child, ok = c.m[key]; !ok {
		child = c.with(slices.Clone(values)...)
		c.m[key] = child
	}
	return child
}
