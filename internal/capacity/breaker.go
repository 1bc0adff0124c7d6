package capacity

import "time"

// Breaker states as stored and exported.
const (
	stateClosed  = ""        // calls flow
	stateOpen    = "open"    // no calls until Until, then one probe
	stateProbing = "probing" // one replica's probe is out; no other calls until it answers or Until
)

// breaker is a provider's shared circuit breaker, stored as JSON in the
// capacity bucket under breaker.<provider>. Failures are counted by each
// replica on its own (consecutive ones only); the first to reach the
// threshold opens the breaker for everyone.
type breaker struct {
	State    string `json:"state,omitzero"`
	Until    int64  `json:"until,omitzero"`    // unix ns
	Cooldown int64  `json:"cooldown,omitzero"` // ns: how long the last opening lasted
}

// BreakerSettings tune a provider's circuit breaker.
type BreakerSettings struct {
	// Failures is how many consecutive failed calls (5xx, timeouts,
	// connection errors) one replica sees before it opens the breaker.
	Failures int
	// Cooldown is the first open period; each failed probe doubles it, up
	// to MaxCooldown.
	Cooldown    time.Duration
	MaxCooldown time.Duration
	// ProbeTimeout is how long a probe may take before another replica may
	// probe instead (the probing replica may have died).
	ProbeTimeout time.Duration
}

// probeRecheck is how soon a check held by another replica's probe looks
// again: the probe answers within its call's latency, and a probe's
// timeout (a call's timeout and more) is far longer than that.
const probeRecheck = time.Second

// allows reports whether a call may go now; when it may not, wait says for
// how long. A breaker whose open period ended allows one probe: the caller
// must claim it (claimProbe) before calling.
func (b breaker) allows(now time.Time) (ok, probe bool, wait time.Duration) {
	if b.State == stateClosed {
		return true, false, 0
	}
	until := time.Unix(0, b.Until)
	if now.Before(until) {
		if b.State == stateProbing {
			return false, false, min(until.Sub(now), probeRecheck)
		}
		return false, false, until.Sub(now)
	}
	return true, true, 0
}

func (b breaker) claimProbe(s BreakerSettings, now time.Time) breaker {
	b.State = stateProbing
	b.Until = now.Add(s.ProbeTimeout).UnixNano()
	return b
}

// opened is b after failure: at the threshold a closed breaker opens for
// Cooldown; a failed probe reopens it for twice the last period.
func (b breaker) opened(s BreakerSettings, now time.Time) breaker {
	d := s.Cooldown
	if b.State != stateClosed && b.Cooldown > 0 {
		d = min(2*time.Duration(b.Cooldown), s.MaxCooldown)
	}
	return breaker{State: stateOpen, Until: now.Add(d).UnixNano(), Cooldown: int64(d)}
}

// stateValue is the breaker_state metric's value.
func (b breaker) stateValue() float64 {
	switch b.State {
	case stateOpen:
		return 1
	case stateProbing:
		return 2
	}
	return 0
}
