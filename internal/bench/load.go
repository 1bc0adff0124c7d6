package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// request is one request the load generator publishes.
type request struct {
	provider  string
	id        string // request_id, also the request's Nats-Msg-Id
	reference string
	subject   string
	body      []byte
}

// makeRequests builds n requests whose references carry script; tag makes
// their ids (and, unless sameRef, their references) unique to the round.
func makeRequests(tag string, n int, mix []string, script string, sameRef bool) []request {
	reqs := make([]request, n)
	for i := range reqs {
		p := mix[i%len(mix)]
		id := fmt.Sprintf("bench-%s-%07d", tag, i)
		ref := fmt.Sprintf("%s#%s-%07d", script, tag, i)
		if sameRef {
			ref = fmt.Sprintf("%s#%s", script, tag)
		}
		reqs[i] = request{
			provider:  p,
			id:        id,
			reference: ref,
			subject:   topology.RequestSubject(p),
			body: fmt.Appendf(nil, `{"request_id":%q,"provider":%q,"reference":%q,"metadata":{"order_id":"%d","tenant":"bench"}}`,
				id, p, ref, i),
		}
	}
	return reqs
}

// tracker times a batch of requests from their publish to their event.
// Events are recognised by their Nats-Msg-Id: the bridge's event id, or
// the request id the ceiling reuses.
type tracker struct {
	reqs      []request
	start     time.Time
	index     map[string]int // event's Nats-Msg-Id → request; built by subscribe
	pub       []atomic.Int64 // publish time, ns after start
	mu        sync.Mutex     // guards lat and seen, for a round stopped while events arrive
	lat       []time.Duration
	seen      []bool
	published atomic.Int64
	resolved  atomic.Int64
	lastNs    atomic.Int64 // the latest event, ns after start
	window    chan struct{}
	all       chan struct{} // closed once every request has its event

	// eventBytes[provider] is {bytes, events}; read after all is closed.
	eventBytes map[string]*[2]int64
}

// newTracker tracks reqs; window > 0 bounds how many are published and
// not yet resolved.
func newTracker(reqs []request, window int) *tracker {
	t := &tracker{
		reqs:       reqs,
		pub:        make([]atomic.Int64, len(reqs)),
		lat:        make([]time.Duration, len(reqs)),
		seen:       make([]bool, len(reqs)),
		all:        make(chan struct{}),
		eventBytes: map[string]*[2]int64{},
	}
	for _, r := range reqs {
		if t.eventBytes[r.provider] == nil {
			t.eventBytes[r.provider] = &[2]int64{}
		}
	}
	if window > 0 {
		t.window = make(chan struct{}, window)
	}
	t.start = time.Now()
	return t
}

