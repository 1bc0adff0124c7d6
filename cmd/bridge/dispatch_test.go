package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestExitWithParent(t *testing.T) {
	t.Parallel()
	var parent atomic.Int64
	parent.Store(4242)
	ctx, stop := exitWithParent(context.Background(), time.Millisecond, func() int { return int(parent.Load()) })
	defer stop()
	select {
	case <-ctx.Done():
		t.Fatal("ended while the parent is there")
	case <-time.After(50 * time.Millisecond):
	}
	parent.Store(1) // adopted by init
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("did not end when the parent went away")
	}
}

// TestSandboxStopsWithItsParent starts `bridge sandbox` in the background
// of a shell, as `go run ... &` does, and kills the shell: the sandbox
// exits by itself instead of holding its ports.
func TestSandboxStopsWithItsParent(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sh := exec.Command("/bin/sh", "-c", `"$0" sandbox --no-demo --listen 127.0.0.1:0 --http 127.0.0.1:0 & echo "pid $!"; wait`, os.Args[0])
	sh.Env = []string{"STATUSBRIDGE_TEST_AS_BRIDGE=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") {
			sh.Env = append(sh.Env, kv)
		}
	}
	sh.Stdout, sh.Stderr = w, w
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the shell and the sandbox hold it now

	lines := make(chan string)
	go func() {
		defer close(lines) // at EOF: every holder of the pipe is gone
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var pid int
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the sandbox exited at start")
			}
			if p, found := strings.CutPrefix(l, "pid "); found {
				pid, _ = strconv.Atoi(p)
				t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // should it still run
			}
			ready = strings.HasPrefix(l, "sandbox ready")
		case <-time.After(30 * time.Second):
			t.Fatal("the sandbox did not start")
		}
	}
	if err := sh.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return // the sandbox exited
			}
		case <-deadline:
			t.Fatalf("the sandbox (pid %d) still runs 15s after its parent was killed", pid)
		}
	}
}
