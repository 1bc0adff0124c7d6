package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
)

// asBridge makes the test binary act as the bridge binary, which the bench
// starts as its workers (`bridge bench worker`) and for its start-up
// timing (`bridge run`).
const asBridge = "STATUSBRIDGE_BENCH_TEST_AS_BRIDGE"

func TestMain(m *testing.M) {
	if os.Getenv(asBridge) == "1" {
		os.Exit(actAsBridge(os.Args[1:]))
	}
	os.Setenv(asBridge, "1") // for the children
	os.Exit(m.Run())
}

func actAsBridge(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(args) > 0 && args[0] == "bench":
		err = Main(ctx, args[1:], os.Stdout, os.Stderr, "test")
	case len(args) > 0 && args[0] == "run":
		cfg, warnings, lerr := config.Load()
		err = lerr
		if err == nil {
			err = daemon.Run(ctx, cfg, daemon.Options{Log: os.Stderr, Version: "test", Warnings: warnings})
		}
	default:
		err = fmt.Errorf("the bench test binary acts as bridge bench and bridge run, not %q", args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bridge: %v\n", err)
		return 1
	}
	return 0
}

// syncBuffer collects a command's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runBench runs `bridge bench args...` in this process; its workers are
// this test binary acting as the bridge.
func runBench(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process test")
	}
	var stdout, stderr syncBuffer
	if err := Main(t.Context(), args, &stdout, &stderr, "test"); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("bench output:\n%s", stdout.String())
	return stdout.String()
}

// medianRow returns the columns of the table's median row of mode.
func medianRow(t *testing.T, table, mode string) map[string]string {
	t.Helper()
	var header []string
	for line := range strings.SplitSeq(table, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "round":
			header = f
		case len(f) > 1 && f[0] == "median" && f[1] == mode:
			// "CPU µs/req", "CPU s", "start CPU" and "peak RSS MiB" are
			// two or three words in the header: match from the right.
			row := map[string]string{}
			for i := 1; i <= min(len(f), 4); i++ {
				row[header[len(header)-i]] = f[len(f)-i]
			}
			row["req/s"], row["calls/req"] = f[2], f[6]
			return row
		}
	}
	t.Fatalf("no median %s row in:\n%s", mode, table)
	return nil
}

// match returns the submatches of pattern in out, failing the test when
// there are none.
func match(t *testing.T, out, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output lacks %q", pattern)
	}
	return m
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBenchSmoke(t *testing.T) {
	out := runBench(t, "--requests", "200", "--rounds", "1", "--startup-runs", "1")
	for _, mode := range []string{"bridge", "ceiling"} {
		row := medianRow(t, out, mode)
		if row["events"] != "200" || row["calls/req"] != "1.00" || row["warn+err"] != "0" {
			t.Errorf("%s: events %s, calls/req %s, warn+err %s; want 200, 1.00, 0", mode, row["events"], row["calls/req"], row["warn+err"])
		}
		if row["req/s"] == "0" || strings.HasPrefix(row["req/s"], "-") {
			t.Errorf("%s: throughput %s", mode, row["req/s"])
		}
	}
	match(t, out, `bridge / ceiling \(medians\): throughput [0-9.]+ .*CPU per request [0-9.]+`)
	match(t, out, `start-up to ready .*: median [0-9.]+m?s`)
}

// TestCeilingUsesTheProviderClients runs the ceiling alone on a script
// with pending steps: the providers' own clients authenticate, and it
// parks pending answers on the schedule.
func TestCeilingUsesTheProviderClients(t *testing.T) {
	out := runBench(t, "--requests", "60", "--rounds", "1", "--mode", "ceiling", "--startup-runs", "0", "--warmup", "0",
		"--script", "pending,success")
	row := medianRow(t, out, "ceiling")
	if row["events"] != "60" || row["calls/req"] != "2.00" {
		t.Errorf("events %s, calls/req %s; want 60 and 2.00", row["events"], row["calls/req"])
	}
}

