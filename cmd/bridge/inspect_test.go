package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/rerequest"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// command runs `bridge args...` and returns its stdout, stderr and exit
// code.
func command(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestStateCommands drives bridge inspect, cancel, rerequest and
// deadletters against a running bridge, and checks what they print and
// their exit codes.
func TestStateCommands(t *testing.T) {
	clearBridgeEnv(t)
	w := daemontest.NewWorld(t, func(c *config.Config) {
		c.Backoff.Initial, c.Backoff.Max, c.Backoff.Jitter = 2*time.Second, 2*time.Second, 0
	})
	w.StartBridge()
	url := "--nats-url=" + w.NATS.ClientURL()

	w.Request("iak", "cli-parked", "pending#cli-1", "")
	daemontest.WaitFor(t, 10*time.Second, "cli-parked to be parked", func() bool {
		out, _, _ := command(t, "inspect", url, "cli-parked")
		return strings.Contains(out, `"state":"parked"`)
	})

	t.Run("inspect", func(t *testing.T) {
		out, _, code := command(t, "inspect", url, "cli-parked")
		var in map[string]any
		if err := json.Unmarshal([]byte(out), &in); err != nil || code != 0 || strings.Count(out, "\n") != 1 {
			t.Fatalf("exit %d, %v: %q", code, err, out)
		}
		for _, k := range []string{"request_id", "provider", "reference", "state", "attempts", "last_outcome", "next_check_at", "deadline"} {
			if in[k] == nil {
				t.Errorf("no %s in %s", k, out)
			}
		}
		if _, ok := in["event_id"]; ok || strings.Contains(out, "null") {
			t.Errorf("fields that do not apply are printed: %s", out)
		}
		if out, _, code := command(t, "inspect", url, "cli-nope"); code != 1 || out != `{"request_id":"cli-nope","state":"unknown"}`+"\n" {
			t.Errorf("unknown id: exit %d, %q", code, out)
		}
		for _, args := range [][]string{{"inspect", url}, {"inspect", url, "a", "b"}, {"inspect", url, "has spaces"}, {"inspect", "--bogus"}} {
			if _, stderr, code := command(t, args...); code != exitUsage {
				t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, stderr)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		out, _, code := command(t, "cancel", url, "cli-parked")
		if code != 0 || !strings.Contains(out, `"state":"resolved"`) || !strings.Contains(out, `"reason":"cancelled"`) {
			t.Fatalf("exit %d: %s", code, out)
		}
		w.WaitEvents(10*time.Second, publisher.EventID("iak", "cli-parked"))
		again, _, code := command(t, "cancel", url, "cli-parked")
		if code != 0 || again != out {
			t.Errorf("second cancel: exit %d, %s; first printed %s", code, again, out)
		}
		if out, _, code := command(t, "cancel", url, "cli-nope"); code != 1 || !strings.Contains(out, `"state":"unknown"`) {
			t.Errorf("cancel of an unknown id: exit %d, %s", code, out)
		}
	})

	t.Run("rerequest", func(t *testing.T) {
		soon := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
		orig := w.Request("iak", "cli-auth", "autherror*2,success#cli-2", `,"deadline":"`+soon+`","metadata":{"order_id":"7781"}`)
		w.WaitEvents(10*time.Second, orig)
		newID := rerequest.NewID("cli-auth", 1)
		if !strings.HasPrefix(newID, "rr-") || len(newID) != 19 {
			t.Fatalf("new id %q", newID)
		}

		out, stderr, code := command(t, "rerequest", url, "--status", "expired", "--reason", "auth_rejected", "--since", "1h")
		var r rerequest.Request
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
			t.Fatalf("dry run: exit %d, %v: %q %s", code, err, out, stderr)
		}
		want := rerequest.Body{RequestID: newID, Provider: "iak", Reference: "autherror*2,success#cli-2",
			Metadata: map[string]string{"order_id": "7781", "rerequest_of": "cli-auth", "rerequest_n": "1"}}
		if r.Subject != "status.requested.iak" || r.EventID != orig || r.Body.RequestID != want.RequestID || r.Body.Reference != want.Reference ||
			len(r.Body.Metadata) != 3 || r.Body.Metadata["rerequest_of"] != "cli-auth" || r.Body.Metadata["order_id"] != "7781" {
			t.Errorf("dry run planned %+v, want %+v", r, want)
		}
		if !strings.Contains(stderr, "dry run") {
			t.Errorf("stderr %q", stderr)
		}
		if n := w.StreamInfo(topology.DefaultRequestsStream).State.LastSeq; n != 2 {
			t.Errorf("the dry run published: the requests stream's last sequence is %d", n)
		}

		_, stderr, code = command(t, "rerequest", url, "--status", "expired", "--reason", "auth_rejected", "--since", "1h", "--send")
		if code != 0 || !strings.Contains(stderr, "sent 1 of 1") {
			t.Fatalf("send: exit %d, %s", code, stderr)
		}
		id := publisher.EventID("iak", newID)
		ev := w.WaitEvents(15*time.Second, id)[id].Event.Data
		if ev.Status != "success" || ev.Metadata["rerequest_of"] != "cli-auth" || ev.Metadata["order_id"] != "7781" || ev.Reference != "autherror*2,success#cli-2" {
			t.Errorf("the re-request's event: %+v", ev)
		}
		// Done: the original has a later re-request, and the re-request
		// succeeded, so nothing is left to re-request.
		if out, _, code := command(t, "rerequest", url, "--status", "expired", "--reason", "auth_rejected", "--since", "1h"); code != 0 || out != "" {
			t.Errorf("after the re-request: exit %d, %q", code, out)
		}
		// The cancelled one is chosen by its reason.
		out, _, _ = command(t, "rerequest", url, "--status", "expired", "--reason", "cancelled", "--since", "1h")
		if !strings.Contains(out, rerequest.NewID("cli-parked", 1)) || strings.Count(out, "\n") != 1 {
			t.Errorf("rerequest of the cancelled: %q", out)
		}
		for _, args := range [][]string{{"rerequest", url}, {"rerequest", url, "--status", "expired"}, {"rerequest", url, "--since", "1h"}} {
			if _, _, code := command(t, args...); code != exitUsage {
				t.Errorf("%v: exit %d", args, code)
			}
		}
	})

	t.Run("deadletters", func(t *testing.T) {
		w.Publish("iak", "", `not json at all`)
		w.Publish("iak", "", "\x1b[2J{\"request_id\":\"has spaces\"}\r")
		daemontest.WaitFor(t, 10*time.Second, "two dead letters", func() bool { return len(w.DeadLetters()) == 2 })

		out, _, code := command(t, "deadletters", url, "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQUENCE") {
			t.Fatalf("list: exit %d:\n%s", code, out)
		}
		// The bridge handles the two at once: find each by its size.
		var first, second string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) != 5 || f[2] != "status.deadletter.iak" || f[3] != "invalid_json" {
				t.Errorf("list line %q", l)
				continue
			}
			if f[4] == "15" {
				first = f[0]
			} else {
				second = f[0]
			}
		}
		out, _, code = command(t, "deadletters", url, "show", first)
		if code != 0 || !strings.Contains(out, "Statusbridge-Deadletter-Reason: invalid_json") || !strings.Contains(out, "body:\nnot json at all\n") {
			t.Errorf("show %s: exit %d:\n%s", first, code, out)
		}
		out, _, _ = command(t, "deadletters", url, "show", second)
		if strings.ContainsAny(out, "\x1b\r") || !strings.Contains(out, strconv.Quote("\x1b[2J")[1:7]) {
			t.Errorf("show %s printed the body raw:\n%q", second, out)
		}
		if n := w.StreamInfo(topology.DefaultDeadLetterStream).State.Consumers; n != 0 {
			t.Errorf("left %d consumers", n)
		}
		for _, args := range [][]string{{"deadletters", url}, {"deadletters", url, "show"}, {"deadletters", url, "show", "x"}, {"deadletters", url, "drop"}} {
			if _, _, code := command(t, args...); code != exitUsage {
				t.Errorf("%v: exit %d", args, code)
			}
		}
		if _, _, code := command(t, "deadletters", url, "show", "999"); code != 1 {
			t.Errorf("show of a missing sequence: exit %d", code)
		}
	})
}
