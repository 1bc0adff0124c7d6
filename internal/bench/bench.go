// Package bench is `bridge bench`: it load-tests the real pipeline. The
// bench process runs an embedded NATS server (or uses --nats-url) and the
// provider simulators; the bridge runs as a child process of the same
// binary (`bridge bench worker`), so that its CPU and memory are its own.
//
// Three kinds of run share that set-up: throughput rounds of the bridge
// against a ceiling (or another build), a parked run (many requests
// waiting, fresh ones timed), and capacity runs against slow, rate-limited
// or failing simulators with one or more bridge replicas.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

// UsageError is an error in the command line; the binary exits 2 for it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// options are the flags of `bridge bench`.
type options struct {
	requests     int
	rounds       int
	warmup       int
	mix          []string // provider of request i is mix[i%len(mix)]
	mixText      string
	concurrency  int
	script       string
	window       int
	natsURL      string
	syncAlways   bool
	realAPIs     bool
	backoffInit  time.Duration
	backoffMax   time.Duration
	logLevel     string
	modes        []string
	baseline     string // another bridge binary, compared round by round with this one
	parked       int
	callbackRate int
	parkFor      time.Duration
	fresh        int
	startupRuns  int
	profileDir   string
	keepLogs     bool
	stallTimeout time.Duration
	timeout      time.Duration

	// Capacity runs.
	capacity      bool // print the capacity report of each round
	replicas      int
	sameReference bool
	env           map[string]string // BRIDGE_* variables of every bridge
	profiles      *sim.CapacityFlags
}

