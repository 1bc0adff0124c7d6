package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// rolesWorld runs a bridge as the `bridge` user of deploy/nats/nats.conf
// on a server started from that file, after the provisioner made its
// streams, consumer and buckets. configure changes the bridge's settings.
func rolesWorld(t *testing.T, configure ...func(*daemontest.World)) (w *daemontest.World, url string, passwords map[string]string) {
	t.Helper()
	w = daemontest.NewWorld(t)
	s, passwords := daemontest.StartNATSFromConfig(t, filepath.Join(deployDir, "nats", "nats.conf"))
	w.UseNATS(s.ClientURL(), nats.UserInfo("provisioner", passwords["provisioner"]))
	if _, err := topology.Provision(t.Context(), w.JS, w.Config.Topology()); err != nil {
		t.Fatal(err)
	}
	w.Config.NatsUser, w.Config.NatsPassword, w.Config.Provision = "bridge", providers.Secret(passwords["bridge"]), false
	for _, f := range configure {
		f(w)
	}
	w.StartBridge()
	return w, s.ClientURL(), passwords
}

// asUser sets the BRIDGE_NATS_* variables a command run by a test reads to
// connect to url as user.
func asUser(t *testing.T, url, user, password string) {
	t.Helper()
	clearBridgeEnv(t)
	file := filepath.Join(t.TempDir(), "nats-password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BRIDGE_NATS_URL", url)
	t.Setenv("BRIDGE_NATS_USER", user)
	t.Setenv("BRIDGE_NATS_PASSWORD_FILE", file)
}

// TestRequestAsRequester runs `bridge request --wait` with the requester's
// role alone: it publishes, watches the events stream and prints the event,
// also when the request was a duplicate whose event is already stored.
func TestRequestAsRequester(t *testing.T) {
	_, url, passwords := rolesWorld(t)
	asUser(t, url, "requester", passwords["requester"])
	for _, attempt := range []string{"first", "duplicate"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"request", "--provider", "iak", "--reference", "pending,success#roles-wait", "--request-id", "roles-wait", "--wait"}, &stdout, &stderr)
		cancel()
		if err != nil {
			t.Fatalf("%s: bridge request as requester: %v\n%s", attempt, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), `"status": "success"`) || !strings.Contains(stderr.String(), "duplicate="+map[string]string{"first": "false", "duplicate": "true"}[attempt]) {
			t.Errorf("%s: stdout %s\nstderr %s", attempt, stdout.String(), stderr.String())
		}
	}
}
