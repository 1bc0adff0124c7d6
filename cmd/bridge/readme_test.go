package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func between(t *testing.T, s, begin, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, begin)
	if !ok {
		t.Fatalf("marker %q missing", begin)
	}
	inside, _, ok := strings.Cut(after, end)
	if !ok {
		t.Fatalf("marker %q missing", end)
	}
	return inside
}

func TestReadmeGoExampleIsThisFile(t *testing.T) {
	t.Parallel()
	readme := between(t, readFile(t, "../../README.md"), "<!-- readme-example:begin -->\n```go\n", "```\n<!-- readme-example:end -->")
	code := between(t, readFile(t, "readme_example_test.go"), "// readme-example:begin\n", "\n// readme-example:end\n")
	if readme != code {
		t.Error("the README's Go example differs from readme_example_test.go: copy one to the other")
	}
}

// TestReadmeGoExample runs the README's requester and notifier against a
// bridge: each request's event reaches the notifier once.
func TestReadmeGoExample(t *testing.T) {
	t.Parallel()
	w := daemontest.NewWorld(t)
	w.StartBridge()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, r := range []struct{ id, provider, reference string }{
		{"readme-1", "iak", "pending,success#readme-1"},
		{"readme-2", "ayopop", "failed#readme-2"},
		{"readme-1", "iak", "pending,success#readme-1"}, // re-sent: deduplicated
	} {
		if err := requestStatus(ctx, w.JS, r.id, r.provider, r.reference); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	seenIDs := map[string]bool{}
	got := map[string]resolvedEvent{}
	done := make(chan struct{})
	seen := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		was := seenIDs[id]
		seenIDs[id] = true
		return was
	}
	handle := func(e resolvedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[e.Data.RequestID]; dup {
			t.Errorf("event for %s handled twice", e.Data.RequestID)
		}
		got[e.Data.RequestID] = e
		if len(got) == 2 {
			close(done)
		}
		return nil
	}
	notifyDone := make(chan error, 1)
	go func() { notifyDone <- notify(ctx, w.JS, seen, handle) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("events handled: %v", got)
	}
	cancel()
	if err := <-notifyDone; err != nil {
		t.Fatal(err)
	}
	if e := got["readme-1"]; e.Data.Status != publisher.StatusSuccess || e.Data.Metadata["order_id"] != "7781" || e.ID != publisher.EventID("iak", "readme-1") {
		t.Errorf("readme-1: %+v", e)
	}
	if e := got["readme-2"]; e.Data.Status != publisher.StatusFailed || e.Data.Reason != publisher.ReasonProviderFailed {
		t.Errorf("readme-2: %+v", e)
	}
}

// TestReadmeConfiguration keeps the README's configuration table and the
// code in step: every variable the code reads is documented, and every
// BRIDGE_ name the README mentions exists.
func TestReadmeConfiguration(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := config.PrintVariables(&out); err != nil {
		t.Fatal(err)
	}
	var known []string
	for _, line := range strings.Split(out.String(), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			known = append(known, f[0])
		}
	}
	if len(known) < 40 {
		t.Fatalf("bridge config printed %d variables", len(known))
	}
	readme := readFile(t, "../../README.md")
	perProvider := regexp.MustCompile(`^BRIDGE_(IAK|AYOPOP|APPOTAPAY)_(BACKOFF|RATE)_`)
	for _, name := range known {
		documented := strings.Contains(readme, "`"+name+"`")
		if base, ok := strings.CutSuffix(name, "_FILE"); ok {
			// Written as "`BRIDGE_X_API_KEY` (`_FILE`)" in the table.
			documented = regexp.MustCompile("`" + base + "`[^|]*\\(`_FILE`\\)").MatchString(readme)
		}
		if perProvider.MatchString(name) {
			documented = strings.Contains(readme, "`BRIDGE_<PROVIDER>_BACKOFF_INITIAL`") && strings.Contains(readme, "`BRIDGE_<PROVIDER>_RATE_LIMIT`")
		}
		if !documented {
			t.Errorf("%s is not in the README's configuration table", name)
		}
	}
	for _, name := range regexp.MustCompile(`BRIDGE_[A-Z0-9_]*[A-Z0-9]`).FindAllString(readme, -1) {
		if !slices.Contains(known, name) && !strings.HasPrefix(name, "BRIDGE_PROVIDER") {
			t.Errorf("the README names %s, which the code does not read", name)
		}
	}
}