// subscribe listens for events with core NATS, which sees each event as
// JetStream stores it.
func (t *tracker) subscribe(nc *nats.Conn) (*nats.Subscription, error) {
	t.index = make(map[string]int, 2*len(t.reqs))
	for i, r := range t.reqs {
		t.index[publisher.EventID(r.provider, r.id)] = i
		t.index[r.id] = i
	}
	sub, err := nc.Subscribe(topology.ResolvedPrefix+">", t.onEvent)
	if err != nil {
		return nil, err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	return sub, nc.Flush()
}

func (t *tracker) onEvent(m *nats.Msg) {
	now := time.Since(t.start)
	i, ok := t.index[m.Header.Get(jetstream.MsgIDHeader)]
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok || t.seen[i] {
		return // another round's, or a duplicate
	}
	t.seen[i] = true
	t.lat[i] = now - time.Duration(t.pub[i].Load())
	b := t.eventBytes[t.reqs[i].provider]
	b[0] += int64(len(m.Data))
	b[1]++
	t.lastNs.Store(int64(now))
	if t.window != nil {
		select {
		case <-t.window:
		default:
		}
	}
	if t.resolved.Add(1) == int64(len(t.reqs)) {
		close(t.all)
	}
}

// publish publishes every request, spacing them by spacing, and waits for
// their PubAcks.
func (t *tracker) publish(ctx context.Context, js jetstream.JetStream, spacing time.Duration) error {
	for i := range t.reqs {
		if t.window != nil {
			select {
			case t.window <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if spacing > 0 && i > 0 {
			select {
			case <-time.After(spacing):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r := &t.reqs[i]
		t.pub[i].Store(int64(time.Since(t.start)))
		for {
			_, err := js.PublishMsgAsync(&nats.Msg{Subject: r.subject, Data: r.body},
				jetstream.WithMsgID(r.id), jetstream.WithStallWait(5*time.Second))
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return fmt.Errorf("publish request: %w", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		t.published.Add(1)
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(time.Minute):
		return errors.New("requests not acknowledged by JetStream within a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// percentiles returns the q-quantiles (0..1) of the latencies of resolved
// requests to provider ("": every provider).
func (t *tracker) percentiles(provider string, qs ...float64) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lat []time.Duration
	for i, ok := range t.seen {
		if ok && (provider == "" || t.reqs[i].provider == provider) {
			lat = append(lat, t.lat[i])
		}
	}
	slices.Sort(lat)
	out := make([]time.Duration, len(qs))
	for j, q := range qs {
		if len(lat) > 0 {
			out[j] = lat[max(0, min(len(lat)-1, int(math.Ceil(q*float64(len(lat))))-1))]
		}
	}
	return out
}

// roundResult is one round's measurements.
type roundResult struct {
	n, total       int
	mode           string
	requests       int
	elapsed        time.Duration // first publish to last event
	rate           float64       // requests per second
	p50, p95, p99  time.Duration
	callsPerReq    float64       // NaN with real providers
	cpu            time.Duration // user+system after the worker was ready
	cpuSys         time.Duration // of which system; negative when unknown
	ctxSwitches    float64       // per request; NaN when unknown
	cpuStartup     time.Duration
	maxRSSKiB      int64 // VmHWM at exit
	allocsPerReq   float64
	allocBytesReq  float64
	events, deadLs uint64
	logProblems    int
	// stealPct is the share of the machine's CPU time the hypervisor gave
	// to others while the round ran (NaN where /proc/stat has none): a
	// round with much of it measured a busier machine.
	stealPct float64
}

func (r roundResult) cpuPerReq() time.Duration { return r.cpu / time.Duration(r.requests) }

// workerEnv is the configuration of a round's workers besides the bench's
// NATS server and simulators.
func (b *bench) workerEnv(mode, name string) map[string]string {
	extra := map[string]string{
		"BRIDGE_CONCURRENCY":     strconv.Itoa(b.o.concurrency),
		"BRIDGE_BACKOFF_INITIAL": b.o.backoffInit.String(),
		"BRIDGE_BACKOFF_MAX":     b.o.backoffMax.String(),
	}
	if mode == "ceiling" {
		var sizes []string
		for p, n := range b.eventBytes {
			sizes = append(sizes, p+"="+strconv.Itoa(n))
		}
		extra[envEventBytes] = strings.Join(sizes, ",")
	}
	if b.o.profileDir != "" {
		extra[envProfile] = filepath.Join(b.o.profileDir, name)
	}
	return b.bridgeEnv(extra)
}

// round runs one throughput round of mode: fresh workers, empty streams,
// requests published and resolved. n numbers it among the measured rounds;
// 0 is the warm-up.
func (b *bench) round(ctx context.Context, n, requests int, mode string) (roundResult, error) {
	total := b.o.rounds * len(b.o.modes)
	b.resetSim()
	if err := b.resetStreams(ctx); err != nil {
		return roundResult{}, err
	}
	name := fmt.Sprintf("round%d-%s", n, mode)
	if n == 0 {
		name = "warmup-" + mode
	}
	ws, err := b.startWorkers(ctx, mode, name, b.workerEnv(mode, name))
	if err != nil {
		return roundResult{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			killAll(ws)
		}
	}()
	if _, err := b.applyProfiles(time.Now()); err != nil {
		return roundResult{}, err
	}

	t := newTracker(makeRequests(fmt.Sprintf("r%d", n), requests, b.o.mix, b.o.script, b.o.sameReference), b.o.window)
	sub, err := t.subscribe(b.nc)
	if err != nil {
		return roundResult{}, err
	}
	defer sub.Unsubscribe()
	label := fmt.Sprintf("round %d/%d %-7s", n, total, mode)
	if n == 0 {
		label = fmt.Sprintf("warm-up %-7s", mode)
	}
	stealBefore, totalBefore, stealOK := cpuSteal()
	if err := b.drive(ctx, t, label, 0, 0); err != nil {
		return roundResult{}, err
	}
	if err := b.waitSettled(ctx); err != nil {
		return roundResult{}, err
	}
	stealAfter, totalAfter, stealOK2 := cpuSteal()
	u, err := stopAll(ws)
	stopped = true
	if err != nil {
		return roundResult{}, err
	}

	r := roundResult{n: n, total: total, mode: mode, requests: len(t.reqs), stealPct: math.NaN()}
	if stealOK && stealOK2 && totalAfter > totalBefore {
		r.stealPct = 100 * float64(stealAfter-stealBefore) / float64(totalAfter-totalBefore)
	}
	first := time.Duration(t.pub[0].Load())
	r.elapsed = time.Duration(t.lastNs.Load()) - first
	r.rate = float64(r.requests) / r.elapsed.Seconds()
	p := t.percentiles("", 0.50, 0.95, 0.99)
	r.p50, r.p95, r.p99 = p[0], p[1], p[2]
	r.callsPerReq = math.NaN()
	if !b.o.realAPIs {
		r.callsPerReq = float64(b.simCalls()) / float64(r.requests)
	}
	r.cpuStartup, r.cpu = u.cpuStartup, u.cpu
	r.cpuSys, r.ctxSwitches = u.cpuSys, math.NaN()
	if u.ctxSwitches >= 0 {
		r.ctxSwitches = float64(u.ctxSwitches) / float64(r.requests)
	}
	r.maxRSSKiB = u.maxHWMKiB
	r.allocsPerReq = float64(u.mallocs) / float64(r.requests)
	r.allocBytesReq = float64(u.allocBytes) / float64(r.requests)
	r.events, _ = b.streamMsgs(ctx, topology.DefaultEventsStream)
	r.deadLs, _ = b.streamMsgs(ctx, topology.DefaultDeadLetterStream)
	r.logProblems = u.logProblems
	for _, l := range u.firstProblem {
		fmt.Fprintf(b.stderr, "  %s log: %s\n", mode, l)
	}
	if mode == "bridge" {
		for p, v := range t.eventBytes {
			if v[1] > 0 {
				b.eventBytes[p] = int(v[0] / v[1])
			}
		}
	}
	fmt.Fprintf(b.stderr, "%s: %d requests in %v, %.0f req/s, p50 %v p99 %v, %.2f calls/req, CPU %.1f µs/req, peak RSS %.1f MiB\n",
		label, r.requests, r.elapsed.Round(time.Millisecond), r.rate, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond),
		r.callsPerReq, float64(r.cpuPerReq().Nanoseconds())/1e3, float64(r.maxRSSKiB)/1024)
	return r, nil
}

// cpuSteal reads the machine's steal time and total CPU time, in ticks,
// from the first line of /proc/stat.
func cpuSteal() (steal, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i < 8 { // user … steal; guest time is counted in user already
			total += v
		}
		if i == 7 {
			steal = v
		}
	}
	return steal, total, true
}

// stopError says why a round ended before every request was resolved.
type stopError struct{ reason string }

func (e *stopError) Error() string { return e.reason }

// drive publishes t's requests and waits until all are resolved, printing
// progress every second. It gives up with a *stopError when nothing
// resolves for --stall-timeout plus grace, or after --timeout.
func (b *bench) drive(ctx context.Context, t *tracker, label string, spacing, grace time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- t.publish(ctx, b.js, spacing) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastResolved int64
	lastProgress := time.Now()
	for {
		select {
		case <-t.all:
			return nil
		case err := <-pubErr:
			if err != nil {
				return err
			}
			pubErr = nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			done := t.resolved.Load()
			elapsed := time.Since(t.start)
			fmt.Fprintf(b.stderr, "%s: %d/%d resolved, %d/s now, %.0f/s mean, %d published\n",
				label, done, len(t.reqs), done-lastResolved, float64(done)/elapsed.Seconds(), t.published.Load())
			switch {
			case done != lastResolved:
				lastResolved, lastProgress = done, time.Now()
			case time.Since(lastProgress) > b.o.stallTimeout+grace:
				return &stopError{fmt.Sprintf("nothing resolved for %v (%d of %d resolved)", (b.o.stallTimeout + grace).Round(time.Second), done, len(t.reqs))}
			}
			if elapsed > b.o.timeout {
				return &stopError{fmt.Sprintf("--timeout %v reached (%d of %d resolved)", b.o.timeout, done, len(t.reqs))}
			}
		}
	}
}

// waitSettled waits until the consumer has no request pending or
// unacknowledged: the worker acked the last one after its event.
func (b *bench) waitSettled(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := b.consumerInfo(ctx)
		if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("requests not settled 30s after their events: %d unacknowledged, %d undelivered", info.NumAckPending, info.NumPending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sysPct is the share of the round's CPU time spent in the kernel, NaN
// when unknown.
func (r roundResult) sysPct() float64 {
	if r.cpu <= 0 || r.cpuSys < 0 {
		return math.NaN()
	}
	return 100 * float64(r.cpuSys) / float64(r.cpu)
}
