package capacity

import (
	"math"
	"time"
)

// Adaptation constants. A refusal cuts the shared rate to what the
// provider took of it (the rate less the share of this replica's calls it
// refused over the last second) and a tenth more (multiplicative
// decrease), at most once a second; from there it climbs
// by a tenth of the cut rate, at least one call per second, each second
// (additive increase). A provider with no rate in force yet gets a tenth
// under what it answered this replica over the last second, then doubles
// each second until the next refusal (a replica sees only its share of
// the answers, so the first estimate is low). After an outage the rate
// also starts low, at a tenth of the limit, and doubles each second (slow
// start), so a recovering provider is not met with a burst.
const (
	decrease            = 0.9
	minRate             = 0.5 // calls per second: the floor of every cut
	recoveryFraction    = 0.1
	unlimitedRecovery   = 10.0 // calls per second a provider with no fixed limit restarts at
	unlimitedAbove      = 10000.0
	adaptationForgotten = 10 * time.Minute // with no fixed limit, a refusal this old no longer caps the rate
	// cutInterval: refusals within a second of a cut are the same overload
	// (providers count their limits per second), so they cut once.
	cutInterval = time.Second
)

// Modes of a bucket.
const (
	modeFixed     = ""           // the configured limit, or none
	modeSlowStart = "slow_start" // ramping up after an outage
	modeBackoff   = "backoff"    // climbing back after a refusal
)

// bucket is a provider's shared call budget, stored as JSON in the
// capacity bucket under rate.<provider>. The budget is a GCRA (generic
// cell rate algorithm) whose whole state is one time, TAT: calls are
// spaced 1/rate apart and may run ahead of that spacing by at most the
// burst. Nothing is held per replica, so a replica that crashes leaves
// nothing behind.
type bucket struct {
	TAT   int64   `json:"tat,omitzero"`   // unix ns: the theoretical arrival time of the next call
	Mode  string  `json:"mode,omitzero"`  // modeFixed, modeSlowStart or modeBackoff
	Rate0 float64 `json:"rate0,omitzero"` // calls per second when Mode began
	T0    int64   `json:"t0,omitzero"`    // unix ns when Mode began
}

// limits are a provider's configured budget.
type limits struct {
	Limit float64 // calls per second across replicas; 0: none fixed
	Burst int     // calls that may run ahead of the spacing (≥ 1)
}

// rate is the calls per second b allows at now; 0 means no limit.
func (b bucket) rate(l limits, now time.Time) float64 {
	since := max(0, now.Sub(time.Unix(0, b.T0)).Seconds())
	var r float64
	switch b.Mode {
	case modeSlowStart:
		r = b.Rate0 * math.Exp2(since)
	case modeBackoff:
		if l.Limit == 0 && since > adaptationForgotten.Seconds() {
			return 0
		}
		r = b.Rate0 + b.climb(l)*since
	default:
		return l.Limit
	}
	if l.Limit > 0 {
		return min(r, l.Limit)
	}
	if r > unlimitedAbove {
		return 0
	}
	return r
}

// climb is how many calls per second the rate gains each second after a
// cut: a tenth of the cut rate, at least one.
func (b bucket) climb(l limits) float64 {
	return max(1, b.Rate0/10)
}

// tolerance is how far ahead of the spacing a call may run: burst-1 calls'
// worth. While slow-starting below the limit there is none.
func (b bucket) tolerance(l limits, r float64) time.Duration {
	if b.Mode == modeSlowStart && (l.Limit == 0 || r < l.Limit) {
		return 0
	}
	burst := float64(l.Burst)
	ref := l.Limit
	if ref == 0 { // no fixed limit: a fifth of a second's worth of the adapted rate
		ref = r
		burst = max(1, math.Floor(r/5))
	}
	return time.Duration((burst - 1) / ref * float64(time.Second))
}

// reserve books the next call at rate r: the call may start at `at`. When
// that is further than maxWait away, nothing is booked and ok is false.
// In any window of one second, calls booked this way number at most
// r + burst.
func (b bucket) reserve(l limits, r float64, now time.Time, maxWait time.Duration) (next bucket, at time.Time, ok bool) {
	spacing := time.Duration(float64(time.Second) / r)
	tat := time.Unix(0, b.TAT)
	at = tat.Add(-b.tolerance(l, r))
	if at.Before(now) {
		at = now
	}
	if at.Sub(now) > maxWait {
		return b, at, false
	}
	next = b
	next.TAT = max(b.TAT, at.UnixNano()) + int64(spacing)
	return next, at, true
}

// refused lowers the rate after the provider refused a call booked at
// callAt. Refusals of calls booked before the last cut, or within a second
// of it, are the same overload, already answered, and change nothing.
// accepted is the calls per second the provider answered this replica
// lately, the estimate when no rate is in force, and refusedShare the share
// of this replica's recent calls it refused.
func (b bucket) refused(l limits, now, callAt time.Time, accepted, refusedShare float64) (bucket, bool) {
	if b.Mode != modeFixed && (callAt.UnixNano() < b.T0 || now.Sub(time.Unix(0, b.T0)) < cutInterval) {
		return b, false
	}
	r := b.rate(l, now) * (1 - min(max(refusedShare, 0), 1))
	b.Mode = modeBackoff
	if r == 0 {
		r = accepted
		b.Mode = modeSlowStart
	}
	b.Rate0 = max(minRate, r*decrease)
	b.T0 = now.UnixNano()
	return b, true
}

// recovered starts the slow start that follows an outage, with no burst
// saved up.
func (b bucket) recovered(l limits, now time.Time) bucket {
	start := unlimitedRecovery
	if l.Limit > 0 {
		start = max(minRate, l.Limit*recoveryFraction)
	}
	return bucket{TAT: now.UnixNano(), Mode: modeSlowStart, Rate0: start, T0: now.UnixNano()}
}
