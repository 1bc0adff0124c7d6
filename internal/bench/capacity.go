package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// capacityResult is what a capacity round measured.
type capacityResult struct {
	n                  int
	requests, resolved int
	stopped            string // why the round ended before every request resolved
	stoppedAfter       time.Duration
	elapsed            time.Duration // from the start of the publishing to the last event
	providers          []providerResult
	usage              usage
	events, deadLs     uint64
}

// providerResult is one provider's share of a capacity round.
type providerResult struct {
	name               string
	profile            sim.Profile
	stats              sim.ProviderStats // the simulator's counts
	bridgeLimit        float64           // BRIDGE_<P>_RATE_LIMIT, 0: none
	bridgeBurst        int
	requests, resolved int
	lastEvent          time.Duration // after the start of the publishing
	latency            []time.Duration
	outageEnd          time.Duration // after the start of the publishing; 0: no outage
	busiestAfterOutage int
	timeline           []float64 // mean calls per second in each bucket
	bucket             time.Duration
}

// capacityRound runs --replicas bridges against the profiled simulators,
// publishes every request at once (or within --window), and waits until
// all are resolved or the round is stopped, which it reports too.
func (b *bench) capacityRound(ctx context.Context, n int) (capacityResult, error) {
	b.resetSim()
	if err := b.resetStreams(ctx); err != nil {
		return capacityResult{}, err
	}
	name := fmt.Sprintf("capacity%d", n)
	ws, err := b.startWorkers(ctx, "bridge", name, b.workerEnv("bridge", name))
	if err != nil {
		return capacityResult{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			killAll(ws)
		}
	}()
	t := newTracker(makeRequests(fmt.Sprintf("c%d", n), b.o.requests, b.o.mix, b.o.script, b.o.sameReference), b.o.window)
	sub, err := t.subscribe(b.nc)
	if err != nil {
		return capacityResult{}, err
	}
	defer sub.Unsubscribe()
	// Times are reported from the start of the publishing, t.start.
	profiles, err := b.applyProfiles(t.start)
	if err != nil {
		return capacityResult{}, err
	}
	// An outage stops every resolution while it lasts: not a stall.
	var grace time.Duration
	for _, p := range profiles {
		grace = max(grace, time.Until(p.OutageEnd))
	}

	r := capacityResult{n: n, requests: len(t.reqs)}
	err = b.drive(ctx, t, fmt.Sprintf("capacity round %d/%d", n, b.o.rounds), 0, grace)
	var stop *stopError
	switch {
	case errors.As(err, &stop):
		r.stopped = stop.reason
		r.stoppedAfter = time.Since(t.start)
	case err != nil:
		return r, err
	default:
		if err := b.waitSettled(ctx); err != nil {
			return r, err
		}
	}
	simNow := b.sim.Load()
	calls := b.calls.Load()
	r.resolved = int(t.resolved.Load())
	r.elapsed = time.Duration(t.lastNs.Load())
	for _, p := range providerNames {
		pr := providerResult{name: p, profile: profiles[p], stats: simNow.Stats(p)}
		t.mu.Lock()
		for i, req := range t.reqs {
			if req.provider != p {
				continue
			}
			pr.requests++
			if t.seen[i] {
				pr.resolved++
				pr.lastEvent = max(pr.lastEvent, time.Duration(t.pub[i].Load())+t.lat[i])
			}
		}
		t.mu.Unlock()
		if pr.requests == 0 && pr.stats.Calls == 0 {
			continue
		}
		pr.bridgeLimit, pr.bridgeBurst = b.bridgeRate(p)
		pr.latency = t.percentiles(p, 0.50, 0.90, 0.99, 1)
		// About 20 figures for the whole round, each over whole seconds.
		pr.bucket = max(time.Second, (time.Since(t.start) / 20).Round(time.Second))
		pr.timeline = calls.timeline(p, t.start, pr.bucket)
		if end := pr.profile.OutageEnd; !end.IsZero() {
			pr.outageEnd = end.Sub(t.start)
			pr.busiestAfterOutage = calls.busiestSecond(p, end)
		}
		r.providers = append(r.providers, pr)
	}
	u, err := stopAll(ws)
	stopped = true
	if err != nil {
		return r, err
	}
	r.usage = u
	for _, l := range u.firstProblem {
		fmt.Fprintf(b.stderr, "  bridge log: %s\n", l)
	}
	r.events, _ = b.streamMsgs(ctx, topology.DefaultEventsStream)
	r.deadLs, _ = b.streamMsgs(ctx, topology.DefaultDeadLetterStream)
	return r, nil
}

