// Package capacity keeps the bridge within what each provider can take,
// across every replica: a shared call budget (a rate limit, fixed or
// adapted to the provider's refusals) and a shared circuit breaker. Their
// state lives in a JetStream key-value bucket, so replicas coordinate
// through the NATS they already use; each replica watches its providers'
// keys and holds their latest values, and writes with compare-and-swap.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"
)

// Settings are one provider's capacity settings.
type Settings struct {
	// Limit is the provider's budget in calls per second, all replicas
	// together; 0 means none is fixed and the rate adapts to refusals.
	Limit float64
	// Burst is how many calls may run ahead of the spacing 1/Limit: in any
	// sliding second, calls ≤ Limit + Burst.
	Burst int
	// MaxWait is the longest a check waits in-process for its slot; a slot
	// further away parks the request until then.
	MaxWait time.Duration
	Breaker BreakerSettings
}

// DefaultBurst is a fifth of a second's budget, at least 1.
func DefaultBurst(limit float64) int { return max(1, int(limit/5)) }

// Validate reports every problem with s.
func (s Settings) Validate() error {
	var errs []error
	if s.Limit < 0 {
		errs = append(errs, fmt.Errorf("rate limit %v must not be negative", s.Limit))
	}
	if s.Limit > 0 && s.Burst < 1 {
		errs = append(errs, fmt.Errorf("rate burst %d must be at least 1", s.Burst))
	}
	if s.MaxWait <= 0 {
		errs = append(errs, errors.New("limiter wait must be positive"))
	}
	b := s.Breaker
	if b.Failures < 1 {
		errs = append(errs, fmt.Errorf("breaker failures %d must be at least 1", b.Failures))
	}
	if b.Cooldown <= 0 || b.MaxCooldown < b.Cooldown {
		errs = append(errs, fmt.Errorf("breaker cooldown %v must be positive and at most the max cooldown %v", b.Cooldown, b.MaxCooldown))
	}
	if b.ProbeTimeout <= 0 {
		errs = append(errs, errors.New("breaker probe timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Outcome is what became of an admitted call.
type Outcome uint8

const (
	// Answered: the provider answered (any answer, errors such as a
	// refused credential included): it is up.
	Answered Outcome = iota + 1
	// Refused: the provider refused the call for its rate (HTTP 429).
	Refused
	// Failed: 5xx, timeout or connection error: the provider may be down.
	Failed
)

// Ticket is an admitted call.
type Ticket struct {
	At    time.Time // when the call was allowed to start
	Probe bool      // the call probes an open breaker
}

// Gate admits one provider's calls.
type Gate struct {
	name    string
	kv      jetstream.KeyValue
	set     Settings
	lim     limits
	log     *slog.Logger
	m       *Metrics
	now     func() time.Time
	rateKey string
	brkKey  string

	// mu guards the cached shared state and serialises this replica's
	// writes of it, so its own checks do not race each other's swaps.
	mu       sync.Mutex
	rate     bucket
	rateRev  uint64
	brk      breaker
	brkRev   uint64
	failures int // consecutive failed calls seen by this replica
	answered recentCalls
	refused  recentCalls
}

// Open returns the gate of provider name and keeps it current with the
// bucket until ctx ends.
func Open(ctx context.Context, kv jetstream.KeyValue, name string, s Settings, log *slog.Logger, m *Metrics) (*Gate, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	g := &Gate{
		name: name, kv: kv, set: s, lim: limits{Limit: s.Limit, Burst: s.Burst},
		log: log.With("provider", name), m: m, now: time.Now,
		rateKey: "rate." + name, brkKey: "breaker." + name,
	}
	// The watcher delivers each key's current value first, then changes.
	w, err := kv.Watch(ctx, "*."+name)
	if err != nil {
		return nil, fmt.Errorf("watch capacity of %s: %w", name, err)
	}
	for e := range w.Updates() {
		if e == nil {
			break // the current values are in
		}
		g.apply(e)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e != nil {
				g.mu.Lock()
				g.apply(e)
				g.mu.Unlock()
			}
		}
	}()
	m.register(g)
	return g, nil
}

// apply takes a watched value, unless this replica already holds a newer
// one (its own write).
func (g *Gate) apply(e jetstream.KeyValueEntry) {
	deleted := e.Operation() != jetstream.KeyValuePut
	switch e.Key() {
	case g.rateKey:
		if e.Revision() <= g.rateRev {
			return
		}
		var b bucket
		if !deleted && json.Unmarshal(e.Value(), &b) != nil {
			g.log.Error("unreadable shared rate state; treating it as unset", "key", e.Key())
			b = bucket{}
		}
		g.rate, g.rateRev = b, e.Revision()
	case g.brkKey:
		if e.Revision() <= g.brkRev {
			return
		}
		var b breaker
		if !deleted && json.Unmarshal(e.Value(), &b) != nil {
			g.log.Error("unreadable shared breaker state; treating it as closed", "key", e.Key())
			b = breaker{}
		}
		g.setBreaker(b, e.Revision())
	}
}

// Admit asks to call the provider now. When the call may go, it waits
// until its slot (at most MaxWait) and returns its ticket with wait 0.
// Otherwise it returns how long the check should be parked: the breaker
// is open, or the budget is booked beyond MaxWait.
func (g *Gate) Admit(ctx context.Context) (t Ticket, wait time.Duration, err error) {
	g.mu.Lock()
	t, wait, err = g.admit(ctx)
	g.mu.Unlock()
	if err != nil || wait > 0 {
		return t, wait, err
	}
	if d := t.At.Sub(g.now()); d > 0 {
		g.m.limiterWaits.WithLabelValues(g.name, "waited").Inc()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return t, 0, ctx.Err()
		case <-timer.C:
		}
	}
	return t, 0, nil
}

// swapTries bounds how often one admission retries a lost swap. Replicas
// starting together all write at once; a lost swap means another replica
// booked a slot, so retrying is progress, not a livelock.
const swapTries = 64

func (g *Gate) admit(ctx context.Context) (Ticket, time.Duration, error) {
	for range swapTries { // a lost swap is retried against the newer state
		now := g.now()
		ok, probe, wait := g.brk.allows(now)
		if !ok {
			g.m.breakerHeld.WithLabelValues(g.name).Inc()
			return Ticket{}, wait, nil
		}
		t := Ticket{At: now, Probe: probe}
		if r := g.rate.rate(g.lim, now); r > 0 {
			next, at, ok := g.rate.reserve(g.lim, r, now, g.set.MaxWait)
			if !ok {
				g.m.limiterWaits.WithLabelValues(g.name, "parked").Inc()
				return Ticket{}, at.Sub(now), nil
			}
			rev, err := g.swap(ctx, g.rateKey, next, g.rateRev)
			if errors.Is(err, errConflict) {
				g.refresh(ctx, g.rateKey)
				continue
			}
			if err != nil {
				return Ticket{}, 0, err
			}
			g.rate, g.rateRev = next, rev
			t.At = at
		}
		if probe {
			next := g.brk.claimProbe(g.set.Breaker, now)
			rev, err := g.swap(ctx, g.brkKey, next, g.brkRev)
			if errors.Is(err, errConflict) {
				g.refresh(ctx, g.brkKey) // another replica probes; the slot booked above goes unused
				continue
			}
			if err != nil {
				return Ticket{}, 0, err
			}
			g.setBreaker(next, rev)
			g.log.Info("circuit breaker probing the provider")
		}
		return t, 0, nil
	}
	return Ticket{}, 0, fmt.Errorf("capacity of %s: the shared state kept changing under this replica", g.name)
}

// Done records what became of an admitted call.
func (g *Gate) Done(ctx context.Context, t Ticket, o Outcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if o == Failed {
		g.failures++
		if t.Probe || (g.brk.State == stateClosed && g.failures >= g.set.Breaker.Failures) {
			g.open(ctx)
		}
		return
	}
	g.failures = 0
	if o == Answered {
		g.answered.add(g.now())
	}
	if o == Refused {
		g.refused.add(g.now())
		g.m.refusals.WithLabelValues(g.name).Inc()
		g.cut(ctx, t.At)
	}
	if t.Probe {
		g.close(ctx)
	}
}

// cut lowers the shared rate after a refusal of a call made at callAt.
func (g *Gate) cut(ctx context.Context, callAt time.Time) {
	next, changed, err := g.changeRate(ctx, func(now time.Time) (bucket, bool) {
		answered, refused := g.answered.perSecond(now), g.refused.perSecond(now)
		return g.rate.refused(g.lim, now, callAt, answered, refused/max(answered+refused, 1))
	})
	switch {
	case err != nil:
		g.log.Warn("could not lower the shared rate", "err", err)
	case changed:
		g.log.Info("provider refused calls for their rate; lowering the rate", "rate", math.Round(next.Rate0*10)/10)
	}
}

func (g *Gate) open(ctx context.Context) {
	next, changed, err := g.changeBreaker(ctx, func(now time.Time) (breaker, bool) {
		if g.brk.State == stateOpen && now.Before(time.Unix(0, g.brk.Until)) {
			return g.brk, false // another replica opened it meanwhile
		}
		return g.brk.opened(g.set.Breaker, now), true
	})
	switch {
	case err != nil:
		g.log.Warn("could not open the circuit breaker", "err", err)
	case changed:
		g.m.breakerOpened.WithLabelValues(g.name).Inc()
		g.log.Warn("circuit breaker opened: the provider keeps failing; its checks are parked without calls",
			"consecutive_failures", g.failures, "cooldown", time.Duration(next.Cooldown))
	}
}

// close closes the breaker after a probe answered, and starts the rate's
// slow start from a tenth of the limit.
func (g *Gate) close(ctx context.Context) {
	if _, _, err := g.changeBreaker(ctx, func(time.Time) (breaker, bool) { return breaker{}, g.brk.State != stateClosed }); err != nil {
		g.log.Warn("could not close the circuit breaker", "err", err)
		return
	}
	g.log.Info("circuit breaker closed: the provider answers again; ramping up")
	if _, _, err := g.changeRate(ctx, func(now time.Time) (bucket, bool) { return g.rate.recovered(g.lim, now), true }); err != nil {
		g.log.Warn("could not start the rate's slow start", "err", err)
	}
}

// changeRate writes next's bucket until a swap succeeds against the latest
// shared value; next says false when that value needs no change.
func (g *Gate) changeRate(ctx context.Context, next func(now time.Time) (bucket, bool)) (bucket, bool, error) {
	return change(ctx, g, g.rateKey, &g.rate, &g.rateRev, next, func(b bucket, rev uint64) { g.rate, g.rateRev = b, rev })
}

// changeBreaker is changeRate for the breaker.
func (g *Gate) changeBreaker(ctx context.Context, next func(now time.Time) (breaker, bool)) (breaker, bool, error) {
	return change(ctx, g, g.brkKey, &g.brk, &g.brkRev, next, g.setBreaker)
}

func change[T any](ctx context.Context, g *Gate, key string, cur *T, rev *uint64, next func(now time.Time) (T, bool), set func(T, uint64)) (T, bool, error) {
	for range swapTries {
		v, changed := next(g.now())
		if !changed {
			return *cur, false, nil
		}
		r, err := g.swap(ctx, key, v, *rev)
		if errors.Is(err, errConflict) {
			g.refresh(ctx, key)
			continue
		}
		if err != nil {
			return *cur, false, err
		}
		set(v, r)
		return v, true, nil
	}
	return *cur, false, fmt.Errorf("capacity of %s: the shared state kept changing under this replica", g.name)
}

func (g *Gate) setBreaker(b breaker, rev uint64) {
	g.brk, g.brkRev = b, rev
	g.m.breakerState.WithLabelValues(g.name).Set(b.stateValue())
}

// Rate is the calls per second the gate allows now; 0 means no limit.
func (g *Gate) Rate() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rate.rate(g.lim, g.now())
}

var errConflict = errors.New("shared state changed")

// swap writes v under key if its revision is still rev (0: absent).
func (g *Gate) swap(ctx context.Context, key string, v any, rev uint64) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if rev == 0 {
		rev, err = g.kv.Create(ctx, key, b)
	} else {
		rev, err = g.kv.Update(ctx, key, b, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, errConflict
	case err != nil:
		g.m.StateErrors.WithLabelValues(g.name).Inc()
		return 0, fmt.Errorf("capacity state of %s: %w", g.name, err)
	}
	return rev, nil
}

// refresh reads key's latest value after a lost swap.
func (g *Gate) refresh(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e, err := g.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// Absent or deleted: Create takes it from here.
		if key == g.rateKey {
			g.rate, g.rateRev = bucket{}, 0
		} else {
			g.setBreaker(breaker{}, 0)
		}
	case err != nil:
		g.m.StateErrors.WithLabelValues(g.name).Inc()
	default:
		g.apply(e)
	}
}

// recentCalls counts this replica's calls of one outcome over the last
// second, in tenths.
type recentCalls struct {
	slot  [10]int
	stamp [10]int64 // which tenth of a second each slot counts
}

func (c *recentCalls) add(t time.Time) {
	tenth := t.UnixMilli() / 100
	i := tenth % 10
	if c.stamp[i] != tenth {
		c.stamp[i], c.slot[i] = tenth, 0
	}
	c.slot[i]++
}

func (c *recentCalls) perSecond(now time.Time) float64 {
	tenth := now.UnixMilli() / 100
	n := 0
	for i, s := range c.stamp {
		if tenth-s < 10 {
			n += c.slot[i]
		}
	}
	// Not extrapolated over a replica's first second: providers count
	// their limits per second, and its first tenth can take a second's
	// worth of answers.
	return float64(n)
}
