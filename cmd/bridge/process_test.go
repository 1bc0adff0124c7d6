package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
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

// syncBuffer collects a command's output.
type syncBuffer = daemontest.SyncBuffer

// clearBridgeEnv unsets every BRIDGE_* variable for the test, so a
// developer's shell cannot change what a test runs.
func clearBridgeEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BRIDGE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// bridgeProcess is a bridge running as a child process.
type bridgeProcess struct {
	cmd     *exec.Cmd
	logs    *syncBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

// startProcess runs `bridge run` in a child process, configured with cfg
// through its environment alone.
func startProcess(t *testing.T, cfg config.Config) *bridgeProcess {
	t.Helper()
	p := &bridgeProcess{logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "run")
	p.cmd.Env = []string{"STATUSBRIDGE_TEST_AS_BRIDGE=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, cfg.Environ()...)
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

// processConfig is the schedule of the process tests: short timeouts and a
// short ack wait, so that work a killed bridge held comes back within
// seconds.
func processConfig(c *config.Config) {
	c.RequestTimeout = time.Second
	c.PublishTimeout = time.Second
	c.AckWait = 3 * time.Second
	c.ShutdownTimeout = 3 * time.Second
	c.LogLevel = "info"
	// Every request's script hangs once ("timeout"), which to a circuit
	// breaker is a provider that keeps failing; these tests are about
	// processes, so the breaker stays out of the way.
	c.Breaker.Failures = 1 << 20
}

// TestCrashLosesNothing kills a bridge with SIGKILL while hundreds of
// requests are parked or in flight, starts another, and checks that every
// request resolves exactly once, under the id derived from it.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	w := daemontest.NewWorld(t, processConfig, func(c *config.Config) {
		c.Backoff.Initial, c.Backoff.Max = 100*time.Millisecond, 400*time.Millisecond
	})
	w.Provision()
	scripts := []string{"success", "pending*3,success", "pending*6,success", "timeout,success", "pending*2,failed", "error500,pending,success"}
	const n = 300
	want := map[string]string{} // event id → status
	for i := range n {
		script := scripts[i%len(scripts)]
		ref := fmt.Sprintf("%s#crash-%03d", script, i)
		id := w.Request("iak", fmt.Sprintf("crash-%03d", i), ref, "")
		want[id] = "success"
		if script == "pending*2,failed" {
			want[id] = "failed"
		}
	}

	first := startProcess(t, w.Config)
	daemontest.WaitFor(t, 30*time.Second, "some events before the crash", func() bool { return len(w.Events()) >= 60 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	before := len(w.Events())
	t.Logf("killed the bridge with %d of %d events published", before, n)
	if before == n {
		t.Fatal("everything resolved before the crash; the test proves nothing")
	}

	startProcess(t, w.Config)
	ids := make([]string, 0, n)
	for id := range want {
		ids = append(ids, id)
	}
	got := w.WaitEvents(60*time.Second, ids...)
	if len(got) != n {
		t.Errorf("%d events, want %d", len(got), n)
	}
	if all := len(w.Events()); all != n {
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
	// Not parallel: it times the shutdown.
	w := daemontest.NewWorld(t, processConfig)
	w.Provision()
	const n = 200
	var ids []string
	for i := range n {
		ref := fmt.Sprintf("pending,timeout,success#term-%03d", i)
		ids = append(ids, w.Request("iak", fmt.Sprintf("term-%03d", i), ref, ""))
	}
	p := startProcess(t, w.Config)
	daemontest.WaitFor(t, 30*time.Second, "checks in flight", func() bool { return w.Sim.TotalCalls("iak") > n })
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
	startProcess(t, w.Config)
	got := w.WaitEvents(60*time.Second, ids...)
	for _, id := range ids {
		if got[id].Event.Data.Status != publisher.StatusSuccess {
			t.Errorf("event %s: %s", id, got[id].Raw)
		}
	}
}
