package daemon_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// TestEndToEnd drives requests through a real daemon, a real JetStream
// server and the simulators, and checks the one event each ends with.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.Ayopop.APIKey, c.Ayopop.APISecret = "", "" })
	b := w.StartBridge()

	soon := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, provider, reference, extra string
		status, reason                   string
		calls                            int // provider checks expected (-1: not checked exactly)
		// attempts expected in the event when calls > 0 and they differ:
		// refusals (429, 5xx, connection errors) are calls, not answers.
		attempts int
	}{
		{"success at once", "iak", "success#e2e-1", "", "success", "", 1, 0},
		{"pending three times then success", "iak", "pending*3,success#e2e-2", "", "success", "", 4, 0},
		{"failed", "iak", "pending,failed#e2e-3", "", "failed", "provider_failed", 2, 0},
		{"transient failures then success", "iak", "error500,garbage,html,truncated,reset,success#e2e-4", "", "success", "", 6, 4},
		// At AppotaPay: a 429 lowers the provider's rate for a while, and the
		// IAK rows time IAK's schedule.
		{"429 with Retry-After then success", "appotapay", "ratelimit,success#e2e-5", "", "success", "", 2, 1},
		{"not found until the grace ends", "iak", "notfound#e2e-6", "", "failed", "not_found", -1, 0},
		{"not found then found", "iak", "notfound,success#e2e-7", "", "success", "", 2, 0},
		{"pending until the deadline", "iak", "pending#e2e-8", `,"deadline":"` + soon + `"`, "expired", "deadline", -1, 0},
		{"auth rejected until the deadline", "iak", "autherror#e2e-9", `,"deadline":"` + soon + `"`, "expired", "auth_rejected", -1, 0},
		{"deadline already past: one check", "iak", "pending#e2e-10", `,"deadline":"` + past + `"`, "expired", "deadline", 1, 0},
		{"deadline already past but final", "iak", "success#e2e-11", `,"deadline":"` + past + `"`, "success", "", 1, 0},
		{"provider without credentials", "ayopop", "success#e2e-12", "", "rejected", "provider_not_configured", 0, 0},
		{"unknown provider", "paypal", "x", "", "rejected", "unknown_provider", 0, 0},
		{"bad deadline", "iak", "success#e2e-14", `,"deadline":"tomorrow"`, "rejected", "invalid_request", 0, 0},
		{"deadline too far", "iak", "success#e2e-15", `,"deadline":"2099-01-01T00:00:00Z"`, "rejected", "invalid_request", 0, 0},
		{"metadata not strings", "iak", "success#e2e-16", `,"metadata":{"a":1}`, "rejected", "invalid_request", 0, 0},
	}
	ids := map[string]string{}
	for i, tc := range tests {
		rid := fmt.Sprintf("e2e-%02d", i+1)
		extra := tc.extra
		if !strings.Contains(extra, `"metadata"`) {
			extra += `,"metadata":{"case":"` + tc.name + `"}`
		}
		ids[tc.name] = w.Request(tc.provider, rid, tc.reference, extra)
	}
	// A request missing its reference, and bodies too broken to answer.
	missingRef := w.Request("iak", "e2e-missing-ref", "", "")
	w.Publish("iak", "", `{"request_id":"e2e-no-ref","provider":"iak","metadata":{"k":"v"}}`)
	noRef := publisher.EventID("iak", "e2e-no-ref")
	w.Publish("iak", "", `not json at all`)
	w.Publish("iak", "", `{"provider":"iak","reference":"r"}`)
	w.Publish("iak", "", `{"request_id":"has spaces","provider":"iak","reference":"r"}`)
	w.Publish("iak", "", `{"request_id":"big","provider":"iak","reference":"r","pad":"`+strings.Repeat("x", 70<<10)+`"}`)

	all := []string{missingRef, noRef}
	for _, id := range ids {
		all = append(all, id)
	}
	got := w.WaitEvents(20*time.Second, all...)

	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := got[ids[tc.name]]
			d := e.Event.Data
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("status/reason = %s/%s, want %s/%s (event %s)", d.Status, d.Reason, tc.status, tc.reason, e.Raw)
			}
			if want := topology.ResolvedSubject(tc.provider, tc.status); e.Subject != want {
				t.Errorf("subject %s, want %s", e.Subject, want)
			}
			if e.Header.Get("Nats-Msg-Id") != e.Event.ID {
				t.Errorf("Nats-Msg-Id %q differs from the event id %q", e.Header.Get("Nats-Msg-Id"), e.Event.ID)
			}
			if ct := e.Header.Get("Content-Type"); ct != publisher.ContentType {
				t.Errorf("Content-Type %q", ct)
			}
			if d.RequestID != fmt.Sprintf("e2e-%02d", i+1) || d.Provider != tc.provider {
				t.Errorf("echo: request_id %q provider %q", d.RequestID, d.Provider)
			}
			if tc.status != "rejected" || tc.reason != "invalid_request" {
				if d.Metadata["case"] != tc.name {
					t.Errorf("metadata not echoed: %v", d.Metadata)
				}
			}
			if calls := w.Sim.Calls(tc.provider, tc.reference); tc.calls >= 0 && calls != tc.calls {
				t.Errorf("provider saw %d checks, want %d", calls, tc.calls)
			}
			if want := cmp.Or(tc.attempts, tc.calls); tc.calls > 0 && d.Attempts != want {
				t.Errorf("attempts = %d, want %d", d.Attempts, want)
			}
			if tc.status == "success" && tc.provider == "iak" && (d.ProviderCode != "00" || d.ProviderTransactionID == "" || d.Amount == "" || d.Currency != "IDR") {
				t.Errorf("success event lacks the provider's facts: %s", e.Raw)
			}
			if d.ResolvedAt.Before(d.RequestedAt) || e.Event.Time != d.ResolvedAt {
				t.Errorf("times: requested %v resolved %v time %v", d.RequestedAt, d.ResolvedAt, e.Event.Time)
			}
		})
	}

	t.Run("checks follow the schedule", func(t *testing.T) {
		times := w.Sim.CallTimes("iak", "pending*3,success#e2e-2")
		if len(times) != 4 {
			t.Fatalf("%d checks", len(times))
		}
		// 50ms, 100ms, 200ms (the cap) between checks; JetStream redelivers
		// a little late, never early.
		for i, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
			gap := times[i+1].Sub(times[i])
			if gap < want-5*time.Millisecond || gap > want+time.Second {
				t.Errorf("gap %d = %v, want about %v", i+1, gap, want)
			}
		}
	})

	t.Run("rejected requests echo what they can", func(t *testing.T) {
		for _, id := range []string{missingRef, noRef} {
			d := got[id].Event.Data
			if d.Status != "rejected" || d.Reason != "invalid_request" || d.Reference != "" || d.Attempts != 0 {
				t.Errorf("event %s", got[id].Raw)
			}
			if d.ProviderMessage != "" || d.ProviderCode != "" {
				t.Errorf("rejected event carries provider words: %s", got[id].Raw)
			}
		}
		if md := got[noRef].Event.Data.Metadata; md["k"] != "v" {
			t.Errorf("metadata not echoed on a rejected request: %v", md)
		}
	})

	t.Run("broken bodies are dead-lettered", func(t *testing.T) {
		var reasons []string
		daemontest.WaitFor(t, 10*time.Second, "dead letters", func() bool {
			reasons = nil
			for _, m := range w.DeadLetters() {
				reasons = append(reasons, m.Headers().Get(publisher.HeaderDeadLetterReason))
				if m.Subject() != topology.DeadLetterSubject("iak") {
					t.Errorf("dead letter on %s", m.Subject())
				}
			}
			return len(reasons) == 4
		})
		want := map[string]bool{"invalid_json": true, "missing_request_id": true, "invalid_request_id": true, "too_large": true}
		for _, r := range reasons {
			if !want[r] {
				t.Errorf("unexpected dead-letter reason %q (all: %v)", r, reasons)
			}
			delete(want, r)
		}
		if len(want) > 0 {
			t.Errorf("missing dead-letter reasons %v", want)
		}
	})

	t.Run("nothing is left in the request stream", func(t *testing.T) {
		daemontest.WaitFor(t, 5*time.Second, "empty work queue", func() bool {
			s, err := w.JS.Stream(context.Background(), topology.DefaultRequestsStream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(context.Background())
			return err == nil && info.State.Msgs == 0
		})
	})

	t.Run("endpoints", func(t *testing.T) {
		for path, want := range map[string]string{
			"/healthz": "ok",
			"/readyz":  "ready",
			"/metrics": `statusbridge_events_total{provider="iak",reason="provider_failed",status="failed"} 1`,
		} {
			resp, err := http.Get("http://" + b.HTTPAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
			}
		}
	})

	t.Run("clean shutdown", func(t *testing.T) {
		if err := b.Stop(); err != nil {
			t.Fatalf("run returned %v", err)
		}
		logs := b.Logs.String()
		providertest.AssertNoSecrets(t, providertest.Secrets(w.Creds), logs)
		for _, e := range w.Events() {
			providertest.AssertNoSecrets(t, providertest.Secrets(w.Creds), string(e.Raw))
		}
		if !strings.Contains(logs, `"msg":"request resolved"`) {
			t.Errorf("no resolution was logged")
		}
	})
}

