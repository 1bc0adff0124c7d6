package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// defaultMaxPending is BRIDGE_MAX_PENDING's default.
const defaultMaxPending = 1000000

// parkWindow is how many parked-mode requests may be published and not yet
// checked.
const parkWindow = 2000

// releaseByChecks frees a slot of window for every simulator call, until
// ctx ends.
func (b *bench) releaseByChecks(ctx context.Context, window chan struct{}) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	released := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for calls := b.simCalls(); released < calls; released++ {
			select {
			case <-window:
			default: // no publish holds this slot
			}
		}
	}
}

// parkedRun parks --parked requests that stay pending, then times --fresh
// immediate-success requests and reads the bridge's memory.
func (b *bench) parkedRun(ctx context.Context) (parkedResult, error) {
	o := b.o
	b.resetSim()
	if err := b.resetStreams(ctx); err != nil {
		return parkedResult{}, err
	}
	r := parkedResult{parked: o.parked, maxPending: defaultMaxPending}
	extra := map[string]string{
		"BRIDGE_CONCURRENCY":     strconv.Itoa(o.concurrency),
		"BRIDGE_BACKOFF_INITIAL": o.parkFor.String(),
		"BRIDGE_BACKOFF_MAX":     o.parkFor.String(),
	}
	if o.parked > defaultMaxPending {
		// More than the default plans for: size the consumer as an
		// operator would, or fresh requests would wait in the stream.
		r.maxPending = o.parked
		extra["BRIDGE_MAX_PENDING"] = strconv.Itoa(o.parked)
	}
	if o.profileDir != "" {
		extra[envProfile] = filepath.Join(o.profileDir, "parked")
	}
	script := "pending"
	if o.callbackRate > 0 {
		// Pending until a callback settles them (the simulator then
		// answers the script's last step).
		script = "pending*100,success"
		addr, err := freePort()
		if err != nil {
			return r, err
		}
		extra["BRIDGE_CALLBACK_ADDR"] = addr
		b.sim.Load().SetCallbackURL("http://" + addr + "/callbacks/ayopop")
	}
	w, err := b.startWorker(ctx, "bridge", "parked", b.bridgeEnv(extra))
	if err != nil {
		return r, err
	}
	ok := false
	defer func() {
		if !ok {
			w.kill()
		}
	}()
	if _, err := b.applyProfiles(time.Now()); err != nil {
		return r, err
	}

	// Publishing is paced by the checks: a flood of fsynced publishes
	// would starve the deliveries of the same server, and the run would
	// time the server's queue rather than the bridge.
	r.script = script
	park := newTracker(makeRequests("park", o.parked, o.mix, script, false), parkWindow)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- park.publish(pctx, b.js, 0) }()
	go b.releaseByChecks(pctx, park.window)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastCalls, lastProgress, lastPrint := 0, time.Now(), time.Now()
	for parked := false; !parked; {
		select {
		case err := <-pubErr:
			if err != nil {
				return r, err
			}
			pubErr = nil
			continue
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		calls := b.simCalls()
		if calls != lastCalls {
			lastCalls, lastProgress = calls, time.Now()
		} else if time.Since(lastProgress) > o.stallTimeout {
			return r, fmt.Errorf("no check for %v while parking (%d of %d checked)", o.stallTimeout, calls, o.parked)
		}
		if since := time.Since(park.start); since > o.parkFor/2 {
			return r, fmt.Errorf("parking takes longer than half of --park-for %v: the first requests come back before the last are parked; use a longer --park-for", o.parkFor)
		}
		if calls < o.parked && time.Since(lastPrint) < time.Second {
			// Consumer info is not free for the server (it counts the
			// pending messages): ask once a second, and when all are checked.
			continue
		}
		info, err := b.consumerInfo(ctx)
		if err != nil {
			// A server busy with a million parked requests may be slow to
			// answer; the stall check above bounds the wait.
			fmt.Fprintf(b.stderr, "parking: consumer info: %v\n", err)
			lastPrint = time.Now()
			continue
		}
		parked = calls >= o.parked && info.NumPending == 0 && info.NumAckPending >= o.parked
		r.ackPending, r.maxAckPending = info.NumAckPending, info.Config.MaxAckPending
		if parked || time.Since(lastPrint) >= time.Second {
			rss, _, _ := procStatus(w.pid())
			fmt.Fprintf(b.stderr, "parking: %d/%d published, %d checked, %d unacknowledged, %d undelivered, bridge RSS %.1f MiB\n",
				park.published.Load(), o.parked, calls, info.NumAckPending, info.NumPending, float64(rss)/1024)
			lastPrint = time.Now()
		}
	}
	r.parkTime = time.Since(park.start)
	r.simCalls = b.simCalls()
	r.rssParkedKiB, _, _ = procStatus(w.pid())

	if o.callbackRate > 0 {
		if r.callbacks, r.callbackRetries, err = b.callBack(ctx, park.reqs, o.callbackRate); err != nil {
			return r, err
		}
		r.callbackCalls = b.simCalls() - r.simCalls
	} else {
		fresh := newTracker(makeRequests("fresh", o.fresh, o.mix, "success", false), 0)
		sub, err := fresh.subscribe(b.nc)
		if err != nil {
			return r, err
		}
		defer sub.Unsubscribe()
		if err := b.drive(ctx, fresh, "fresh", 10*time.Millisecond, 0); err != nil {
			return r, err
		}
		p := fresh.percentiles("", 0.50, 0.99, 1)
		r.freshP50, r.freshP99, r.freshMax = p[0], p[1], p[2]
	}
	if r.rssKiB, r.hwmKiB, err = procStatus(w.pid()); err != nil {
		return r, err
	}

	u, err := stopAll([]*worker{w})
	ok = true
	if err != nil {
		return r, err
	}
	r.cpu = u.cpu
	r.mallocsPerParked = float64(u.mallocs) / float64(o.parked)
	r.logProblems = u.logProblems
	for _, l := range u.firstProblem {
		fmt.Fprintf(b.stderr, "  bridge log: %s\n", l)
	}
	// The parked requests stay in the stream; empty it for the next run.
	if err := b.resetStreams(ctx); err != nil {
		return r, err
	}
	return r, nil
}

