package callback

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// confirmer records the references it is asked to confirm; block, when
// set, holds every check until it is closed.
type confirmer struct {
	mu    sync.Mutex
	refs  []string
	block chan struct{}
}

func (c *confirmer) Confirm(_ context.Context, provider, reference string) string {
	c.mu.Lock()
	c.refs = append(c.refs, provider+"/"+reference)
	c.mu.Unlock()
	if c.block != nil {
		<-c.block
	}
	return "pending"
}

func (c *confirmer) asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.refs...)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newHandler(t *testing.T, c *confirmer, workers int) (*Handler, *clock, *prometheus.Registry) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	h := New(Options{
		Confirmer: c, Timeout: time.Second, Workers: workers, Metrics: NewMetrics(reg), Now: clk.Now,
		ValidReference: func(s string) bool { return len(s) <= 64 && !strings.ContainsAny(s, "\x00\n") },
	})
	t.Cleanup(h.Close)
	return h, clk, reg
}

func post(h http.Handler, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec
}

func callbackBody(ref string) string {
	return `{"responseCode":0,"success":true,"message":{"ID":"Berhasil","EN":"Success"},"data":{"refNumber":"` + ref + `","amount":50000}}`
}

func TestCallbackTriggersOneCheck(t *testing.T) {
	t.Parallel()
	c := &confirmer{}
	h, _, reg := newHandler(t, c, 4)
	rec := post(h, "/callbacks/ayopop", callbackBody("ayo-1"))
	if rec.Code != http.StatusOK || rec.Body.String() != `{"outcome":"accepted"}`+"\n" {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
	h.Close() // waits for the check
	if got := c.asked(); len(got) != 1 || got[0] != "ayopop/ayo-1" {
		t.Fatalf("confirmed %v", got)
	}
	if n := testutil.ToFloat64(h.m.checks.WithLabelValues("ayopop", "pending")); n != 1 {
		t.Errorf("checks metric %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "statusbridge_callbacks_total"); err != nil || n != 6 {
		t.Errorf("callbacks_total has %d series (%v); every outcome starts at 0", n, err)
	}
}

func TestCallbackHostile(t *testing.T) {
	t.Parallel()
	c := &confirmer{}
	h, _, _ := newHandler(t, c, 4)
	secret := "SECRET-PAYLOAD-<script>"
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"not JSON", http.MethodPost, "/callbacks/ayopop", "refNumber=" + secret, http.StatusBadRequest},
		{"no data", http.MethodPost, "/callbacks/ayopop", `{"responseCode":0,"success":true,"message":"` + secret + `"}`, http.StatusBadRequest},
		{"repeated member", http.MethodPost, "/callbacks/ayopop", `{"data":{"refNumber":"a","refNumber":"b"}}`, http.StatusBadRequest},
		{"invalid reference", http.MethodPost, "/callbacks/ayopop", callbackBody(strings.Repeat("x", 65)), http.StatusBadRequest},
		{"control character", http.MethodPost, "/callbacks/ayopop", callbackBody(`a\nb`), http.StatusBadRequest},
		{"huge", http.MethodPost, "/callbacks/ayopop", `{"data":{"refNumber":"` + strings.Repeat(secret, MaxBody/len(secret)+1) + `"}}`, http.StatusRequestEntityTooLarge},
		{"GET", http.MethodGet, "/callbacks/ayopop", "", http.StatusMethodNotAllowed},
		{"another provider", http.MethodPost, "/callbacks/iak", callbackBody("x"), http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if strings.Contains(rec.Body.String(), "SECRET") || strings.Contains(rec.Body.String(), "<script>") {
				t.Errorf("the answer reflects the body: %q", rec.Body)
			}
		})
	}
	h.Close()
	if got := c.asked(); len(got) != 0 {
		t.Fatalf("hostile callbacks caused checks: %v", got)
	}
	if n := testutil.ToFloat64(h.m.received.WithLabelValues("ayopop", Malformed)); n != 5 {
		t.Errorf("malformed counted %v times, want 5", n)
	}
	if n := testutil.ToFloat64(h.m.received.WithLabelValues("ayopop", TooLarge)); n != 1 {
		t.Errorf("too_large counted %v times, want 1", n)
	}
}

// TestCallbackFlood: a thousand callbacks for one reference within a
// second cause one check; the next second another.
func TestCallbackFlood(t *testing.T) {
	t.Parallel()
	c := &confirmer{}
	h, clk, _ := newHandler(t, c, 4)
	for range 1000 {
		if rec := post(h, "/callbacks/ayopop", callbackBody("ayo-flood")); rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		clk.Add(500 * time.Microsecond)
	}
	post(h, "/callbacks/ayopop", callbackBody("ayo-other"))
	clk.Add(time.Second)
	post(h, "/callbacks/ayopop", callbackBody("ayo-flood"))
	h.Close()
	got := c.asked()
	if len(got) != 3 {
		t.Fatalf("confirmed %d times (%v), want ayo-flood twice and ayo-other once", len(got), got)
	}
	if n := testutil.ToFloat64(h.m.received.WithLabelValues("ayopop", Coalesced)); n != 999 {
		t.Errorf("coalesced %v, want 999", n)
	}
}

// TestCallbackBusy: with every worker held, a callback for another
// reference is answered 503 (Ayopop retries), and is accepted once a
// worker is free.
func TestCallbackBusy(t *testing.T) {
	t.Parallel()
	c := &confirmer{block: make(chan struct{})}
	h, _, _ := newHandler(t, c, 1)
	if rec := post(h, "/callbacks/ayopop", callbackBody("ayo-a")); rec.Code != http.StatusOK {
		t.Fatalf("first: %d", rec.Code)
	}
	if rec := post(h, "/callbacks/ayopop", callbackBody("ayo-b")); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("second, while busy: %d", rec.Code)
	}
	close(c.block)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if rec := post(h, "/callbacks/ayopop", callbackBody("ayo-b")); rec.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a worker never came free")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.Close()
	if rec := post(h, "/callbacks/ayopop", callbackBody("ayo-c")); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d", rec.Code)
	}
}
