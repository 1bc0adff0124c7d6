package daemon_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// capacityConfig is a schedule slow enough that the rate limit, not the
// schedule, decides when checks go.
func capacityConfig(c *config.Config) {
	c.LogLevel = "info"
	c.Backoff.Initial, c.Backoff.Max, c.Backoff.Jitter = 200*time.Millisecond, time.Second, 0.2
}

// TestReplicasShareTheRateLimit runs three replicas against a provider
// that allows 25 calls a second and answers 250 ms late, with the budget
// set under it: the provider refuses nothing and never sees more than
// limit + burst calls in a second, and the budget is used.
func TestReplicasShareTheRateLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, capacityConfig, func(c *config.Config) { c.IAK.Rate.Limit = 20 })
	if err := w.Sim.SetProfile(sim.IAK, sim.Profile{Latency: 250 * time.Millisecond, RateLimit: 25}); err != nil {
		t.Fatal(err)
	}
	w.Provision()
	const n = 60
	var ids []string
	for i := range n {
		ids = append(ids, w.Request("iak", fmt.Sprintf("rl-%02d", i), fmt.Sprintf("pending,success#rl-%02d", i), ""))
	}
	start := time.Now()
	for range 3 {
		w.StartBridge()
	}
	got := w.WaitEvents(60*time.Second, ids...)
	took := time.Since(start)
	for _, id := range ids {
		if d := got[id].Event.Data; d.Status != publisher.StatusSuccess || d.Attempts != 2 {
			t.Errorf("event %s: %s after %d attempts", id, d.Status, d.Attempts)
		}
	}
	st := w.Sim.Stats(sim.IAK)
	t.Logf("%d calls in %v, busiest second %d, refused %d", st.Calls, took.Round(time.Millisecond), st.MaxCallsPerSecond, st.Refused)
	if st.Refused != 0 {
		t.Errorf("the provider refused %d calls under a budget below its limit", st.Refused)
	}
	if most := 20 + 4; st.MaxCallsPerSecond > most {
		t.Errorf("%d calls in one second, want at most limit + burst = %d", st.MaxCallsPerSecond, most)
	}
	// 120 calls at 20/s take 6 s; much longer means the budget went unused.
	if took > 15*time.Second {
		t.Errorf("resolving %d requests (%d calls) at 20/s took %v", n, st.Calls, took)
	}
}

// TestRefusalsAdaptTheRate has no fixed limit: the provider's 429s lower
// the rate the bridge uses, most calls are answered, and a refused check
// costs no step of its schedule.
func TestRefusalsAdaptTheRate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, capacityConfig)
	if err := w.Sim.SetProfile(sim.IAK, sim.Profile{Latency: 50 * time.Millisecond, RateLimit: 30}); err != nil {
		t.Fatal(err)
	}
	w.Provision()
	const n = 200
	var ids []string
	for i := range n {
		ids = append(ids, w.Request("iak", fmt.Sprintf("ad-%03d", i), fmt.Sprintf("pending,success#ad-%03d", i), ""))
	}
	b := w.StartBridge()
	got := w.WaitEvents(90*time.Second, ids...)
	for _, id := range ids {
		// Refusals are not answers: each request was answered twice.
		if d := got[id].Event.Data; d.Status != publisher.StatusSuccess || d.Attempts != 2 {
			t.Errorf("event %s: %s after %d attempts", id, d.Status, d.Attempts)
		}
	}
	st := w.Sim.Stats(sim.IAK)
	t.Logf("%d calls, %d refused, busiest second %d", st.Calls, st.Refused, st.MaxCallsPerSecond)
	if st.Refused*4 > st.Calls {
		t.Errorf("%d of %d calls refused: the rate did not adapt", st.Refused, st.Calls)
	}
	if r := b.Metric(t, `statusbridge_provider_refusals_total{provider="iak"}`); int(r) != st.Refused {
		t.Errorf("statusbridge_provider_refusals_total = %v, the provider refused %d", r, st.Refused)
	}
}

