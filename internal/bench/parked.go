package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
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
	park := newTracker(makeRequests("park", o.parked, o.mix, "pending", false), parkWindow)
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