func TestBenchPendingScriptCallsPerSchedule(t *testing.T) {
	out := runBench(t, "--requests", "60", "--rounds", "1", "--mode", "bridge", "--startup-runs", "0",
		"--script", "pending*3,success", "--providers", "iak=1,ayopop=1,appotapay=1")
	row := medianRow(t, out, "bridge")
	if row["events"] != "60" || row["calls/req"] != "4.00" {
		t.Errorf("events %s, calls/req %s; want 60 and 4.00", row["events"], row["calls/req"])
	}
	match(t, out, `bridge provider calls per request: 4.00 \(schedule: 4\)`)
}

// TestBenchCallbacks: in parked mode with --callbacks, every parked Ayopop
// request is settled by its callback's confirming check, one provider call
// each.
func TestBenchCallbacks(t *testing.T) {
	out := runBench(t, "--parked", "100", "--providers", "ayopop", "--callbacks", "200", "--startup-runs", "0")
	match(t, out, `parked requests \(script "pending\*100,success"\)\s+100, all checked once`)
	match(t, out, `callbacks\s+100, 200 a second: callback to event p50 [0-9.]+m?s, p99 [0-9.]+m?s, max [0-9.]+m?s \(target p99 <= 1s\); 100 provider calls for them \(1.00 per callback\)`)
}

func TestBenchParked(t *testing.T) {
	out := runBench(t, "--parked", "300", "--fresh", "5", "--startup-runs", "0")
	match(t, out, `parked requests \(script "pending"\)\s+300, all checked once \(300 simulator calls\), 300 unacknowledged`)
	match(t, out, `fresh success requests\s+5, one every 10ms: p50 [0-9.]+m?s`)
	match(t, out, `bridge RSS at the end\s+[0-9.]+ MiB now`)
	// The run keeps the daemon's default cap (fewer parked than it), and the
	// report quotes it and the consumer's MaxAckPending it leads to.
	def := config.Default()
	match(t, out, regexp.QuoteMeta(fmt.Sprintf("BRIDGE_MAX_PENDING=%d, consumer MaxAckPending %d,", def.MaxPending, def.Topology().MaxAckPending)))
}

// TestParkedDefaultIsTheDaemons: parked mode sizes the consumer as the
// daemon does by default unless more requests are parked than it plans for.
func TestParkedDefaultIsTheDaemons(t *testing.T) {
	if d := config.Default().MaxPending; defaultMaxPending != d {
		t.Errorf("defaultMaxPending %d, want BRIDGE_MAX_PENDING's default %d", defaultMaxPending, d)
	}
}

// TestCapacityRateLimited runs two replicas with a shared budget under the
// simulator's limit: every request resolves after its two answered checks
// and the simulator refuses few calls, if any.
func TestCapacityRateLimited(t *testing.T) {
	out := runBench(t, "--replicas", "2", "--requests", "60", "--providers", "iak", "--script", "pending,success",
		"--backoff-initial", "300ms", "--backoff-max", "300ms",
		"--latency", "20ms", "--rate-limit", "25", "--env", "BRIDGE_IAK_RATE_LIMIT=20")
	match(t, out, `bridge bench, capacity round 1 of 1: 60 requests published at once`)
	match(t, out, `bridge: 2 replicas, .*BRIDGE_IAK_RATE_LIMIT=20`)
	match(t, out, `resolved: 60 of 60 in [0-9.]+s; 60 events, 0 dead letters`)
	m := match(t, out, `calls\s+(\d+): (\d+) answered, (\d+) refused \([0-9.]+%\), 0 during the outage`)
	if answered, refused := atoi(t, m[2]), atoi(t, m[3]); answered != 120 || refused > 6 {
		t.Errorf("%s calls: %d answered, %d refused; want 120 answered (two per request) and at most 6 refused", m[1], answered, refused)
	}
	match(t, out, `busiest second\s+\d+ calls in the busiest second \(bridge limit 20 \+ burst 4 = 24; the simulator admits 25\)`)
	match(t, out, `all resolved after\s+[0-9.]+s; ideal 6.0s \(120 answered calls / 20 per s\): ratio [0-9.]+`)
	match(t, out, `latency\s+p50 [0-9.]+m?s, p90 [0-9.]+m?s, p99 [0-9.]+m?s, max`)
}

