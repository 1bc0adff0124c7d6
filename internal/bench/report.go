package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

// printThroughput prints the rounds, the median of each mode, and the
// bridge's ratios to the ceiling.
func printThroughput(w io.Writer, b *bench, results []roundResult, startup []time.Duration) {
	o := b.o
	steps, _ := sim.ParseScript(o.script)
	fmt.Fprintf(w, "bridge bench: %d requests per round, %s of %s\n",
		o.requests, plural(o.rounds, "round"), strings.Join(o.modes, " and "))
	if o.warmup > 0 {
		fmt.Fprintf(w, "first an unmeasured warm-up round of %d requests of each mode; then each pair of rounds runs in the other order than the last\n", o.warmup)
	}
	fmt.Fprintf(w, "providers %s, script %q (%s per request by schedule), concurrency %d, at most %d requests unresolved at once\n",
		o.mixText, o.script, plural(len(steps), "call"), o.concurrency, o.window)
	fmt.Fprintf(w, "NATS: %s\n", b.natsDescription())
	if o.realAPIs {
		fmt.Fprintln(w, "providers: real, from BRIDGE_IAK_*, BRIDGE_AYOPOP_*, BRIDGE_APPOTAPAY_*")
	} else {
		fmt.Fprintln(w, "providers: the simulators, in the bench process")
	}
	fmt.Fprintf(w, "bridge: daemon defaults except BRIDGE_CONCURRENCY=%d BRIDGE_BACKOFF_INITIAL=%v BRIDGE_BACKOFF_MAX=%v BRIDGE_LOG_LEVEL=%s%s (logs to a pipe)%s\n",
		o.concurrency, o.backoffInit, o.backoffMax, o.logLevel, b.envText(), replicasText(o.replicas))
	fmt.Fprintln(w, "latency: request publish to its event's arrival (core subscription); CPU and allocations: the worker process from ready to exit")
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tmode\treq/s\tp50\tp95\tp99\tcalls/req\tCPU µs/req\tsys%\tcsw/req\tCPU s\tstart CPU\tpeak RSS MiB\tallocs/req\tKiB/req\tevents\twarn+err\tsteal%\t")
	row := func(label, mode string, r roundResult) {
		steal := "-"
		if !math.IsNaN(r.stealPct) {
			steal = fmt.Sprintf("%.1f", r.stealPct)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%.2f\t%s\t%.1f\t%.0f\t%.1f\t%d\t%d\t%s\t\n",
			label, mode, r.rate, ms(r.p50), ms(r.p95), ms(r.p99), calls(r.callsPerReq),
			us(r.cpuPerReq()), orDash("%.0f", r.sysPct()), orDash("%.2f", r.ctxSwitches), r.cpu.Seconds(), ms(r.cpuStartup), float64(r.maxRSSKiB)/1024,
			r.allocsPerReq, r.allocBytesReq/1024, r.events, r.logProblems, steal)
	}
	var measured []roundResult
	for _, r := range results {
		if r.n == 0 {
			row("warm-up", r.mode, r)
			continue
		}
		row(fmt.Sprint(r.n), r.mode, r)
		measured = append(measured, r)
	}
	medians := map[string]roundResult{}
	for _, mode := range o.modes {
		var of []roundResult
		for _, r := range measured {
			if r.mode == mode {
				of = append(of, r)
			}
		}
		medians[mode] = medianResult(of)
		row("median", mode, medians[mode])
	}
	tw.Flush()
	fmt.Fprintln(w)

	br, okB := medians["bridge"]
	if base, ok := medians["baseline"]; okB && ok {
		fmt.Fprintf(w, "bridge / baseline (%s) (medians): throughput %.2f, CPU per request %.2f, allocations per request %.2f\n",
			o.baseline, br.rate/base.rate, float64(br.cpuPerReq())/float64(base.cpuPerReq()), br.allocsPerReq/base.allocsPerReq)
		if thr, cpu := pairRatios(measured, "baseline"); len(thr) > 1 {
			fmt.Fprintf(w, "bridge / baseline within each pair of rounds: throughput %s, CPU per request %s\n", spread(thr), spread(cpu))
		}
	}
	if ce, ok := medians["ceiling"]; okB && ok {
		fmt.Fprintf(w, "bridge / ceiling (medians): throughput %.2f (target >= 0.90), CPU per request %.2f (target <= 1.35)\n",
			br.rate/ce.rate, float64(br.cpuPerReq())/float64(ce.cpuPerReq()))
		if thr, cpu := pairRatios(measured, "ceiling"); len(thr) > 1 {
			fmt.Fprintf(w, "bridge / ceiling within each pair of rounds: throughput %s, CPU per request %s\n", spread(thr), spread(cpu))
		}
	}
	if okB {
		fmt.Fprintf(w, "bridge provider calls per request: %s (schedule: %d)\n", calls(br.callsPerReq), len(steps))
	}
	if len(startup) > 0 {
		s := slices.Sorted(slices.Values(startup))
		fmt.Fprintf(w, "start-up to ready (bridge run, embedded NATS, daemon defaults): median %s, min %s, max %s of %s (target <= 1s)\n",
			ms(s[(len(s)-1)/2]), ms(s[0]), ms(s[len(s)-1]), plural(len(s), "run"))
	}
}

