package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/micro"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/service"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// parkedWorld checks every request every 2 s: long enough to find one
// parked, short enough to see its delivery come back.
func parkedWorld(t *testing.T) *world {
	return newWorld(t, func(c *config.Config) {
		c.Backoff.Initial, c.Backoff.Max, c.Backoff.Jitter = 2*time.Second, 2*time.Second, 0
	})
}

func (w *world) call(subject, id string) subscriber.Inspection {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := service.Call(ctx, w.NC, subject, id)
	if err != nil {
		w.t.Fatalf("%s %s: %v", subject, id, err)
	}
	return in
}

// waitParked waits until inspect finds the request parked after at least
// attempts answered checks.
func (w *world) waitParked(id string, attempts int) subscriber.Inspection {
	w.t.Helper()
	var in subscriber.Inspection
	daemontest.WaitFor(w.t, 10*time.Second, id+" parked", func() bool {
		in = w.call(service.InspectSubject, id)
		return in.State == subscriber.StateParked && in.Attempts != nil && *in.Attempts >= attempts
	})
	return in
}

func TestInspect(t *testing.T) {
	t.Parallel()
	w := parkedWorld(t)
	w.StartBridge()
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	w.Request("iak", "insp-parked", "pending#insp-1", `,"deadline":"`+deadline.Format(time.RFC3339)+`"`)
	done := w.Request("ayopop", "insp-done", "success#insp-2", "")

	t.Run("parked", func(t *testing.T) {
		in := w.waitParked("insp-parked", 1)
		if in.Provider != "iak" || in.Reference != "pending#insp-1" || in.LastOutcome != "pending" || !in.Deadline.Equal(deadline) {
			t.Errorf("parked request: %+v", in)
		}
		if in.NextCheckAt.IsZero() || in.NextCheckAt.After(time.Now().Add(3*time.Second)) {
			t.Errorf("next_check_at %v, want within the 2 s schedule", in.NextCheckAt)
		}
		if in.EventID != "" || in.Status != "" {
			t.Errorf("a parked request shows an event: %+v", in)
		}
	})
	t.Run("resolved", func(t *testing.T) {
		w.WaitEvents(10*time.Second, done)
		in := w.call(service.InspectSubject, "insp-done")
		if in.State != subscriber.StateResolved || in.EventID != done || in.Status != "success" || in.Attempts == nil || *in.Attempts != 1 || in.Provider != "ayopop" {
			t.Errorf("resolved request: %+v", in)
		}
		if !in.NextCheckAt.IsZero() {
			t.Errorf("a resolved request has a next check: %+v", in)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		in := w.call(service.InspectSubject, "never-published")
		b, _ := json.Marshal(in)
		if string(b) != `{"request_id":"never-published","state":"unknown"}` {
			t.Errorf("unknown request: %s", b)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		id := w.Request("iak", "insp-bad", "x", `,"deadline":"tomorrow"`)
		w.WaitEvents(10*time.Second, id)
		in := w.call(service.InspectSubject, "insp-bad")
		if in.State != subscriber.StateResolved || in.Status != "rejected" || in.Reason != "invalid_request" || in.EventID != id {
			t.Errorf("rejected request: %+v", in)
		}
	})
}

// TestCancel: a cancelled request's event is expired/cancelled, published
// once; the parked delivery, when it comes back, is acknowledged without a
// check; a second cancel changes nothing.
func TestCancel(t *testing.T) {
	t.Parallel()
	w := parkedWorld(t)
	w.StartBridge()
	id := w.Request("iak", "cancel-1", "pending#cancel-1", `,"metadata":{"order_id":"7781"}`)
	w.waitParked("cancel-1", 1)

	in := w.call(service.CancelSubject, "cancel-1")
	if in.State != subscriber.StateResolved || in.Status != "expired" || in.Reason != "cancelled" || in.EventID != id {
		t.Fatalf("cancel answered %+v", in)
	}
	calls := w.Sim.Calls("iak", "pending#cancel-1")
	ev := w.WaitEvents(10*time.Second, id)[id]
	d := ev.Event.Data
	if ev.Subject != topology.ResolvedSubject("iak", "expired") || d.Status != "expired" || d.Reason != publisher.ReasonCancelled ||
		d.Metadata["order_id"] != "7781" || d.Reference != "pending#cancel-1" || d.Attempts < 1 {
		t.Errorf("event: %s", ev.Raw)
	}
	// The parked delivery comes back within the schedule's 2 s and is
	// acknowledged: the work queue empties, with no check and no event.
	w.WaitSettled(10*time.Second, 1, 0)
	if got := w.Sim.Calls("iak", "pending#cancel-1"); got != calls {
		t.Errorf("the provider was checked %d times after the cancel", got-calls)
	}
	if d := cmp.Diff(in, w.call(service.CancelSubject, "cancel-1")); d != "" {
		t.Errorf("a second cancel changed the request (-first +second):\n%s", d)
	}
	if u := w.call(service.CancelSubject, "cancel-unknown"); u.State != subscriber.StateUnknown {
		t.Errorf("cancel of an unknown id: %+v", u)
	}
	// A resolved request is left as it is.
	done := w.Request("iak", "cancel-done", "success#cancel-2", "")
	w.WaitEvents(10*time.Second, done)
	if r := w.call(service.CancelSubject, "cancel-done"); r.Status != "success" || r.State != subscriber.StateResolved {
		t.Errorf("cancel of a resolved request: %+v", r)
	}
	w.WaitSettled(10*time.Second, 2, 0)
}

// TestInspectAcrossRestartAndReplicas: the state lives in JetStream, so a
// restarted bridge and every replica answer for every request, and a cancel
// through one replica settles a request another one holds.
func TestInspectAcrossRestartAndReplicas(t *testing.T) {
	t.Parallel()
	w := parkedWorld(t)
	b := w.StartBridge()
	w.Request("iak", "rr-1", "pending#rr-1", "")
	w.Request("appotapay", "rr-2", "pending#rr-2", "")
	w.waitParked("rr-1", 1)
	w.waitParked("rr-2", 1)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	// No bridge: nobody answers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := service.Call(ctx, w.NC, service.InspectSubject, "rr-1"); err == nil {
		t.Fatal("an answer with no bridge running")
	}

	w.StartBridge()
	w.StartBridge()
	w.waitParked("rr-1", 2) // counted on from the first bridge's check
	id := publisher.EventID("appotapay", "rr-2")
	if in := w.call(service.CancelSubject, "rr-2"); in.Reason != "cancelled" {
		t.Fatalf("cancel answered %+v", in)
	}
	w.WaitEvents(10*time.Second, id)
	// Every call is answered once, by one of the two replicas.
	for range 20 {
		if in := w.call(service.InspectSubject, "rr-2"); in.State != subscriber.StateResolved || in.Reason != "cancelled" {
			t.Fatalf("inspect after the cancel: %+v", in)
		}
	}
	daemontest.WaitFor(t, 10*time.Second, "rr-2's delivery to be acknowledged", func() bool {
		return w.StreamInfo(topology.DefaultRequestsStream).State.Msgs == 1 // rr-1 only
	})
	if n := len(w.Events()); n != 1 {
		t.Errorf("%d events, want the cancelled one", n)
	}
}

// TestServiceDiscoverable: `nats micro ls/info/ping` find the service and
// its two endpoints.
func TestServiceDiscoverable(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.StartBridge()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := w.NC.RequestWithContext(ctx, "$SRV.INFO."+service.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "statusbridge" || info.Version != "0.0.0-test" {
		t.Errorf("service %s %s", info.Name, info.Version)
	}
	subjects := map[string]string{}
	for _, e := range info.Endpoints {
		subjects[e.Name] = e.Subject
	}
	if subjects["inspect"] != "status.inspect" || subjects["cancel"] != "status.cancel" {
		t.Errorf("endpoints %v", subjects)
	}
	if _, err := w.NC.RequestWithContext(ctx, "$SRV.PING."+service.Name, nil); err != nil {
		t.Errorf("ping: %v", err)
	}
}

// TestServiceRefusesHostileBodies: bodies that are no request_id get a
// micro error that does not echo them.
func TestServiceRefusesHostileBodies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.StartBridge()
	for name, body := range map[string]string{
		"empty":         "",
		"huge":          strings.Repeat("a", 1<<19),
		"not UTF-8":     "ord-\xff\xfe",
		"too long":      strings.Repeat("b", 129),
		"spaces inside": "ord 1 <script>",
		"control":       "ord\x1b[2J",
	} {
		for _, subject := range []string{service.InspectSubject, service.CancelSubject} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			msg, err := w.NC.RequestWithContext(ctx, subject, []byte(body))
			cancel()
			if err != nil {
				t.Fatalf("%s, %s: %v", name, subject, err)
			}
			if code := msg.Header.Get(micro.ErrorCodeHeader); code != "400" {
				t.Errorf("%s, %s: error code %q, want 400", name, subject, code)
			}
			desc := msg.Header.Get(micro.ErrorHeader)
			if len(body) > 3 && strings.Contains(desc+string(msg.Data), body[:4]) || len(desc) > 200 {
				t.Errorf("%s, %s: the answer echoes the body: %q %q", name, subject, desc, msg.Data)
			}
			_, err = service.Call(context.Background(), w.NC, subject, body)
			var serr *service.Error
			if !errors.As(err, &serr) {
				t.Errorf("%s, %s: Call returned %v, want a *service.Error", name, subject, err)
			}
		}
	}
}
