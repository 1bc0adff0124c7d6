// Package callback serves the providers' result callbacks (Ayopop's) as a
// fast path. A callback carries no signature, so it is never believed: it
// only makes the bridge check the reference with the status API at once,
// and what that check says settles the open requests for it.
package callback

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
)

// MaxBody bounds a callback body; Ayopop's are a few hundred bytes.
const MaxBody = 64 << 10

// Interval is the least time between two confirming checks of one
// reference that callbacks cause: a flood for one reference costs the
// provider at most one call a second.
const Interval = time.Second

// Confirmer checks a reference with the provider now and settles every
// open request for it that the answer settles. It returns what the check
// came to, as a metric label.
type Confirmer interface {
	Confirm(ctx context.Context, provider, reference string) string
}

// Options configure a Handler.
type Options struct {
	Confirmer Confirmer
	// ValidReference says whether a reference is one a request could
	// carry; others are refused without a check.
	ValidReference func(string) bool
	// Timeout bounds one confirming check and the publishes it leads to.
	Timeout time.Duration
	// Workers is the most confirming checks running at once; a callback
	// beyond them is answered 503, which Ayopop retries.
	Workers int
	Log     *slog.Logger
	Metrics *Metrics // nil: counted nowhere
	Now     func() time.Time
}

// Outcomes of a callback, as the metric names them.
const (
	Accepted  = "accepted"  // a confirming check was started
	Coalesced = "coalesced" // another callback's check of the reference is recent
	Malformed = "malformed" // not a callback body, or no valid reference
	TooLarge  = "too_large" // body over MaxBody
	Busy      = "busy"      // every worker busy: 503
	Closed    = "stopping"  // the bridge is shutting down: 503
)

// Handler serves POST /callbacks/ayopop.
type Handler struct {
	o       Options
	mux     *http.ServeMux
	slots   chan struct{}
	running sync.WaitGroup

	mu     sync.Mutex
	closed bool
	recent map[string]time.Time // provider+reference: when its last check started

	m *Metrics
}

// Metrics count callbacks and their confirming checks. They are
// registered, at 0, whether callbacks are on or not, so dashboards and
// alerts see the series.
type Metrics struct {
	received *prometheus.CounterVec
	checks   *prometheus.CounterVec
}

// NewMetrics registers the callback metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_callbacks_total",
			Help: "Provider callbacks received, by what became of them (accepted: a confirming check started).",
		}, []string{"provider", "outcome"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statusbridge_callback_checks_total",
			Help: "Confirming status checks that callbacks caused, by what the check came to.",
		}, []string{"provider", "result"}),
	}
	reg.MustRegister(m.received, m.checks)
	for _, outcome := range []string{Accepted, Coalesced, Malformed, TooLarge, Busy, Closed} {
		m.received.WithLabelValues(ayopop.Name, outcome)
	}
	for _, r := range CheckResults {
		m.checks.WithLabelValues(ayopop.Name, r)
	}
	return m
}

// CheckResults are the labels a Confirmer returns, registered at 0.
var CheckResults = []string{"resolved", "pending", "no_open_request", "check_failed", "held"}

// New returns a Handler; call Close when done.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		o: o, slots: make(chan struct{}, max(o.Workers, 1)),
		recent: map[string]time.Time{},
		m:      o.Metrics,
	}
	if h.m == nil {
		h.m = NewMetrics(prometheus.NewRegistry())
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("POST /callbacks/ayopop", h.ayopop)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close stops accepting callbacks and waits for the checks under way.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.running.Wait()
}

func (h *Handler) ayopop(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.answer(w, ayopop.Name, TooLarge, http.StatusRequestEntityTooLarge)
			return
		}
		h.answer(w, ayopop.Name, Malformed, http.StatusBadRequest)
		return
	}
	cb, err := ayopop.ParseCallback(body)
	if err != nil || (h.o.ValidReference != nil && !h.o.ValidReference(cb.RefNumber)) {
		h.answer(w, ayopop.Name, Malformed, http.StatusBadRequest)
		return
	}
	outcome := h.start(ayopop.Name, cb.RefNumber)
	status := http.StatusOK
	if outcome == Busy || outcome == Closed {
		status = http.StatusServiceUnavailable
	}
	h.o.Log.Debug("callback", "provider", ayopop.Name, "outcome", outcome, "claimed", claimed(cb.Claimed))
	h.answer(w, ayopop.Name, outcome, status)
}

// start begins a confirming check of reference unless one began within
// Interval, and says which.
func (h *Handler) start(provider, reference string) string {
	key := provider + "\x00" + reference
	now := h.o.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return Closed
	}
	if last, ok := h.recent[key]; ok && now.Sub(last) < Interval {
		return Coalesced
	}
	select {
	case h.slots <- struct{}{}:
	default:
		return Busy
	}
	// The map holds only the last second's references: its size is
	// bounded by the callbacks of one second.
	for k, t := range h.recent {
		if now.Sub(t) >= Interval {
			delete(h.recent, k)
		}
	}
	h.recent[key] = now
	h.running.Add(1)
	go func() {
		defer h.running.Done()
		defer func() { <-h.slots }()
		// A check under way finishes when the bridge stops: Close waits
		// for it, and cutting it off would only waste the call.
		ctx, cancel := context.WithTimeout(context.Background(), h.o.Timeout)
		defer cancel()
		result := h.o.Confirmer.Confirm(ctx, provider, reference)
		h.m.checks.WithLabelValues(provider, result).Inc()
	}()
	return Accepted
}

// answer ends a callback with a fixed body: nothing of the request is
// reflected back.
func (h *Handler) answer(w http.ResponseWriter, provider, outcome string, status int) {
	h.m.received.WithLabelValues(provider, outcome).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"outcome":"`+outcome+`"}`+"\n")
}

func claimed(s providers.State) string {
	if s == 0 {
		return "nothing"
	}
	return s.String()
}
