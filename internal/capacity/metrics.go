package capacity

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the capacity metrics of every provider.
type Metrics struct {
	refusals      *prometheus.CounterVec
	limiterWaits  *prometheus.CounterVec
	breakerHeld   *prometheus.CounterVec
	breakerOpened *prometheus.CounterVec
	breakerState  *prometheus.GaugeVec
	// StateErrors counts failed reads and writes of the shared state;
	// Coalesced counts checks answered by another request's call.
	StateErrors *prometheus.CounterVec
	Coalesced   *prometheus.CounterVec
	// PoolBusy counts requests parked because every handler of their
	// provider was busy.
	PoolBusy *prometheus.CounterVec
	reg      prometheus.Registerer
}

// NewMetrics registers the capacity metrics on reg, every provider's
// series at 0.
func NewMetrics(reg prometheus.Registerer, providers []string) *Metrics {
	m := &Metrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_provider_refusals_total",
			Help: "Provider calls refused for their rate (HTTP 429).",
		}, []string{"provider"}),
		limiterWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_limiter_held_total",
			Help: "Checks the rate limit held back: waited for their slot in-process, or parked until it.",
		}, []string{"provider", "how"}),
		breakerHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_breaker_held_total",
			Help: "Checks parked without a call because the provider's circuit breaker was open.",
		}, []string{"provider"}),
		breakerOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_breaker_opened_total",
			Help: "Times this replica opened a provider's circuit breaker.",
		}, []string{"provider"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "statusbridge_breaker_state",
			Help: "A provider's circuit breaker: 0 closed, 1 open, 2 probing.",
		}, []string{"provider"}),
		StateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_shared_state_errors_total",
			Help: "Failed reads and writes of the shared state (budgets, breakers, answers, request checks); the check waits or counts from what it has.",
		}, []string{"provider"}),
		Coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_coalesced_checks_total",
			Help: "Checks answered by another request's call about the same reference, instead of a call of their own.",
		}, []string{"provider"}),
		PoolBusy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_pool_busy_total",
			Help: "Requests parked for about a second because every handler of their provider was busy (slow or hanging calls).",
		}, []string{"provider"}),
		reg: reg,
	}
	reg.MustRegister(m.refusals, m.limiterWaits, m.breakerHeld, m.breakerOpened, m.breakerState, m.StateErrors, m.Coalesced, m.PoolBusy)
	for _, p := range providers {
		m.refusals.WithLabelValues(p)
		m.limiterWaits.WithLabelValues(p, "waited")
		m.limiterWaits.WithLabelValues(p, "parked")
		m.breakerHeld.WithLabelValues(p)
		m.breakerOpened.WithLabelValues(p)
		m.breakerState.WithLabelValues(p)
		m.StateErrors.WithLabelValues(p)
		m.Coalesced.WithLabelValues(p)
		m.PoolBusy.WithLabelValues(p)
	}
	return m
}

// register adds the gate's allowed rate, read when scraped.
func (m *Metrics) register(g *Gate) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "statusbridge_provider_allowed_rate",
		Help:        "Calls per second the bridge allows itself for the provider now, all replicas together (0: no limit).",
		ConstLabels: prometheus.Labels{"provider": g.name},
	}, g.Rate))
}