// TestDuplicateRequests checks that a request re-sent with the same
// Nats-Msg-Id is stored once, and that the same request_id published twice
// without one is handled twice, shares one check (the same reference) and
// yields one stored event.
func TestDuplicateRequests(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.StartBridge()
	body := `{"request_id":"dup-1","provider":"iak","reference":"pending,success#dup-1"}`
	first := w.Publish("iak", "dup-1", body)
	second := w.Publish("iak", "dup-1", body)
	if first.Duplicate || !second.Duplicate {
		t.Fatalf("duplicate flags %v %v, want false true", first.Duplicate, second.Duplicate)
	}
	body2 := `{"request_id":"dup-2","provider":"iak","reference":"success#dup-2"}`
	w.Publish("iak", "", body2)
	w.Publish("iak", "", body2)
	got := w.WaitEvents(10*time.Second, publisher.EventID("iak", "dup-1"), publisher.EventID("iak", "dup-2"))
	if n := len(got); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	daemontest.WaitFor(t, 5*time.Second, "both copies of dup-2 handled", func() bool {
		info, err := w.JS.Stream(t.Context(), topology.DefaultRequestsStream)
		return err == nil && info.CachedInfo().State.Msgs == 0
	})
	if n := w.Sim.Calls("iak", "success#dup-2"); n != 1 {
		t.Errorf("dup-2 was checked %d times, want once (the copies share a check)", n)
	}
	if n := len(w.Events()); n != 2 {
		t.Errorf("%d events stored after the duplicate publish, want 2", n)
	}
}