// envText lists the --env variables, each after a space.
func (b *bench) envText() string {
	var s string
	for _, k := range slices.Sorted(maps.Keys(b.o.env)) {
		s += " " + k + "=" + b.o.env[k]
	}
	return s
}

func replicasText(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(", %d replicas", n)
}

// orDash formats v, or prints "-" for a figure not measured (NaN).
func orDash(format string, v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// pairRatios are the bridge's ratios to the round of mode other (the
// ceiling or the baseline) it ran next to.
func pairRatios(measured []roundResult, other string) (throughput, cpu []float64) {
	for i := 0; i+1 < len(measured); i += 2 {
		br, ce := measured[i], measured[i+1]
		if br.mode == other {
			br, ce = ce, br
		}
		if br.mode != "bridge" || ce.mode != other {
			continue
		}
		throughput = append(throughput, br.rate/ce.rate)
		cpu = append(cpu, float64(br.cpuPerReq())/float64(ce.cpuPerReq()))
	}
	return throughput, cpu
}

// spread prints ratios as their median and range.
func spread(v []float64) string {
	s := slices.Sorted(slices.Values(v))
	return fmt.Sprintf("median %.2f, from %.2f to %.2f", s[(len(s)-1)/2], s[0], s[len(s)-1])
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// medianResult is the median of each figure across rounds.
func medianResult(rs []roundResult) roundResult {
	if len(rs) == 0 {
		return roundResult{}
	}
	m := rs[0]
	m.rate = median(rs, func(r roundResult) float64 { return r.rate })
	m.p50 = time.Duration(median(rs, func(r roundResult) float64 { return float64(r.p50) }))
	m.p95 = time.Duration(median(rs, func(r roundResult) float64 { return float64(r.p95) }))
	m.p99 = time.Duration(median(rs, func(r roundResult) float64 { return float64(r.p99) }))
	m.callsPerReq = median(rs, func(r roundResult) float64 { return r.callsPerReq })
	m.cpu = time.Duration(median(rs, func(r roundResult) float64 { return float64(r.cpu) }))
	m.cpuSys = time.Duration(median(rs, func(r roundResult) float64 { return float64(r.cpuSys) }))
	if slices.ContainsFunc(rs, func(r roundResult) bool { return r.cpuSys < 0 }) {
		m.cpuSys = -1
	}
	m.ctxSwitches = median(rs, func(r roundResult) float64 { return r.ctxSwitches })
	m.cpuStartup = time.Duration(median(rs, func(r roundResult) float64 { return float64(r.cpuStartup) }))
	m.maxRSSKiB = int64(median(rs, func(r roundResult) float64 { return float64(r.maxRSSKiB) }))
	m.allocsPerReq = median(rs, func(r roundResult) float64 { return r.allocsPerReq })
	m.allocBytesReq = median(rs, func(r roundResult) float64 { return r.allocBytesReq })
	m.events = uint64(median(rs, func(r roundResult) float64 { return float64(r.events) }))
	m.logProblems = int(median(rs, func(r roundResult) float64 { return float64(r.logProblems) }))
	m.stealPct = median(rs, func(r roundResult) float64 { return r.stealPct })
	return m
}

// median is the median of f over rs (the lower middle of an even count).
func median(rs []roundResult, f func(roundResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1e3)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func calls(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

// parkedResult is what --parked measures.
type parkedResult struct {
	parked           int
	script           string
	maxPending       int
	parkTime         time.Duration
	simCalls         int
	ackPending       int
	maxAckPending    int
	freshP50         time.Duration
	freshP99         time.Duration
	freshMax         time.Duration
	rssParkedKiB     int64 // once all were parked
	rssKiB, hwmKiB   int64 // after the fresh requests
	cpu              time.Duration
	mallocsPerParked float64
	logProblems      int
	callbacks        []time.Duration // with --callbacks: callback to event, sorted
	callbackCalls    int             // simulator calls after all were parked
	callbackRetries  int             // callbacks sent again after a 503 (bridge busy)
}

func (r parkedResult) print(w io.Writer, b *bench) {
	o := b.o
	if o.callbackRate > 0 {
		fmt.Fprintf(w, "bridge bench --parked %d --callbacks %d\n", r.parked, o.callbackRate)
	} else {
		fmt.Fprintf(w, "bridge bench --parked %d\n", r.parked)
	}
	fmt.Fprintf(w, "NATS: %s\n", b.natsDescription())
	fmt.Fprintf(w, "bridge: daemon defaults (BRIDGE_MAX_PENDING=%d, consumer MaxAckPending %d, BRIDGE_CONCURRENCY=%d) except BRIDGE_BACKOFF_INITIAL=BRIDGE_BACKOFF_MAX=%v, BRIDGE_LOG_LEVEL=%s\n",
		r.maxPending, r.maxAckPending, o.concurrency, o.parkFor, o.logLevel)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "parked requests (script %q)\t%d, all checked once (%d simulator calls), %d unacknowledged in the consumer\n", r.script, r.parked, r.simCalls, r.ackPending)
	fmt.Fprintf(tw, "time to park them all\t%s (%.0f req/s, publishing included)\n", ms(r.parkTime), float64(r.parked)/r.parkTime.Seconds())
	if n := len(r.callbacks); n > 0 {
		fmt.Fprintf(tw, "callbacks\t%d, %d a second: callback to event p50 %s, p99 %s, max %s (target p99 <= 1s); %d provider calls for them (%.2f per callback); %d sent again after a 503\n",
			n, o.callbackRate, ms(r.callbacks[n/2]), ms(r.callbacks[n*99/100]), ms(r.callbacks[n-1]), r.callbackCalls, float64(r.callbackCalls)/float64(n), r.callbackRetries)
	} else {
		fmt.Fprintf(tw, "fresh success requests\t%d, one every 10ms: p50 %s, p99 %s, max %s (target p99 < 1s)\n", o.fresh, ms(r.freshP50), ms(r.freshP99), ms(r.freshMax))
	}
	fmt.Fprintf(tw, "bridge RSS with all parked\t%.1f MiB\n", float64(r.rssParkedKiB)/1024)
	fmt.Fprintf(tw, "bridge RSS at the end\t%.1f MiB now (VmRSS), %.1f MiB peak (VmHWM) (target <= 150 MB)\n", float64(r.rssKiB)/1024, float64(r.hwmKiB)/1024)
	fmt.Fprintf(tw, "bridge CPU, ready to exit\t%.1f s (%.1f µs per parked request), %.0f allocations per parked request\n",
		r.cpu.Seconds(), us(r.cpu)/float64(r.parked), r.mallocsPerParked)
	fmt.Fprintf(tw, "bridge log\t%d WARN/ERROR lines\n", r.logProblems)
	tw.Flush()
}
