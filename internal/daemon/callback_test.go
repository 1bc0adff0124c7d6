package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// TestAyopopCallback: a callback makes the bridge confirm its reference
// at once, and every open request for it gets its event from that check,
// long before its schedule's next check. A forged callback, which the
// status API contradicts, changes nothing.
func TestAyopopCallback(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) {
		c.CallbackAddr = "127.0.0.1:0"
		// A schedule so slow that only the callback can resolve the
		// requests within the test.
		c.Backoff.Initial, c.Backoff.Max = time.Minute, time.Minute
	})
	b := w.StartBridge()
	w.Sim.SetCallbackURL("http://" + b.CallbackAddr + "/callbacks/ayopop")

	const ref, forged, other = "pending*100,success#cb-1", "pending*100,success#cb-2", "pending*100,success#cb-3"
	ids := []string{w.Request("ayopop", "cb-a", ref, `,"metadata":{"order":"a"}`), w.Request("ayopop", "cb-b", ref, "")}
	forgedID := w.Request("ayopop", "cb-forged", forged, "")
	otherID := w.Request("ayopop", "cb-other", other, "")

	// Every request is checked once and parked: indexed as open.
	kv, err := w.JS.KeyValue(context.Background(), w.Config.ChecksBucket)
	if err != nil {
		t.Fatal(err)
	}
	daemontest.WaitFor(t, 10*time.Second, "four open requests", func() bool {
		return len(openKeys(t, kv)) == 4
	})

	start := time.Now()
	if status, err := w.Sim.AyopopCallback(context.Background(), ref, false); err != nil || status != http.StatusOK {
		t.Fatalf("callback answered %d, %v", status, err)
	}
	got := w.WaitEvents(10*time.Second, ids...)
	t.Logf("callback to both events: %v", time.Since(start).Round(time.Millisecond))
	for _, id := range ids {
		d := got[id].Event.Data
		if d.Status != publisher.StatusSuccess || d.Attempts != 2 || d.Amount == "" {
			t.Errorf("event %s: %s", id, got[id].Raw)
		}
	}
	if got[ids[0]].Event.Data.Metadata["order"] != "a" {
		t.Errorf("the metadata is lost: %s", got[ids[0]].Raw)
	}

	if status, err := w.Sim.AyopopCallback(context.Background(), forged, true); err != nil || status != http.StatusOK {
		t.Fatalf("forged callback answered %d, %v", status, err)
	}
	daemontest.WaitFor(t, 10*time.Second, "the forged callback's check", func() bool {
		return b.Metric(t, `statusbridge_callback_checks_total{provider="ayopop",result="pending"}`) == 1
	})
	for _, e := range w.Events() {
		if e.Event.ID == forgedID || e.Event.ID == otherID {
			t.Errorf("an event for a request no callback settled: %s", e.Raw)
		}
	}
	if n := len(w.Events()); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
	// A callback for a reference no request is open for costs no call.
	resp, err := http.Post("http://"+b.CallbackAddr+"/callbacks/ayopop", "application/json",
		strings.NewReader(`{"responseCode":0,"success":true,"data":{"refNumber":"success#nobody-asked"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	daemontest.WaitFor(t, 10*time.Second, "the unknown reference's check", func() bool {
		return b.Metric(t, `statusbridge_callback_checks_total{provider="ayopop",result="no_open_request"}`) == 1
	})
	if n := w.Sim.Calls("ayopop", "success#nobody-asked"); n != 0 {
		t.Errorf("a callback for an unknown reference made %d calls", n)
	}

	// The settled requests left the index; the others are still open.
	if keys := openKeys(t, kv); len(keys) != 2 {
		t.Errorf("open index holds %d keys, want 2", len(keys))
	}
	if n := b.Metric(t, `statusbridge_callbacks_total{outcome="accepted",provider="ayopop"}`); n != 3 {
		t.Errorf("accepted callbacks: %v", n)
	}
	if n := b.Metric(t, `statusbridge_callback_checks_total{provider="ayopop",result="resolved"}`); n != 1 {
		t.Errorf("resolving checks: %v", n)
	}
}

func openKeys(t *testing.T, kv jetstream.KeyValue) []string {
	t.Helper()
	keys, err := kv.Keys(context.Background())
	if err != nil && err != jetstream.ErrNoKeysFound {
		t.Fatal(err)
	}
	var open []string
	for _, k := range keys {
		if strings.HasPrefix(k, "open.") {
			open = append(open, k)
		}
	}
	return open
}

// BenchmarkCallbackToEvent measures the fast path's lag: 300 parked Ayopop
// requests, their callbacks sent at 100 a second, and the time from each
// callback to its request's event (p50, p99, max). The target is
// p99 ≤ 1 s; this reports it, it asserts nothing about time.
//
//	go test -run '^$' -bench CallbackToEvent ./internal/daemon
func BenchmarkCallbackToEvent(b *testing.B) {
	const requests = 300
	b.StopTimer()
	for range b.N {
		w := daemontest.NewWorld(b, func(c *config.Config) {
			c.CallbackAddr = "127.0.0.1:0"
			c.Backoff.Initial, c.Backoff.Max = time.Minute, time.Minute
			c.LogLevel = "warn"
		})
		br := w.StartBridge()
		w.Sim.SetCallbackURL("http://" + br.CallbackAddr + "/callbacks/ayopop")
		arrived := make(chan string, requests)
		sub, err := w.NC.Subscribe("status.resolved.ayopop.>", func(m *nats.Msg) {
			var ev publisher.Event
			if json.Unmarshal(m.Data, &ev) == nil {
				arrived <- ev.Data.Reference
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		refs := make([]string, requests)
		for i := range refs {
			refs[i] = fmt.Sprintf("pending*1000,success#lag-%d", i)
			w.Request("ayopop", fmt.Sprintf("lag-%d", i), refs[i], "")
		}
		kv, err := w.JS.KeyValue(context.Background(), w.Config.ChecksBucket)
		if err != nil {
			b.Fatal(err)
		}
		daemontest.WaitFor(b, 60*time.Second, "every request parked", func() bool {
			keys, _ := kv.Keys(context.Background())
			n := 0
			for _, k := range keys {
				if strings.HasPrefix(k, "open.") {
					n++
				}
			}
			return n == requests
		})

		b.StartTimer()
		sent := make(map[string]time.Time, requests)
		var mu sync.Mutex
		tick := time.NewTicker(10 * time.Millisecond)
		go func() {
			for _, ref := range refs {
				<-tick.C
				mu.Lock()
				sent[ref] = time.Now()
				mu.Unlock()
				go func() { _, _ = w.Sim.AyopopCallback(context.Background(), ref, false) }()
			}
			tick.Stop()
		}()
		var lags []time.Duration
		timeout := time.After(60 * time.Second)
		for len(lags) < requests {
			select {
			case ref := <-arrived:
				mu.Lock()
				lags = append(lags, time.Since(sent[ref]))
				mu.Unlock()
			case <-timeout:
				b.Fatalf("%d of %d events after 60 s", len(lags), requests)
			}
		}
		b.StopTimer()
		_ = sub.Unsubscribe()
		slices.Sort(lags)
		b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
		if err := br.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}