// TestProvisionFalse checks that BRIDGE_PROVISION=false refuses to start
// without the operator's definitions, with a clear message, and binds to
// them once they exist.
func TestProvisionFalse(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.Provision = false })
	err := daemon.Run(t.Context(), w.Config, daemon.Options{})
	if err == nil || !strings.Contains(err.Error(), "BRIDGE_PROVISION=false") || !strings.Contains(err.Error(), topology.DefaultRequestsStream) {
		t.Fatalf("start without streams: %v", err)
	}

	bad := w.Config.Topology()
	bad.AckWait = time.Minute
	cc := bad.ConsumerConfig()
	cc.BackOff = []time.Duration{time.Second, 2 * time.Second}
	cc.MaxDeliver = 5
	if _, err := topology.Provision(t.Context(), w.JS, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := w.JS.CreateOrUpdateConsumer(t.Context(), bad.RequestsStream, cc); err != nil {
		t.Fatal(err)
	}
	err = daemon.Run(t.Context(), w.Config, daemon.Options{})
	if err == nil || !strings.Contains(err.Error(), "BackOff") || !strings.Contains(err.Error(), "MaxDeliver") {
		t.Fatalf("start with an unsafe consumer: %v", err)
	}

	if _, err := topology.Provision(t.Context(), w.JS, w.Config.Topology()); err != nil {
		t.Fatal(err)
	}
	w.StartBridge()
	id := w.Request("iak", "pf-1", "success#pf-1", "")
	w.WaitEvents(10*time.Second, id)
}

// TestInvalidConfig checks that Run refuses an invalid configuration with
// every problem at once (config.Validate's own test lists them) and none of
// them echoing a secret.
func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Concurrency = 0
	c.LogFormat = "xml"
	c.IAK.URL = "ftp://nope"
	c.IAK.APIKey = "super-secret-key-123"
	err := daemon.Run(t.Context(), c, daemon.Options{})
	if err == nil {
		t.Fatal("started with an invalid configuration")
	}
	for _, want := range []string{"invalid configuration", "BRIDGE_CONCURRENCY", "BRIDGE_LOG_FORMAT", "iak: base URL", "username"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "super-secret-key-123") {
		t.Errorf("configuration error leaks a secret")
	}
}

