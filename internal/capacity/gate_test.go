package capacity

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusbridge/statusbridge/internal/natsserver"
)

// bucketFor starts an embedded server and returns a function that opens
// a new connection to its capacity bucket: one per simulated replica.
func bucketFor(t *testing.T) func() jetstream.KeyValue {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	connect := func() jetstream.JetStream {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	if _, err := connect().CreateKeyValue(t.Context(), jetstream.KeyValueConfig{
		Bucket: "CAPACITY", Storage: jetstream.MemoryStorage, TTL: time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	return func() jetstream.KeyValue {
		kv, err := connect().KeyValue(t.Context(), "CAPACITY")
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
}

func testSettings(limit float64, burst int) Settings {
	return Settings{Limit: limit, Burst: burst, MaxWait: 2 * time.Second, Breaker: BreakerSettings{
		Failures: 3, Cooldown: 300 * time.Millisecond, MaxCooldown: time.Second, ProbeTimeout: 2 * time.Second,
	}}
}

func openGate(t *testing.T, ctx context.Context, kv jetstream.KeyValue, s Settings) *Gate {
	t.Helper()
	g, err := Open(ctx, kv, "iak", s, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry(), []string{"iak"}))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// drive admits calls through g from workers goroutines until ctx ends, and
// returns the booked start of every call.
func drive(ctx context.Context, g *Gate, workers int) []time.Time {
	var mu sync.Mutex
	var starts []time.Time
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				tk, wait, err := g.Admit(ctx)
				if err != nil || wait > 0 {
					if ctx.Err() == nil && wait > 0 {
						sleepCtx(ctx, wait)
					}
					continue
				}
				mu.Lock()
				starts = append(starts, tk.At)
				mu.Unlock()
				g.Done(ctx, tk, Answered)
			}
		})
	}
	wg.Wait()
	return starts
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func TestThreeReplicasShareOneBudget(t *testing.T) {
	t.Parallel()
	newKV := bucketFor(t)
	s := testSettings(45, 9)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var all []time.Time
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		g := openGate(t, t.Context(), newKV(), s)
		wg.Go(func() {
			starts := drive(ctx, g, 16)
			mu.Lock()
			all = append(all, starts...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	if got := maxInAnySecond(all); got > 45+9 {
		t.Errorf("%d calls in one sliding second across 3 replicas, want at most limit + burst = 54", got)
	}
	// About 3 s of budget (135) plus the burst; far less would mean the
	// replicas starve each other.
	if len(all) < 100 {
		t.Errorf("only %d calls in 3s at 45/s", len(all))
	}
}

func TestAReplicaThatDiesLeavesNoBudgetBehind(t *testing.T) {
	t.Parallel()
	newKV := bucketFor(t)
	s := testSettings(20, 1)
	s.MaxWait = 500 * time.Millisecond
	dying, die := context.WithCancel(t.Context())
	doomed := openGate(t, dying, newKV(), s)
	// The doomed replica books as much as it may, then dies with slots
	// booked up to MaxWait ahead: those go unused, and nothing else.
	drive(withTimeout(dying, time.Second), doomed, 8)
	die()
	died := time.Now()

	survivor := openGate(t, t.Context(), newKV(), s)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	starts := drive(ctx, survivor, 8)
	after := 0
	for _, at := range starts {
		if at.After(died.Add(s.MaxWait)) {
			after++
		}
	}
	// From MaxWait after the death on, the survivor has the whole budget:
	// about 1.5 s at 20/s.
	if after < 27 {
		t.Errorf("the surviving replica made %d calls in the 1.5s after the dead replica's bookings, want about 30", after)
	}
}

func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(ctx, cancel)
	return ctx
}

func TestARefusalLowersTheRateOfEveryReplica(t *testing.T) {
	t.Parallel()
	newKV := bucketFor(t)
	s := testSettings(50, 10)
	a := openGate(t, t.Context(), newKV(), s)
	b := openGate(t, t.Context(), newKV(), s)
	tk, wait, err := a.Admit(t.Context())
	if err != nil || wait > 0 {
		t.Fatalf("first call not admitted: wait %v err %v", wait, err)
	}
	a.Done(t.Context(), tk, Refused)
	eventually(t, func() bool { return b.Rate() < 50 }, "the other replica's rate to drop below the limit after a refusal")
}

func TestNoFixedLimitTouchesNoSharedStateUntilRefused(t *testing.T) {
	t.Parallel()
	newKV := bucketFor(t)
	kv := newKV()
	g := openGate(t, t.Context(), kv, testSettings(0, 0))
	for range 100 {
		tk, wait, err := g.Admit(t.Context())
		if err != nil || wait > 0 {
			t.Fatalf("a call with no limit was held: wait %v err %v", wait, err)
		}
		g.Done(t.Context(), tk, Answered)
	}
	if _, err := kv.Get(t.Context(), "rate.iak"); err == nil {
		t.Error("calls with no limit and no refusal wrote shared rate state")
	}
	tk, _, _ := g.Admit(t.Context())
	g.Done(t.Context(), tk, Refused)
	if r := g.Rate(); r <= 0 {
		t.Errorf("after a refusal the rate is %v, want a finite rate", r)
	}
	if _, err := kv.Get(t.Context(), "rate.iak"); err != nil {
		t.Errorf("the refusal's rate is not shared: %v", err)
	}
}

func TestBreakerOpenedByOneReplicaHoldsTheOthersAndAProbeClosesIt(t *testing.T) {
	t.Parallel()
	newKV := bucketFor(t)
	s := testSettings(0, 0)
	a := openGate(t, t.Context(), newKV(), s)
	b := openGate(t, t.Context(), newKV(), s)
	for range s.Breaker.Failures {
		tk, wait, err := a.Admit(t.Context())
		if err != nil || wait > 0 {
			t.Fatalf("call held before the breaker opened: wait %v err %v", wait, err)
		}
		a.Done(t.Context(), tk, Failed)
	}
	eventually(t, func() bool {
		_, wait, _ := b.Admit(t.Context())
		return wait > 0
	}, "the other replica to see the open breaker")

	// After the cooldown exactly one replica gets the probe.
	var probe Ticket
	eventually(t, func() bool {
		tk, wait, err := b.Admit(t.Context())
		if err == nil && wait == 0 && tk.Probe {
			probe = tk
			return true
		}
		return false
	}, "a probe after the cooldown")
	if _, wait, _ := a.Admit(t.Context()); wait == 0 {
		t.Error("another call went while the probe was out")
	}
	b.Done(t.Context(), probe, Answered)
	eventually(t, func() bool {
		_, wait, _ := a.Admit(t.Context())
		return wait == 0
	}, "calls to flow again after the probe answered")
	// The slow start reaches the other replica through its watch too.
	eventually(t, func() bool { r := a.Rate(); return r > 0 && r <= unlimitedRecovery*2 },
		"the other replica to slow-start from the recovery rate")
}

func TestAFailedProbeReopensForLonger(t *testing.T) {
	t.Parallel()
	newKV := bucketFor(t)
	s := testSettings(0, 0)
	g := openGate(t, t.Context(), newKV(), s)
	for range s.Breaker.Failures {
		tk, _, _ := g.Admit(t.Context())
		g.Done(t.Context(), tk, Failed)
	}
	var probe Ticket
	eventually(t, func() bool {
		tk, wait, _ := g.Admit(t.Context())
		probe = tk
		return wait == 0 && tk.Probe
	}, "a probe")
	g.Done(t.Context(), probe, Failed)
	_, wait, _ := g.Admit(t.Context())
	if wait <= s.Breaker.Cooldown {
		t.Errorf("after a failed probe the breaker holds calls for %v, want longer than the first cooldown %v", wait, s.Breaker.Cooldown)
	}
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
