package main

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

// benchOptions are the flags of `bridge bench`.
type benchOptions struct {
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
	parkFor      time.Duration
	fresh        int
	startupRuns  int
	profileDir   string
	keepLogs     bool
	stallTimeout time.Duration
}

const benchUsage = `Usage: bridge bench [flags]

Load-tests the real pipeline. The bench process runs an embedded NATS server
(or uses --nats-url) and the provider simulators, and runs the bridge as a
child process (so its CPU and memory are its own), publishing requests and
timing each one from its publish to the arrival of its event.

Throughput mode (the default) alternates rounds of the bridge and of a
CEILING: a minimal consumer that does only what the contract demands (fetch
from the same consumer, one HTTP call to the same simulator endpoint with a
pre-built request, publish an event-sized payload with a Nats-Msg-Id and wait
for its PubAck, double-ack), so the table shows what the bridge costs over the
floor. An unmeasured warm-up round of each mode comes first; then each pair of
rounds runs in the other order than the last, so a machine that drifts favours
neither mode. Streams are deleted and re-created before every round.

--parked N parks N requests that stay pending (checked once, then parked for
--park-for), then times --fresh immediate-success requests and reads the
bridge's memory, with the daemon's default settings otherwise.

Progress goes to stderr, the table to stdout.
`

func parseBenchFlags(args []string, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.requests, "requests", 20000, "requests per round")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each mode; the bridge and the ceiling alternate, each pair in the other order than the last")
	fs.IntVar(&o.warmup, "warmup", -1, "requests in one unmeasured round of each mode before the measured ones (default: --requests, at most 5000; 0: none)")
	fs.StringVar(&o.mixText, "providers", "iak,ayopop,appotapay", "provider mix: names (equal shares) or weights, e.g. iak=2,ayopop=1")
	fs.IntVar(&o.concurrency, "concurrency", 64, "BRIDGE_CONCURRENCY of the bridge and the ceiling")
	fs.StringVar(&o.script, "script", "success", `simulator script of every request, e.g. "pending*3,success"`)
	fs.IntVar(&o.window, "window", 0, "most requests published and not yet resolved (default: 4 x concurrency x steps of the script)")
	fs.StringVar(&o.natsURL, "nats-url", "", "use this NATS server (no authentication) instead of an embedded one; its STATUS_* streams are DELETED and re-created every round, so never point it at a server that matters")
	fs.BoolVar(&o.syncAlways, "sync-always", true, "the embedded server fsyncs every write, as the daemon's embedded default (BRIDGE_EMBEDDED_SYNC_ALWAYS) does")
	fs.BoolVar(&o.realAPIs, "real-providers", false, "call the providers the BRIDGE_IAK_*, BRIDGE_AYOPOP_* and BRIDGE_APPOTAPAY_* variables name instead of the simulators")
	fs.DurationVar(&o.backoffInit, "backoff-initial", 20*time.Millisecond, "BRIDGE_BACKOFF_INITIAL in throughput mode, for scripts with pending steps")
	fs.DurationVar(&o.backoffMax, "backoff-max", 200*time.Millisecond, "BRIDGE_BACKOFF_MAX in throughput mode")
	fs.StringVar(&o.logLevel, "log-level", "info", "BRIDGE_LOG_LEVEL of the bridge (info, the daemon's default, logs a line per resolved request); it logs to a pipe the bench stores")
	mode := fs.String("mode", "both", "throughput mode: both, bridge or ceiling")
	fs.StringVar(&o.baseline, "baseline", "", "throughput mode: compare with the bridge of this binary (e.g. a build of the previous commit) instead of the ceiling, in alternating rounds")
	fs.IntVar(&o.parked, "parked", 0, "parked mode: park this many pending requests, then time fresh ones")
	fs.DurationVar(&o.parkFor, "park-for", 10*time.Minute, "parked mode: BRIDGE_BACKOFF_INITIAL and _MAX, how long each parked request waits between checks")
	fs.IntVar(&o.fresh, "fresh", 100, "parked mode: immediate-success requests timed once all are parked")
	fs.IntVar(&o.startupRuns, "startup-runs", 5, "how often to start bridge run with an embedded server and time it until /readyz answers (0: skip)")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles of every worker round to this directory")
	fs.BoolVar(&o.keepLogs, "keep", false, "keep the work directory (worker logs, NATS store) and print its path")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", time.Minute, "give up on a round when nothing resolves for this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage, "\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	mix, err := parseMix(o.mixText)
	if err != nil {
		errs = append(errs, err)
	}
	o.mix = mix
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
	default:
		errs = append(errs, fmt.Errorf("--mode %q must be both, bridge or ceiling", *mode))
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
	if o.window == 0 {
		o.window = 4 * o.concurrency * max(1, len(steps))
	}
	if o.requests < 1 || o.rounds < 1 || o.concurrency < 1 || o.window < 1 || o.parked < 0 || o.fresh < 1 {
		errs = append(errs, errors.New("--requests, --rounds, --concurrency, --window and --fresh must be positive"))
	}
	if o.warmup < 0 {
		// The servers and simulators in the bench process warm up in
		// the first rounds; unmeasured, that favours neither mode.
		o.warmup = min(o.requests, 5000)
	}
	return o, errors.Join(errs...)
}

// parseMix reads "iak,ayopop" or "iak=2,ayopop=1" into a repeating pattern.
func parseMix(s string) ([]string, error) {
	known := []string{sim.IAK, sim.Ayopop, sim.AppotaPay}
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

// runBench is `bridge bench`; `bridge bench worker` is the child it runs.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "worker" {
		return runBenchWorker(ctx, args[1:], stdout, stderr)
	}
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
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

	if o.parked > 0 {
		res, err := b.parkedRun(ctx)
		if err != nil {
			return err
		}
		res.print(stdout, b)
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