const usageText = `Usage: bridge bench [flags]

Load-tests the real pipeline. The bench process runs an embedded NATS server
(or uses --nats-url) and the provider simulators, and runs the bridge as a
child process (so its CPU and memory are its own), publishing requests and
timing each one from its publish to the arrival of its event.

Throughput mode (the default) alternates rounds of the bridge and of a
CEILING: a minimal consumer that does only what the contract demands (fetch
from the same consumer, one status call through the provider's own client,
publish an event-sized payload with a Nats-Msg-Id and wait for its PubAck,
double-ack), so the table shows what the bridge costs over the floor. An
unmeasured warm-up round of each mode comes first; then each pair of rounds
runs in the other order than the last, so a machine that drifts favours
neither mode. Streams are deleted and re-created before every round.

Capacity mode (--mode capacity, chosen by itself when a simulator capacity
flag, --replicas or --same-reference is set) runs --replicas bridges on one
NATS against simulators that are slow (--latency), rate-limited (--rate-limit,
answering 429 with Retry-After) or down for a while (--outage-after,
--outage-for), publishes every request at once, and prints per provider:
calls, refusals, calls during the outage, the busiest second, calls per
resolved request, the time until all resolved against the ideal, and latency
percentiles. Give the bridges their settings with --env, e.g.
--env BRIDGE_IAK_RATE_LIMIT=45. For example, 3,000 transactions pending twice
then successful, against an IAK that answers in 250 ms and allows 50 calls/s:

  bridge bench --replicas 3 --requests 3000 --providers iak \
    --script 'pending*2,success' --backoff-initial 1s --backoff-max 1s \
    --latency 250ms --rate-limit 50 --env BRIDGE_IAK_RATE_LIMIT=45

--parked N parks N requests that stay pending (checked once, then parked for
--park-for), then times --fresh immediate-success requests and reads the
bridge's memory, with the daemon's default settings otherwise. With
--callbacks R and --providers ayopop, the bridge also serves callbacks, and
instead of fresh requests the Ayopop simulator settles each parked request
and calls the bridge back, R a second; each is timed from its callback to
its event.

Every round ends by itself: when all requests are resolved, when nothing
resolves for --stall-timeout, or after --timeout. Progress goes to stderr,
the report to stdout.
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.requests, "requests", 20000, "requests per round")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each mode; the bridge and the ceiling alternate, each pair in the other order than the last (capacity mode: default 1)")
	fs.IntVar(&o.warmup, "warmup", -1, "requests in one unmeasured round of each mode before the measured ones (default: --requests, at most 5000; 0: none; capacity mode: none)")
	fs.StringVar(&o.mixText, "providers", "iak,ayopop,appotapay", "provider mix: names (equal shares) or weights, e.g. iak=2,ayopop=1")
	fs.IntVar(&o.concurrency, "concurrency", 64, "BRIDGE_CONCURRENCY of the bridge and the ceiling (per replica)")
	fs.StringVar(&o.script, "script", "success", `simulator script of every request, e.g. "pending*3,success"`)
	fs.IntVar(&o.window, "window", 0, "most requests published and not yet resolved (default: 4 x concurrency x steps of the script; capacity mode: all at once)")
	fs.StringVar(&o.natsURL, "nats-url", "", "use this NATS server (no authentication) instead of an embedded one; its STATUS_* streams and buckets are DELETED and re-created every round, so never point it at a server that matters")
	fs.BoolVar(&o.syncAlways, "sync-always", true, "the embedded server fsyncs every write, as the daemon's embedded default (BRIDGE_EMBEDDED_SYNC_ALWAYS) does")
	fs.BoolVar(&o.realAPIs, "real-providers", false, "call the providers the BRIDGE_IAK_*, BRIDGE_AYOPOP_* and BRIDGE_APPOTAPAY_* variables name instead of the simulators")
	fs.DurationVar(&o.backoffInit, "backoff-initial", 20*time.Millisecond, "BRIDGE_BACKOFF_INITIAL of the bridges, for scripts with pending steps")
	fs.DurationVar(&o.backoffMax, "backoff-max", 200*time.Millisecond, "BRIDGE_BACKOFF_MAX of the bridges")
	fs.StringVar(&o.logLevel, "log-level", "info", "BRIDGE_LOG_LEVEL of the bridge (info, the daemon's default, logs a line per resolved request); it logs to a pipe the bench stores")
	mode := fs.String("mode", "", "both (bridge and ceiling, the default), bridge, ceiling, or capacity (the default when a capacity flag is set)")
	fs.StringVar(&o.baseline, "baseline", "", "throughput mode: compare with the bridge of this binary (e.g. a build of the previous commit) instead of the ceiling, in alternating rounds")
	fs.IntVar(&o.parked, "parked", 0, "parked mode: park this many pending requests, then time fresh ones")
	fs.DurationVar(&o.parkFor, "park-for", 10*time.Minute, "parked mode: BRIDGE_BACKOFF_INITIAL and _MAX, how long each parked request waits between checks")
	fs.IntVar(&o.fresh, "fresh", 100, "parked mode: immediate-success requests timed once all are parked")
	fs.IntVar(&o.callbackRate, "callbacks", 0, "parked mode, with --providers ayopop: instead of fresh requests, have the Ayopop simulator settle every parked request and call the bridge back, this many callbacks a second, and time each from its callback to its event")
	fs.IntVar(&o.startupRuns, "startup-runs", 5, "throughput mode: how often to start bridge run with an embedded server and time it until /readyz answers (0: skip)")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles of every worker round to this directory")
	fs.BoolVar(&o.keepLogs, "keep", false, "keep the work directory (worker logs, NATS store) and print its path")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", time.Minute, "end a round when nothing resolves for this long (plus the length of an outage)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "end a round that takes longer than this")
	fs.IntVar(&o.replicas, "replicas", 1, "bridge processes sharing the consumer, each with --concurrency")
	fs.BoolVar(&o.sameReference, "same-reference", false, "every request of a round names one reference (distinct request ids), to measure coalescing")
	o.env = map[string]string{}
	fs.Func("env", "`NAME=VALUE` of a BRIDGE_* variable for every bridge, e.g. BRIDGE_IAK_RATE_LIMIT=45 (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(k, "BRIDGE_") {
			return errors.New("want BRIDGE_NAME=VALUE")
		}
		o.env[k] = v
		return nil
	})
	own := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	o.profiles = sim.RegisterCapacityFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText, "\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var errs []error
	mix, err := parseMix(o.mixText)
	if err != nil {
		errs = append(errs, err)
	}
	o.mix = mix
	if _, err := o.profiles.Profiles(time.Now()); err != nil {
		errs = append(errs, err)
	}
	// A simulator capacity flag (any flag not registered above), more
	// than one replica or one reference make it a capacity run.
	profiled := set["replicas"] || set["same-reference"]
	for name := range set {
		profiled = profiled || !own[name]
	}
	if *mode == "" {
		*mode = "both"
		if profiled && o.baseline == "" && o.parked == 0 {
			*mode = "capacity"
		}
	}
	switch {
	case o.baseline != "":
		if *mode != "both" {
			errs = append(errs, errors.New("--baseline compares two bridges: leave --mode out"))
		}
		if _, err := os.Stat(o.baseline); err != nil {
			errs = append(errs, fmt.Errorf("--baseline: %w", err))
		}
		o.modes = []string{"bridge", "baseline"}
	case *mode == "both":
		o.modes = []string{"bridge", "ceiling"}
	case *mode == "bridge", *mode == "ceiling":
		o.modes = []string{*mode}
	case *mode == "capacity":
		o.capacity, o.modes = true, []string{"bridge"}
		if o.realAPIs {
			errs = append(errs, errors.New("capacity mode reads the simulators' counts: leave --real-providers out"))
		}
		if !set["rounds"] {
			o.rounds = 1
		}
		o.warmup, o.startupRuns = 0, 0
	default:
		errs = append(errs, fmt.Errorf("--mode %q must be both, bridge, ceiling or capacity", *mode))
	}
	if o.parked > 0 && o.replicas > 1 {
		errs = append(errs, errors.New("--parked runs one bridge: leave --replicas out"))
	}
	if o.callbackRate < 0 || o.callbackRate > 0 && (o.parked == 0 || !slices.Equal(o.mix, []string{"ayopop"})) {
		errs = append(errs, errors.New("--callbacks needs --parked and --providers ayopop, the provider that calls back"))
	}
	steps, err := sim.ParseScript(o.script)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("--script: %w", err))
	case strings.Contains(o.script, "#") || len(o.script) > 40:
		// The bench appends "#<round>-<number>" to make each reference
		// unique, within the 64 characters a reference may have.
		errs = append(errs, errors.New("--script: at most 40 characters, without '#'"))
	}
	if o.window == 0 && !o.capacity {
		o.window = 4 * o.concurrency * max(1, len(steps))
	}
	if o.requests < 1 || o.rounds < 1 || o.concurrency < 1 || o.window < 0 || o.parked < 0 || o.fresh < 1 || o.replicas < 1 || o.timeout <= 0 {
		errs = append(errs, errors.New("--requests, --rounds, --concurrency, --window, --replicas, --timeout and --fresh must be positive"))
	}
	if o.warmup < 0 {
		// The servers and simulators in the bench process warm up in
		// the first rounds; unmeasured, that favours neither mode.
		o.warmup = min(o.requests, 5000)
	}
	return o, errors.Join(errs...)
}

// providerNames are the providers the bench can load, in report order.
var providerNames = sim.Names()

// parseMix reads "iak,ayopop" or "iak=2,ayopop=1" into a repeating pattern.
func parseMix(s string) ([]string, error) {
	known := providerNames
	var mix []string
	for part := range strings.SplitSeq(s, ",") {
		name, weight, hasWeight := strings.Cut(strings.TrimSpace(part), "=")
		n := 1
		if hasWeight {
			var err error
			if n, err = strconv.Atoi(weight); err != nil || n < 0 || n > 100 {
				return nil, fmt.Errorf("--providers: weight of %s must be 0 to 100", name)
			}
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("--providers: unknown provider %q (want %s)", name, strings.Join(known, ", "))
		}
		for range n {
			mix = append(mix, name)
		}
	}
	if len(mix) == 0 {
		return nil, errors.New("--providers: no provider with a positive weight")
	}
	return mix, nil
}

// roundOrder lists the measured rounds: the modes in turn, each pair in
// the other order than the last (bridge, ceiling, ceiling, bridge, …), so
// a machine that speeds up or slows down during the run favours neither.
func roundOrder(modes []string, rounds int) []string {
	var order []string
	for i := range rounds {
		pair := slices.Clone(modes)
		if i%2 == 1 {
			slices.Reverse(pair)
		}
		order = append(order, pair...)
	}
	return order
}

// Main is `bridge bench args...`; `bridge bench worker` is the child it
// runs. version names the build in the bridge's logs.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	if len(args) > 0 && args[0] == "worker" {
		return runWorker(ctx, args[1:], stdout, stderr, version)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return &UsageError{err}
	}
	workDir, err := os.MkdirTemp("", "statusbridge-bench-")
	if err != nil {
		return err
	}
	if o.keepLogs {
		fmt.Fprintf(stderr, "work directory (kept): %s\n", workDir)
	} else {
		defer os.RemoveAll(workDir)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	b, err := newBench(ctx, o, workDir, stderr)
	if err != nil {
		return err
	}
	defer b.close()

	switch {
	case o.parked > 0:
		res, err := b.parkedRun(ctx)
		if err != nil {
			return err
		}
		res.print(stdout, b)
		return nil
	case o.capacity:
		for i := range o.rounds {
			r, err := b.capacityRound(ctx, i+1)
			if err != nil {
				return fmt.Errorf("round %d: %w", i+1, err)
			}
			r.print(stdout, b)
		}
		return nil
	}

	var results []roundResult
	if o.warmup > 0 {
		for _, mode := range o.modes {
			r, err := b.round(ctx, 0, o.warmup, mode)
			if err != nil {
				return fmt.Errorf("warm-up round (%s): %w", mode, err)
			}
			results = append(results, r)
		}
	}
	for i, mode := range roundOrder(o.modes, o.rounds) {
		r, err := b.round(ctx, i+1, o.requests, mode)
		if err != nil {
			return fmt.Errorf("round %d (%s): %w", i+1, mode, err)
		}
		results = append(results, r)
	}
	var startup []time.Duration
	for i := range o.startupRuns {
		d, err := b.startupToReady(ctx, filepath.Join(workDir, fmt.Sprintf("startup-%d", i+1)))
		if err != nil {
			return fmt.Errorf("start-up timing: %w", err)
		}
		fmt.Fprintf(stderr, "start-up %d/%d: ready after %v\n", i+1, o.startupRuns, d.Round(time.Millisecond))
		startup = append(startup, d)
	}
	printThroughput(stdout, b, results, startup)
	return nil
}
