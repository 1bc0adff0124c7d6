package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

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
	s, passwords := daemontest.StartNATSFromConfig(t, filepath.Join(deployDir, "nats", "nats.conf"), nil)
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

// TestVerify signs events with an account seed and checks them with
// `bridge verify` as the subscriber: a genuine event verifies; the same
// event with one byte changed, moved to another subject, or checked
// against another signer is refused; --follow says so line by line.
func TestVerify(t *testing.T) {
	signer, _ := nkeys.CreateAccount()
	other, _ := nkeys.CreateUser()
	seed, _ := signer.Seed()
	signerKey, _ := signer.PublicKey()
	otherKey, _ := other.PublicKey()
	w, url, passwords := rolesWorld(t, func(w *daemontest.World) {
		file := filepath.Join(t.TempDir(), "events.nk")
		if err := os.WriteFile(file, append(seed, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		w.Config.EventSigningSeedFile = file
	})
	id := w.Request("iak", "verify-1", "success#verify-1", "")
	genuine := w.WaitEvents(10*time.Second, id)[id]

	// What a forger with the bridge's NATS password but not its seed could
	// store: the event changed by one byte, and the event on a success
	// subject it does not belong to (sequences 2 and 3).
	nc, err := nats.Connect(url, nats.UserInfo("bridge", passwords["bridge"]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	tampered := bytes.Replace(genuine.Raw, []byte(`"attempts":1`), []byte(`"attempts":2`), 1)
	for _, m := range []*nats.Msg{
		{Subject: genuine.Subject, Data: tampered, Header: genuine.Header},
		{Subject: "status.resolved.ayopop.success", Data: genuine.Raw, Header: genuine.Header},
	} {
		m.Header.Del("Nats-Msg-Id")
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}

	asUser(t, url, "subscriber", passwords["subscriber"])
	verify := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"verify"}, args...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	for _, tc := range []struct {
		name   string
		args   []string
		refuse string // "" for verified
	}{
		{"the genuine event", []string{"--signer", signerKey, "--seq", "1"}, ""},
		{"the genuine event, two signers trusted", []string{"--signer", otherKey, "--signer", signerKey, "--seq", "1"}, ""},
		{"another signer", []string{"--signer", otherKey, "--seq", "1"}, "not trusted"},
		{"one byte changed", []string{"--signer", signerKey, "--seq", "2"}, "does not verify"},
		{"on another subject", []string{"--signer", signerKey, "--seq", "3"}, "but its data says status.resolved.iak.success"},
	} {
		stdout, stderr, err := verify(tc.args...)
		switch {
		case tc.refuse == "" && (err != nil || strings.TrimSpace(stdout) != string(genuine.Raw) || !strings.Contains(stderr, "verified: event "+id)):
			t.Errorf("%s: %v\nstdout %s\nstderr %s", tc.name, err, stdout, stderr)
		case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse) || stdout != ""):
			t.Errorf("%s: %v, want a refusal saying %q\nstdout %s", tc.name, err, tc.refuse, stdout)
		}
	}
	if _, _, err := verify("--seq", "1"); !isUsageError(err) {
		t.Errorf("without --signer: %v, want a usage error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"verify", "--signer", signerKey, "--follow", "--seq", "1"}, &stdout, io.Discard)
	}()
	daemontest.WaitFor(t, 10*time.Second, "three lines of --follow", func() bool { return strings.Count(stdout.String(), "\n") == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("verify --follow: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if want := "ok 1 " + genuine.Subject + " " + id; lines[0] != want || !strings.HasPrefix(lines[1], "REFUSED 2 ") || !strings.HasPrefix(lines[2], "REFUSED 3 ") {
		t.Errorf("verify --follow printed %q, want %q and two refusals", lines, want)
	}
}

func isUsageError(err error) bool {
	var e *exitError
	return errors.As(err, &e) && e.code == exitUsage
}

// TestProvision runs `bridge provision` as the provisioner, after which a
// bridge binds with its own role; the bridge's role may not provision.
func TestProvision(t *testing.T) {
	w := daemontest.NewWorld(t)
	s, passwords := daemontest.StartNATSFromConfig(t, filepath.Join(deployDir, "nats", "nats.conf"), nil)
	provision := func(user string) (string, error) {
		asUser(t, s.ClientURL(), user, passwords[user])
		t.Setenv("BRIDGE_STREAM_REPLICAS", "1")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"provision", "--timeout", "5s"}, &stdout, &stderr)
		return stdout.String() + stderr.String(), err
	}
	if out, err := provision("bridge"); err == nil || !strings.Contains(err.Error(), "Permissions Violation") {
		t.Errorf("provision as the bridge: %v, want a refusal\n%s", err, out)
	}
	out, err := provision("provisioner")
	if err != nil || !strings.Contains(out, "provisioned streams STATUS_REQUESTS") {
		t.Fatalf("bridge provision as provisioner: %v\n%s", err, out)
	}
	w.UseNATS(s.ClientURL(), nats.UserInfo("provisioner", passwords["provisioner"]))
	w.Config.NatsUser, w.Config.NatsPassword, w.Config.Provision = "bridge", providers.Secret(passwords["bridge"]), false
	w.StartBridge()
	id := w.Request("iak", "provisioned-1", "success#provisioned-1", "")
	if e := w.WaitEvents(10*time.Second, id)[id]; e.Event.Data.Status != "success" {
		t.Errorf("event %s", e.Raw)
	}
}