// TestCapacitySameReference asks about one reference many times: the
// requests share their checks.
func TestCapacitySameReference(t *testing.T) {
	out := runBench(t, "--same-reference", "--requests", "50", "--providers", "ayopop", "--script", "pending,success",
		"--backoff-initial", "300ms", "--backoff-max", "300ms")
	match(t, out, `50 requests published at once, all with the same reference`)
	match(t, out, `resolved: 50 of 50 in`)
	m := match(t, out, `references\s+1 asked about, at most (\d+) calls about one`)
	if calls := atoi(t, m[1]); calls > 5 {
		t.Errorf("%d calls about the one reference, want at most 5", calls)
	}
}

// TestCapacityOutage takes IAK down for the first seconds while Ayopop
// answers: IAK's requests resolve after the outage, Ayopop's meanwhile.
func TestCapacityOutage(t *testing.T) {
	out := runBench(t, "--requests", "40", "--providers", "iak,ayopop", "--script", "success",
		"--iak-outage-for", "3s", "--backoff-initial", "200ms", "--backoff-max", "200ms")
	match(t, out, `resolved: 40 of 40 in`)
	m := match(t, out, `outage\s+from 0.0s to 3.0s: (\d+) calls? during it; (last resolution [0-9.]+s after it ended|every request resolved before it ended); busiest second since: \d+ calls?`)
	if during := atoi(t, m[1]); during == 0 {
		t.Error("no call during the outage")
	}
	ayopop := out[strings.Index(out, "\nayopop"):]
	match(t, ayopop, `calls\s+20: 20 answered, 0 refused \(0.00%\), 0 during the outage`)
	if strings.Contains(ayopop, "outage  ") {
		t.Errorf("an outage reported for ayopop:\n%s", ayopop)
	}
}

// TestCapacityStopsByItself runs requests that never resolve: the round
// ends at --timeout and still reports.
func TestCapacityStopsByItself(t *testing.T) {
	out := runBench(t, "--mode", "capacity", "--requests", "20", "--providers", "appotapay", "--script", "pending",
		"--backoff-initial", "200ms", "--backoff-max", "200ms", "--timeout", "2s")
	match(t, out, `STOPPED after [0-9.]+s: --timeout 2s reached \(0 of 20 resolved\)`)
	match(t, out, `resolved: 0 of 20; 0 events, 0 dead letters`)
	match(t, out, `all resolved after\s+not all: 0 of 20 resolved`)
	m := match(t, out, `calls\s+\d+: (\d+) answered`)
	if atoi(t, m[1]) < 20 {
		t.Errorf("%s answered calls for 20 requests", m[1])
	}
}