// TestOneReferenceAskedManyTimes floods the bridge with requests for one
// reference: they share one check per step of the schedule, and each gets
// its own event with the checks that served it.
func TestOneReferenceAskedManyTimes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) {
		c.LogLevel = "info"
		c.Backoff.Initial, c.Backoff.Max, c.Backoff.Jitter = 300*time.Millisecond, 300*time.Millisecond, 0.2
	})
	if err := w.Sim.SetProfile(sim.IAK, sim.Profile{Latency: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	const ref = "pending,pending,success#flood"
	w.Provision()
	const n = 300
	var ids []string
	for i := range n {
		ids = append(ids, w.Request("iak", fmt.Sprintf("flood-%03d", i), ref, fmt.Sprintf(`,"metadata":{"i":"%d"}`, i)))
	}
	b := w.StartBridge()
	got := w.WaitEvents(60*time.Second, ids...)
	for i, id := range ids {
		d := got[id].Event.Data
		if d.Status != publisher.StatusSuccess || d.Metadata["i"] != fmt.Sprint(i) || d.RequestID != fmt.Sprintf("flood-%03d", i) {
			t.Errorf("event %s: %s for %s with metadata %v", id, d.Status, d.RequestID, d.Metadata)
		}
		// Requests that came late shared fewer of the three checks.
		if d.Attempts < 1 || d.Attempts > 3 {
			t.Errorf("event %s: attempts %d, want the 1 to 3 checks that served it", id, d.Attempts)
		}
	}
	// Three steps, one check each: a little more when a step's requests
	// come due around an answer that is just too old for some of them.
	if calls := w.Sim.Calls(sim.IAK, ref); calls > 5 {
		t.Errorf("%d requests for one reference made %d provider calls, want at most 5", n, calls)
	}
	if c := b.Metric(t, `statusbridge_coalesced_checks_total{provider="iak"}`); c < n {
		t.Errorf("statusbridge_coalesced_checks_total = %v, want most of the requests' checks", c)
	}
}

// TestBreakerParksAnOutage takes the provider down for three seconds
// while requests are parked: after a few failures the breaker stops the
// calls, probes, and everything resolves soon after the provider is back.
func TestBreakerParksAnOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, capacityConfig, func(c *config.Config) {
		c.Breaker.Failures, c.Breaker.Cooldown, c.Breaker.MaxCooldown = 5, 300*time.Millisecond, time.Second
	})
	outage := 3 * time.Second
	w.Provision()
	const n = 100
	var ids []string
	for i := range n {
		ids = append(ids, w.Request("iak", fmt.Sprintf("out-%03d", i), fmt.Sprintf("pending*3,success#out-%03d", i), ""))
	}
	if err := w.Sim.SetProfile(sim.IAK, sim.Profile{Latency: 20 * time.Millisecond, OutageStart: time.Now().Add(500 * time.Millisecond), OutageEnd: time.Now().Add(500*time.Millisecond + outage)}); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(500*time.Millisecond + outage)
	b := w.StartBridge()
	got := w.WaitEvents(60*time.Second, ids...)
	recovered := time.Since(end)
	for _, id := range ids {
		if d := got[id].Event.Data; d.Status != publisher.StatusSuccess || d.Attempts != 4 {
			t.Errorf("event %s: %s after %d attempts, want success after 4 (the outage's 503s are not answers)", id, d.Status, d.Attempts)
		}
	}
	st := w.Sim.Stats(sim.IAK)
	t.Logf("%d calls during a %v outage; all resolved %v after it", st.DuringOutage, outage, recovered.Round(time.Millisecond))
	// Without a breaker every parked request would be checked every 0.2–1 s:
	// hundreds of calls. With it: the failures that open it, one probe per
	// cooldown, and the calls already under way.
	if st.DuringOutage > 40 {
		t.Errorf("%d calls to a provider that was down", st.DuringOutage)
	}
	if recovered > 10*time.Second {
		t.Errorf("the last request resolved %v after the provider came back", recovered)
	}
	if v := b.Metric(t, `statusbridge_breaker_opened_total{provider="iak"}`); v < 1 {
		t.Errorf("statusbridge_breaker_opened_total = %v", v)
	}
	if code, _ := b.Get("/readyz"); code != 200 {
		t.Errorf("/readyz %d: the bridge is healthy even when a provider is not", code)
	}
}

// TestASlowProviderDoesNotDelayTheOthers hangs IAK's calls while Ayopop
// requests come in: they resolve as on an idle bridge.
func TestASlowProviderDoesNotDelayTheOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, capacityConfig, func(c *config.Config) { c.Concurrency = 8 })
	if err := w.Sim.SetProfile(sim.IAK, sim.Profile{Latency: 1900 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	w.Provision()
	for i := range 200 {
		w.Request("iak", fmt.Sprintf("slow-%03d", i), fmt.Sprintf("pending*5,success#slow-%03d", i), "")
	}
	w.StartBridge()
	daemontest.WaitFor(t, 10*time.Second, "IAK calls under way", func() bool { return w.Sim.Stats(sim.IAK).Calls >= 8 })
	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		id := w.Request("ayopop", fmt.Sprintf("fast-%02d", i), fmt.Sprintf("success#fast-%02d", i), "")
		w.WaitEvents(10*time.Second, id)
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest Ayopop request while IAK hangs: %v", worst.Round(time.Millisecond))
	if worst > time.Second {
		t.Errorf("an Ayopop request took %v while IAK's calls hang", worst)
	}
}
