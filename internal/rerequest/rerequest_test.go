package rerequest

import (
	"context"
	"testing"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// TestNewID holds NewID to SPEC §8, computed with another tool:
// printf 'ord-7781-status:1' | sha256sum | cut -c1-16
func TestNewID(t *testing.T) {
	for n, want := range map[int]string{1: "rr-00a18f6891b4e96d", 2: "rr-3b1a492e0484984f"} {
		if got := NewID("ord-7781-status", n); got != want {
			t.Errorf("NewID(ord-7781-status, %d) = %s, want %s", n, got, want)
		}
	}
}

// TestPlanFollowsEachOriginalToItsLatestOutcome: an original is
// re-requested from its latest re-request's outcome, once.
func TestPlanFollowsEachOriginalToItsLatestOutcome(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	topo := topology.Config{EventsStream: "STATUS_EVENTS", Replicas: 1, EventsMaxAge: time.Hour, DuplicateWindow: 10 * time.Minute}
	if _, err := js.CreateStream(ctx, topo.EventsStreamConfig()); err != nil {
		t.Fatal(err)
	}
	publish := func(id, status, reason string, md map[string]string) {
		t.Helper()
		ev := publisher.NewEvent(publisher.Data{RequestID: id, Provider: "iak", Reference: "ref-" + id, Status: status, Reason: reason, Metadata: md, ResolvedAt: time.Now()})
		b, _ := json.Marshal(ev)
		if _, err := js.Publish(ctx, topology.ResolvedSubject("iak", status), b); err != nil {
			t.Fatal(err)
		}
	}
	publish("a", "expired", "auth_rejected", map[string]string{"k": "v"})
	publish(NewID("a", 1), "expired", "auth_rejected", map[string]string{"k": "v", MetaOf: "a", MetaN: "1"})
	publish("b", "expired", "auth_rejected", nil)
	publish("c", "expired", "deadline", nil)
	publish("d", "expired", "auth_rejected", nil)
	publish(NewID("d", 1), "success", "", map[string]string{MetaOf: "d", MetaN: "1"})

	reqs, skipped, err := Plan(ctx, js, "STATUS_EVENTS", Filter{Status: "expired", Reason: "auth_rejected", Since: time.Now().Add(-time.Hour)})
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	got := map[string]Body{}
	for _, r := range reqs {
		got[r.Body.Metadata[MetaOf]] = r.Body
	}
	if len(reqs) != 2 || got["a"].RequestID != NewID("a", 2) || got["a"].Metadata[MetaN] != "2" || got["a"].Metadata["k"] != "v" ||
		got["a"].Reference != "ref-"+NewID("a", 1) || got["b"].RequestID != NewID("b", 1) || got["b"].Metadata[MetaN] != "1" {
		t.Errorf("planned %+v", reqs)
	}
}