// TestEventsAreValidJSONCloudEvents checks the envelope of a real event.
func TestEventsAreValidJSONCloudEvents(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.StartBridge()
	id := w.Request("iak", "ce-1", "success#ce-1", `,"metadata":{"order_id":"7781"}`)
	e := w.WaitEvents(10*time.Second, id)[id]
	var raw map[string]any
	if err := json.Unmarshal(e.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"specversion": "1.0", "type": publisher.EventType, "source": "/statusbridge/iak",
		"datacontenttype": "application/json", "dataschema": publisher.DataSchema, "subject": "success#ce-1", "id": id,
	} {
		if raw[k] != want {
			t.Errorf("%s = %v, want %v", k, raw[k], want)
		}
	}
	data := raw["data"].(map[string]any)
	if _, ok := data["amount"].(float64); !ok {
		t.Errorf("amount is %T, want a JSON number", data["amount"])
	}
	for _, k := range []string{"provider_status", "provider_code", "provider_message", "provider_transaction_id"} {
		if _, ok := data[k].(string); !ok {
			t.Errorf("%s is %T, want a string", k, data[k])
		}
	}
}

// TestEndToEndAyopopAndAppotaPay runs the other two providers through the
// daemon against their simulators, which check auth as the real APIs do.
func TestEndToEndAyopopAndAppotaPay(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.StartBridge()

	soon := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	// AppotaPay's 429 (app-4) cuts its shared rate, which then climbs back
	// over seconds: its requests with a deadline get room to be checked on
	// a loaded machine.
	later := time.Now().Add(4 * time.Second).UTC().Format(time.RFC3339Nano)
	tests := []struct {
		provider, reference, extra string
		status, reason             string
		calls                      int // -1: not checked exactly
	}{
		{"ayopop", "success#ayo-1", "", "success", "", 1},
		{"ayopop", "pending*2,success#ayo-2", "", "success", "", 3},
		{"ayopop", "pending,failed#ayo-3", "", "failed", "provider_failed", 2},
		{"ayopop", "error503,html,wrongshape,success#ayo-4", "", "success", "", 4},
		{"ayopop", "notfound#ayo-5", "", "failed", "not_found", -1},
		{"ayopop", "autherror#ayo-6", `,"deadline":"` + soon + `"`, "expired", "auth_rejected", -1},
		{"appotapay", "success#app-1", "", "success", "", 1},
		{"appotapay", "pending*2,success#app-2", "", "success", "", 3},
		{"appotapay", "failed#app-3", "", "failed", "provider_failed", 1},
		{"appotapay", "ratelimit,garbage,success#app-4", "", "success", "", 3},
		{"appotapay", "notfound#app-5", "", "failed", "not_found", -1},
		{"appotapay", "badsig#app-6", `,"deadline":"` + later + `"`, "expired", "bad_signature", -1},
		{"appotapay", "badsig,unsigned,success#app-7", "", "success", "", 3},
		{"appotapay", "autherror#app-8", `,"deadline":"` + later + `"`, "expired", "auth_rejected", -1},
		// Path-hostile characters reach the provider as one escaped segment.
		{"appotapay", "success#app-9 a/b?c=d&e ../x%2F ü", "", "success", "", 1},
		{"appotapay", "..", "", "success", "", 2}, // the default script: pending, success
	}
	ids := make([]string, len(tests))
	for i, tc := range tests {
		ids[i] = w.Request(tc.provider, fmt.Sprintf("p-%02d", i), tc.reference, tc.extra)
	}
	got := w.WaitEvents(30*time.Second, ids...)
	for i, tc := range tests {
		t.Run(tc.provider+" "+tc.reference, func(t *testing.T) {
			e := got[ids[i]]
			d := e.Event.Data
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("status/reason = %s/%s, want %s/%s (event %s)", d.Status, d.Reason, tc.status, tc.reason, e.Raw)
			}
			if want := topology.ResolvedSubject(tc.provider, tc.status); e.Subject != want {
				t.Errorf("subject %s, want %s", e.Subject, want)
			}
			if calls := w.Sim.Calls(tc.provider, tc.reference); tc.calls >= 0 && calls != tc.calls {
				t.Errorf("provider saw %d checks, want %d", calls, tc.calls)
			}
			if tc.status == "success" && (d.ProviderTransactionID == "" || d.Amount == "" || d.ProviderCode == "") {
				t.Errorf("success event lacks the provider's facts: %s", e.Raw)
			}
		})
	}
}