// callBack has the Ayopop simulator settle each parked request and call
// the bridge back, rate callbacks a second. It returns each request's time
// from its callback's first send to its event's arrival, sorted, and how
// many callbacks were sent again after a 503.
func (b *bench) callBack(ctx context.Context, reqs []request, rate int) (lags []time.Duration, resent int, err error) {
	var mu sync.Mutex
	sent := make(map[string]time.Time, len(reqs))
	done := make(chan struct{})
	sub, err := b.nc.Subscribe(topology.ResolvedPrefix+"ayopop.>", func(m *nats.Msg) {
		var ev publisher.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if at, ok := sent[ev.Data.Reference]; ok {
			delete(sent, ev.Data.Reference)
			lags = append(lags, time.Since(at))
			if len(lags) == len(reqs) {
				close(done)
			}
		}
	})
	if err != nil {
		return nil, 0, err
	}
	defer sub.Unsubscribe()
	if err := b.nc.Flush(); err != nil {
		return nil, 0, err
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	failed := make(chan error, 1)
	var retried atomic.Int64
	for _, req := range reqs {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		mu.Lock()
		sent[req.reference] = time.Now()
		mu.Unlock()
		go func() {
			// A busy bridge answers 503, and Ayopop sends the callback
			// again: so does the bench, and the lag counts from the first.
			for try := 0; ; try++ {
				status, err := b.sim.Load().AyopopCallback(ctx, req.reference, false)
				if err == nil && status == http.StatusOK {
					return
				}
				if err != nil || status != http.StatusServiceUnavailable || try == 100 {
					select {
					case failed <- fmt.Errorf("callback for %s: HTTP %d, %v", req.reference, status, err):
					default:
					}
					return
				}
				retried.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	select {
	case <-done:
	case err := <-failed:
		return nil, 0, err
	case <-time.After(b.o.stallTimeout):
		mu.Lock()
		defer mu.Unlock()
		return nil, 0, fmt.Errorf("%d of %d callbacks had no event after %v", len(reqs)-len(lags), len(reqs), b.o.stallTimeout)
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	slices.Sort(lags)
	return lags, int(retried.Load()), nil
}
