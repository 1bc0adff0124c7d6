package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/publisher"
)

// TestMain lets the test binary act as the bridge binary, so process tests
// can kill a real bridge process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("STATUSBRIDGE_TEST_AS_BRIDGE") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bridgeProcess is a bridge running as a child process.
type bridgeProcess struct {
	cmd     *exec.Cmd
	logs    *syncBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

// startProcess runs the bridge in a child process with the current
// environment.
func startProcess(t *testing.T) *bridgeProcess {
	t.Helper()
	p := &bridgeProcess{logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "run")
	p.cmd.Env = append(os.Environ(), "STATUSBRIDGE_TEST_AS_BRIDGE=1")
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// TestCrashLosesNothing kills a bridge with SIGKILL while hundreds of
// requests are parked or in flight, starts another, and checks that every
// request resolves exactly once, under the id derived from it.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	w := newWorld(t, map[string]string{
		"BRIDGE_REQUEST_TIMEOUT":  "1s",
		"BRIDGE_PUBLISH_TIMEOUT":  "1s",
		"BRIDGE_ACK_WAIT":         "3s",
		"BRIDGE_SHUTDOWN_TIMEOUT": "3s",
		"BRIDGE_BACKOFF_INITIAL":  "100ms",
		"BRIDGE_BACKOFF_MAX":      "400ms",
		"BRIDGE_LOG_LEVEL":        "info",
	})
	w.provision()
	scripts := []string{"success", "pending*3,success", "pending*6,success", "timeout,success", "pending*2,failed", "error500,pending,success"}
	const n = 300
	want := map[string]string{} // event id → status
	for i := range n {
		script := scripts[i%len(scripts)]
		ref := fmt.Sprintf("%s#crash-%03d", script, i)
		id := w.request("iak", fmt.Sprintf("crash-%03d", i), ref, "")
		want[id] = "success"
		if script == "pending*2,failed" {
			want[id] = "failed"
		}
	}

	first := startProcess(t)
	waitFor(t, 30*time.Second, "some events before the crash", func() bool { return len(w.events()) >= 60 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	before := len(w.events())
	t.Logf("killed the bridge with %d of %d events published", before, n)
	if before == n {
		t.Fatal("everything resolved before the crash; the test proves nothing")
	}

	startProcess(t)
	ids := make([]string, 0, n)
	for id := range want {
		ids = append(ids, id)
	}
	got := w.waitEvents(60*time.Second, ids...)
	if len(got) != n {
		t.Errorf("%d events, want %d", len(got), n)
	}
	if all := len(w.events()); all != n {
		t.Errorf("the events stream holds %d events for %d requests", all, n)
	}
	for id, status := range want {
		if s := got[id].Event.Data.Status; s != status {
			t.Errorf("event %s: status %s, want %s", id, s, status)
		}
	}
}

// TestSigtermUnderLoad sends SIGTERM while checks are in flight: the bridge
// exits 0 within its shutdown timeout, and a new one finishes the work.
func TestSigtermUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	w := newWorld(t, map[string]string{
		"BRIDGE_REQUEST_TIMEOUT":  "1s",
		"BRIDGE_PUBLISH_TIMEOUT":  "1s",
		"BRIDGE_ACK_WAIT":         "3s",
		"BRIDGE_SHUTDOWN_TIMEOUT": "3s",
		"BRIDGE_LOG_LEVEL":        "info",
	})
	w.provision()
	const n = 200
	var ids []string
	for i := range n {
		ref := fmt.Sprintf("pending,timeout,success#term-%03d", i)
		ids = append(ids, w.request("iak", fmt.Sprintf("term-%03d", i), ref, ""))
	}
	p := startProcess(t)
	waitFor(t, 30*time.Second, "checks in flight", func() bool { return w.sim.TotalCalls("iak") > n })
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.waitErr != nil {
			t.Fatalf("bridge exited with %v after SIGTERM\n%s", p.waitErr, p.logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("bridge still running 10s after SIGTERM")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("shutdown took %v, over the 3s shutdown timeout", d)
	}
	startProcess(t)
	got := w.waitEvents(60*time.Second, ids...)
	for _, id := range ids {
		if got[id].Event.Data.Status != publisher.StatusSuccess {
			t.Errorf("event %s: %s", id, got[id].Raw)
		}
	}
}
