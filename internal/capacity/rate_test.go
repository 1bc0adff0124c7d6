package capacity

import (
	"fmt"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// book reserves calls as fast as the bucket lets them go, for span, and
// returns when each call starts.
func book(l limits, b bucket, from time.Time, span time.Duration) []time.Time {
	var starts []time.Time
	now := from
	for now.Before(from.Add(span)) {
		r := b.rate(l, now)
		next, at, ok := b.reserve(l, r, now, time.Hour)
		if !ok {
			panic("a reservation within an hour was refused")
		}
		b = next
		if !at.Before(from.Add(span)) {
			break
		}
		starts = append(starts, at)
		now = at
	}
	return starts
}

// maxInAnySecond is the most calls that start within one sliding second.
func maxInAnySecond(starts []time.Time) int {
	most, j := 0, 0
	for i := range starts {
		for starts[i].Sub(starts[j]) >= time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

func TestFixedLimitHoldsInEverySlidingSecond(t *testing.T) {
	for _, tc := range []struct {
		limit float64
		burst int
	}{{45, 9}, {45, 1}, {1, 1}, {100, 20}, {2.5, 1}} {
		t.Run(fmt.Sprintf("limit %v burst %d", tc.limit, tc.burst), func(t *testing.T) {
			l := limits{Limit: tc.limit, Burst: tc.burst}
			starts := book(l, bucket{}, t0, 10*time.Second)
			if got, most := maxInAnySecond(starts), int(tc.limit)+tc.burst; got > most {
				t.Errorf("%d calls in one sliding second, want at most limit + burst = %d", got, most)
			}
			// Over ten seconds the budget is used, not just respected.
			if want := int(10*tc.limit) + tc.burst - 1; len(starts) < want {
				t.Errorf("%d calls in 10s, want at least %d", len(starts), want)
			}
		})
	}
}

func TestReserveParksBeyondMaxWait(t *testing.T) {
	l := limits{Limit: 10, Burst: 1}
	var b bucket
	for range 10 { // a second's budget, booked at once
		var ok bool
		b, _, ok = b.reserve(l, 10, t0, time.Second)
		if !ok {
			t.Fatal("a slot within a second was refused")
		}
	}
	next, at, ok := b.reserve(l, 10, t0, 999*time.Millisecond)
	if ok {
		t.Fatalf("a slot %v away was booked with a 999ms wait limit", at.Sub(t0))
	}
	if at.Sub(t0) != time.Second || next != b {
		t.Errorf("parked until %v and changed the bucket: want 1s and no change", at.Sub(t0))
	}
}

func TestRefusalCutsTheRateOnceAndItClimbsBack(t *testing.T) {
	l := limits{Limit: 50, Burst: 10}
	b, changed := bucket{}.refused(l, t0, t0.Add(-100*time.Millisecond), 12, 0)
	if !changed || b.rate(l, t0) != 45 {
		t.Fatalf("after a refusal at the limit of 50/s the rate is %v, want 45", b.rate(l, t0))
	}
	// A call booked before the cut was part of the same overload.
	if _, changed := b.refused(l, t0.Add(50*time.Millisecond), t0.Add(-time.Millisecond), 0, 0); changed {
		t.Error("a refusal of a call made before the cut cut the rate again")
	}
	// So was one booked after it but within the second.
	if _, changed := b.refused(l, t0.Add(900*time.Millisecond), t0.Add(500*time.Millisecond), 0, 0); changed {
		t.Error("a refusal within a second of the cut cut the rate again")
	}
	// Later it is new evidence: a tenth off the rate then in force.
	later := t0.Add(2 * time.Second)
	if again, changed := b.refused(l, later, t0.Add(1500*time.Millisecond), 0, 0); !changed || math.Abs(again.Rate0-0.9*b.rate(l, later)) > 1e-9 {
		t.Errorf("a refusal after the cut: changed %v, rate %v, want %v", changed, again.Rate0, 0.9*b.rate(l, later))
	}
	// Additive increase: a tenth of the cut rate per second, capped at the limit.
	for _, tc := range []struct {
		after time.Duration
		want  float64
	}{{time.Second, 49.5}, {2 * time.Second, 50}} {
		if got := b.rate(l, t0.Add(tc.after)); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%v after the cut: rate %v, want %v", tc.after, got, tc.want)
		}
	}
}

func TestSparseRefusalsKeepTheRateSteady(t *testing.T) {
	// A refusal every few seconds (a provider that refuses some
	// references whatever the load) must not drive the rate down to
	// nothing: each cut takes a tenth, each second gives a tenth back.
	l := limits{Limit: 100, Burst: 20}
	var b bucket
	for i := range 30 {
		now := t0.Add(time.Duration(2*i) * time.Second)
		b, _ = b.refused(l, now, now, 0, 0.01)
	}
	if r := b.rate(l, t0.Add(60*time.Second)); r < 90 {
		t.Errorf("after a refusal every 2s for a minute the rate is %v/s of 100, want it to hold near the limit", r)
	}
}

func TestWithNoFixedLimitARefusalSetsARateFromWhatWasAnswered(t *testing.T) {
	l := limits{}
	if r := (bucket{}).rate(l, t0); r != 0 {
		t.Fatalf("no limit and no refusal: rate %v, want 0 (none)", r)
	}
	b, _ := bucket{}.refused(l, t0, t0, 80, 0.5)
	if got := b.rate(l, t0); got != 72 {
		t.Errorf("after a refusal with 80 calls/s answered the rate is %v, want 72", got)
	}
	// One replica sees its share of the answers: the rate doubles each
	// second until the next refusal finds the provider's capacity.
	if got := b.rate(l, t0.Add(2*time.Second)); got != 288 {
		t.Errorf("2s after the first refusal the rate is %v, want 288", got)
	}
	if got := b.rate(l, t0.Add(time.Minute)); got != 0 {
		t.Errorf("a minute without refusals the rate is %v, want 0 (no limit again)", got)
	}
	// The next refusal cuts what is then in force to what the provider
	// took of it: here it refused a quarter of the calls.
	c, _ := b.refused(l, t0.Add(2*time.Second), t0.Add(2*time.Second), 80, 0.25)
	if got := c.rate(l, t0.Add(2*time.Second)); math.Abs(got-194.4) > 1e-9 || c.Mode != modeBackoff {
		t.Errorf("a second refusal: rate %v mode %q, want 194.4 (288 × 0.75 × 0.9) climbing additively", got, c.Mode)
	}
	if c.rate(l, t0.Add(3*time.Second)) == 0 || c.rate(l, t0.Add(time.Hour)) != 0 {
		t.Error("a refusal should cap the rate while it is recent and be forgotten after the adaptation's lifetime")
	}
}

func TestRecoveryStartsSlowWithoutBurst(t *testing.T) {
	l := limits{Limit: 50, Burst: 10}
	b := bucket{}.recovered(l, t0)
	starts := book(l, b, t0, 5*time.Second)
	perSecond := make([]int, 5)
	for _, s := range starts {
		perSecond[int(s.Sub(t0)/time.Second)]++
	}
	// 5/s doubling each second: about 7, 14, 29, 50, 50 (the last ones at
	// the limit, with the burst allowed again).
	if perSecond[0] > 8 {
		t.Errorf("first second after recovery: %d calls, want a slow start (≤ 8)", perSecond[0])
	}
	for i := 1; i < 3; i++ {
		if perSecond[i] <= perSecond[i-1] {
			t.Errorf("calls per second after recovery %v do not grow", perSecond)
		}
	}
	if got := maxInAnySecond(starts); got > 60 {
		t.Errorf("%d calls in one second during the ramp, want ≤ limit + burst", got)
	}
}

func TestBreakerOpensProbesAndBacksOff(t *testing.T) {
	s := BreakerSettings{Failures: 5, Cooldown: 2 * time.Second, MaxCooldown: 5 * time.Second, ProbeTimeout: 10 * time.Second}
	var b breaker
	if ok, probe, _ := b.allows(t0); !ok || probe {
		t.Fatal("a closed breaker must allow calls without probing")
	}
	b = b.opened(s, t0)
	if ok, _, wait := b.allows(t0.Add(time.Second)); ok || wait != time.Second {
		t.Errorf("open breaker 1s in: ok %v wait %v, want parked for 1s", ok, wait)
	}
	ok, probe, _ := b.allows(t0.Add(2 * time.Second))
	if !ok || !probe {
		t.Fatalf("after the cooldown one probe should be allowed: ok %v probe %v", ok, probe)
	}
	b = b.claimProbe(s, t0.Add(2*time.Second))
	if ok, _, wait := b.allows(t0.Add(3 * time.Second)); ok || wait != probeRecheck {
		t.Errorf("while probing: ok %v wait %v, want parked for %v, to look again once the probe answered", ok, wait, probeRecheck)
	}
	if ok, probe, _ := b.allows(t0.Add(12 * time.Second)); !ok || !probe {
		t.Error("a probe that never answered (its replica died) must not hold the breaker past its timeout")
	}
	for i, want := range []time.Duration{4 * time.Second, 5 * time.Second, 5 * time.Second} {
		b = b.opened(s, t0)
		if got := time.Duration(b.Cooldown); got != want {
			t.Errorf("failed probe %d: cooldown %v, want %v", i+1, got, want)
		}
	}
}