// bridgeRate is the rate limit and burst --env gives the bridges for
// provider, with the bridge's default burst.
func (b *bench) bridgeRate(provider string) (float64, int) {
	prefix := "BRIDGE_" + strings.ToUpper(provider) + "_RATE_"
	limit, _ := strconv.ParseFloat(b.o.env[prefix+"LIMIT"], 64)
	burst, _ := strconv.Atoi(b.o.env[prefix+"BURST"])
	if limit > 0 && burst == 0 {
		burst = capacity.DefaultBurst(limit)
	}
	return limit, burst
}

// print writes the round's report.
func (r capacityResult) print(w io.Writer, b *bench) {
	o := b.o
	steps, _ := sim.ParseScript(o.script)
	refs := "each with a reference of its own"
	if o.sameReference {
		refs = "all with the same reference"
	}
	published := "published at once"
	if o.window > 0 {
		published = fmt.Sprintf("at most %d unresolved at once", o.window)
	}
	fmt.Fprintf(w, "bridge bench, capacity round %d of %d: %d requests %s, %s, script %q (%s per request by schedule), providers %s\n",
		r.n, o.rounds, r.requests, published, refs, o.script, plural(len(steps), "call"), o.mixText)
	fmt.Fprintf(w, "bridge: %s, daemon defaults except BRIDGE_CONCURRENCY=%d BRIDGE_BACKOFF_INITIAL=%v BRIDGE_BACKOFF_MAX=%v BRIDGE_LOG_LEVEL=%s%s\n",
		plural(o.replicas, "replica"), o.concurrency, o.backoffInit, o.backoffMax, o.logLevel, b.envText())
	fmt.Fprintf(w, "NATS: %s\n", b.natsDescription())
	fmt.Fprintln(w)
	if r.stopped != "" {
		fmt.Fprintf(w, "STOPPED after %s: %s\n", secs(r.stoppedAfter), r.stopped)
	}
	took := ""
	if r.resolved > 0 {
		took = " in " + secs(r.elapsed)
	}
	fmt.Fprintf(w, "resolved: %d of %d%s; %d events, %d dead letters\n", r.resolved, r.requests, took, r.events, r.deadLs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range r.providers {
		st := p.stats
		fmt.Fprintf(tw, "%s\t%d requests\n", p.name, p.requests)
		fmt.Fprintf(tw, "  simulator\t%s\n", profileText(p.profile))
		fmt.Fprintf(tw, "  calls\t%d: %d answered, %d refused (%s), %d during the outage, %d abandoned\n",
			st.Calls, st.Answered, st.Refused, pct(st.Refused, st.Calls), st.DuringOutage, st.Abandoned)
		busiest := plural(st.MaxCallsPerSecond, "call") + " in the busiest second"
		var limits []string
		if p.bridgeLimit > 0 {
			limits = append(limits, fmt.Sprintf("bridge limit %g + burst %d = %g", p.bridgeLimit, p.bridgeBurst, p.bridgeLimit+float64(p.bridgeBurst)))
		}
		if p.profile.RateLimit > 0 {
			limits = append(limits, fmt.Sprintf("the simulator admits %d", p.profile.RateLimit))
		}
		if len(limits) > 0 {
			busiest += " (" + strings.Join(limits, "; ") + ")"
		}
		fmt.Fprintf(tw, "  busiest second\t%s\n", busiest)
		perReq := "-"
		if p.resolved > 0 {
			perReq = fmt.Sprintf("%.2f (%.2f answered; schedule: %d)", float64(st.Calls)/float64(p.resolved), float64(st.Answered)/float64(p.resolved), len(steps))
		}
		fmt.Fprintf(tw, "  calls per second, by %v\t%s\n", p.bucket, rates(p.timeline))
		fmt.Fprintf(tw, "  calls per resolved request\t%s\n", perReq)
		if o.sameReference {
			fmt.Fprintf(tw, "  references\t%d asked about, at most %d calls about one\n", st.References, st.MaxCallsPerReference)
		}
		fmt.Fprintf(tw, "  all resolved after\t%s\n", p.resolvedText())
		if p.outageEnd > 0 {
			fmt.Fprintf(tw, "  outage\t%s\n", p.outageText())
		}
		l := p.latency
		fmt.Fprintf(tw, "  latency\tp50 %s, p90 %s, p99 %s, max %s\n", ms(l[0]), ms(l[1]), ms(l[2]), ms(l[3]))
	}
	tw.Flush()
	u := r.usage
	fmt.Fprintf(w, "bridges: CPU %.1f s (%s per request), peak RSS %.1f MiB (largest replica), %d WARN/ERROR log lines\n",
		u.cpu.Seconds(), ms(u.cpu/time.Duration(r.requests)), float64(u.maxHWMKiB)/1024, u.logProblems)
	fmt.Fprintln(w)
}

// resolvedText is the time until the provider's last resolution, and its
// ratio to the ideal: the answered calls at the lowest rate limit set.
func (p providerResult) resolvedText() string {
	if p.resolved < p.requests {
		return fmt.Sprintf("not all: %d of %d resolved", p.resolved, p.requests)
	}
	s := secs(p.lastEvent)
	limit := p.bridgeLimit
	if l := float64(p.profile.RateLimit); l > 0 && (limit == 0 || l < limit) {
		limit = l
	}
	switch {
	case limit == 0 || p.stats.Answered == 0:
		return s + " (no rate limit set: no ideal)"
	case p.outageEnd > 0:
		return s + " (with an outage: no ideal; see the outage line)"
	}
	ideal := time.Duration(float64(p.stats.Answered) / limit * float64(time.Second))
	return fmt.Sprintf("%s; ideal %s (%d answered calls / %g per s): ratio %.2f",
		s, secs(ideal), p.stats.Answered, limit, p.lastEvent.Seconds()/ideal.Seconds())
}

// outageText is when the provider's outage was, how long its requests
// took to resolve after it ended, and the busiest second since.
func (p providerResult) outageText() string {
	last := "every request resolved before it ended"
	switch {
	case p.resolved < p.requests:
		last = fmt.Sprintf("%d requests never resolved", p.requests-p.resolved)
	case p.lastEvent > p.outageEnd:
		last = "last resolution " + secs(p.lastEvent-p.outageEnd) + " after it ended"
	}
	start := p.outageEnd - p.profile.OutageEnd.Sub(p.profile.OutageStart)
	return fmt.Sprintf("from %s to %s: %s during it; %s; busiest second since: %s",
		secs(start), secs(p.outageEnd), plural(p.stats.DuringOutage, "call"), last, plural(p.busiestAfterOutage, "call"))
}

// profileText describes a simulator's profile.
func profileText(p sim.Profile) string {
	var parts []string
	if p.Latency > 0 {
		l := "latency " + p.Latency.String()
		if p.Jitter > 0 {
			l += " ± " + p.Jitter.String()
		}
		parts = append(parts, l)
	}
	if p.RateLimit > 0 {
		parts = append(parts, fmt.Sprintf("at most %d calls in any second, then 429 with Retry-After %s", p.RateLimit, p.RetryAfter))
	}
	if !p.OutageEnd.IsZero() {
		parts = append(parts, fmt.Sprintf("an outage (503) of %s", p.OutageEnd.Sub(p.OutageStart)))
	}
	if len(parts) == 0 {
		return "answers at once, no limit, no outage"
	}
	return strings.Join(parts, ", ")
}

// rates prints calls per second, without decimals when they are whole.
func rates(v []float64) string {
	s := make([]string, len(v))
	for i, r := range v {
		s[i] = strconv.FormatFloat(r, 'f', -1, 64)
		if r != float64(int(r)) {
			s[i] = fmt.Sprintf("%.1f", r)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
