package daemon_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
)

// TestLogsAndWarnings runs a bridge with no provider configured: it starts,
// warns loudly, logs the warnings it was given, and every line is written
// as it is logged (the line saying it started is out before Started is
// called), in one write each.
func TestLogsAndWarnings(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) {
		c.IAK, c.Ayopop, c.AppotaPay = config.Default().IAK, config.Default().Ayopop, config.Default().AppotaPay
		c.LogLevel = "info"
	})
	logs := &lineWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	startedLogs := make(chan string, 1)
	go func() {
		done <- daemon.Run(ctx, w.Config, daemon.Options{
			Log: logs, Version: "v9.9.9", Warnings: []string{"unknown variable BRIDGE_NATSURL; did you mean BRIDGE_NATS_URL?"},
			Started: func(string, string) { startedLogs <- logs.String() },
		})
	}()
	select {
	case l := <-startedLogs:
		if !strings.Contains(l, `"msg":"bridge started"`) || !strings.Contains(l, `"version":"v9.9.9"`) {
			t.Errorf("when Started is called, the logs do not say so yet:\n%s", l)
		}
	case err := <-done:
		t.Fatalf("bridge exited at start: %v\n%s", err, logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("bridge did not start\n%s", logs)
	}
	id := w.Request("iak", "nothing-configured", "r", "")
	if d := w.WaitEvents(10*time.Second, id)[id].Event.Data; d.Status != "rejected" || d.Reason != "provider_not_configured" {
		t.Errorf("event: %+v", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var warnings []string
	for _, l := range daemontest.LogLines(t, logs.String()) {
		if l["level"] == "WARN" {
			warnings = append(warnings, l["msg"].(string))
		}
	}
	for _, want := range []string{
		"unknown variable BRIDGE_NATSURL; did you mean BRIDGE_NATS_URL?",
		"no provider is configured: every request will be rejected with provider_not_configured; set BRIDGE_IAK_*",
	} {
		found := false
		for _, w := range warnings {
			found = found || strings.HasPrefix(w, want)
		}
		if !found {
			t.Errorf("no warning %q in %q", want, warnings)
		}
	}
	for i, write := range logs.writes() {
		if strings.Count(write, "\n") != 1 || !strings.HasSuffix(write, "\n") {
			t.Errorf("write %d is not one line: %q", i, write)
		}
	}
}

// lineWriter records every Write.
type lineWriter struct {
	mu   sync.Mutex
	list []string
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, string(p))
	return len(p), nil
}

func (l *lineWriter) writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

func (l *lineWriter) String() string { return strings.Join(l.writes(), "") }