func TestFlags(t *testing.T) {
	for _, c := range []struct {
		args  []string
		modes string
		cap   bool
		err   string
	}{
		{args: nil, modes: "bridge ceiling"},
		{args: []string{"--latency", "250ms"}, modes: "bridge", cap: true},
		{args: []string{"--replicas", "3"}, modes: "bridge", cap: true},
		{args: []string{"--same-reference"}, modes: "bridge", cap: true},
		{args: []string{"--iak-rate-limit", "50"}, modes: "bridge", cap: true},
		{args: []string{"--mode", "bridge", "--latency", "1ms"}, modes: "bridge"},
		{args: []string{"--mode", "capacity"}, modes: "bridge", cap: true},
		{args: []string{"--env", "IAK_RATE_LIMIT=45"}, err: "want BRIDGE_NAME=VALUE"},
		{args: []string{"--parked", "10", "--replicas", "2"}, err: "--parked runs one bridge"},
		{args: []string{"--parked", "10", "--callbacks", "50"}, err: "--callbacks needs --parked and --providers ayopop"},
		{args: []string{"--callbacks", "50", "--providers", "ayopop"}, err: "--callbacks needs --parked"},
		{args: []string{"--outage-after", "1s"}, err: "needs --outage-for"},
		{args: []string{"--mode", "capacity", "--real-providers"}, err: "leave --real-providers out"},
	} {
		var stderr syncBuffer
		o, err := parseFlags(c.args, &stderr)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one saying %q", c.args, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.args, err)
		case strings.Join(o.modes, " ") != c.modes || o.capacity != c.cap:
			t.Errorf("%q: modes %q, capacity %v; want %q, %v", c.args, o.modes, o.capacity, c.modes, c.cap)
		}
	}
	o, err := parseFlags([]string{"--latency", "1ms"}, &syncBuffer{})
	if err != nil || o.rounds != 1 || o.warmup != 0 || o.startupRuns != 0 || o.window != 0 {
		t.Errorf("capacity defaults: rounds %d, warm-up %d, start-up runs %d, window %d (%v); want 1, 0, 0, 0",
			o.rounds, o.warmup, o.startupRuns, o.window, err)
	}
}

func TestBusiestSecond(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := &callLog{at: map[string][]time.Time{}}
	for _, ms := range []int{0, 100, 200, 900, 1000, 1100, 1150, 5000} {
		l.at["iak"] = append(l.at["iak"], t0.Add(time.Duration(ms)*time.Millisecond))
	}
	// (0.1s, 1.1s] holds 200, 900, 1000, 1100; (0.15s, 1.15s] the same plus 1150.
	if got := l.busiestSecond("iak", t0); got != 5 {
		t.Errorf("busiest second = %d, want 5", got)
	}
	if got := l.busiestSecond("iak", t0.Add(time.Second)); got != 3 {
		t.Errorf("busiest second from 1s = %d, want 3", got)
	}
	if got := l.busiestSecond("ayopop", t0); got != 0 {
		t.Errorf("busiest second of no calls = %d", got)
	}
}

func TestRoundOrderAlternatesPairs(t *testing.T) {
	got := strings.Join(roundOrder([]string{"bridge", "ceiling"}, 3), " ")
	if want := "bridge ceiling ceiling bridge bridge ceiling"; got != want {
		t.Errorf("roundOrder = %s, want %s", got, want)
	}
	if got := strings.Join(roundOrder([]string{"bridge"}, 2), " "); got != "bridge bridge" {
		t.Errorf("roundOrder of one mode = %s", got)
	}
}

func TestPairRatiosComparePairsWhateverTheirOrder(t *testing.T) {
	r := func(mode string, rate float64, cpu time.Duration) roundResult {
		return roundResult{mode: mode, rate: rate, cpu: cpu, requests: 1}
	}
	thr, cpu := pairRatios([]roundResult{
		r("bridge", 90, 120*time.Microsecond), r("ceiling", 100, 100*time.Microsecond),
		r("ceiling", 200, 100*time.Microsecond), r("bridge", 100, 150*time.Microsecond),
	}, "ceiling")
	if fmt.Sprintf("%.2f %.2f", thr, cpu) != "[0.90 0.50] [1.20 1.50]" {
		t.Errorf("pairRatios = %.2f, %.2f; want [0.90 0.50], [1.20 1.50]", thr, cpu)
	}
	thr, cpu = pairRatios([]roundResult{
		r("baseline", 100, 100*time.Microsecond), r("bridge", 110, 90*time.Microsecond),
		r("bridge", 90, 120*time.Microsecond), r("ceiling", 100, 100*time.Microsecond),
	}, "baseline")
	if fmt.Sprintf("%.2f %.2f", thr, cpu) != "[1.10] [0.90]" {
		t.Errorf("pairRatios against the baseline = %.2f, %.2f; want [1.10], [0.90]", thr, cpu)
	}
}
