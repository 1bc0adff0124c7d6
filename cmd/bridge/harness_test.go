package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// syncBuffer collects a daemon's log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNATS runs a JetStream server on a free loopback port for one test.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	s, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// world is one test's NATS server, simulators and bridge environment.
type world struct {
	t      *testing.T
	nats   *server.Server
	sim    *sim.Server
	simURL string
	creds  sim.Credentials
	nc     *nats.Conn
	js     jetstream.JetStream
}

// newWorld starts NATS and the simulators and sets the BRIDGE_* variables
// of a bridge that uses them, with a fast schedule. extra overrides them.
func newWorld(t *testing.T, extra map[string]string) *world {
	t.Helper()
	w := &world{t: t, nats: startNATS(t), creds: providertest.TestCredentials()}
	w.sim = sim.New(w.creds, sim.WithHangFor(10*time.Second))
	srv := httptest.NewServer(w.sim)
	t.Cleanup(srv.Close)
	w.simURL = srv.URL
	clearBridgeEnv(t)
	env := map[string]string{
		"BRIDGE_NATS_URL":               w.nats.ClientURL(),
		"BRIDGE_HTTP_ADDR":              "127.0.0.1:0",
		"BRIDGE_LOG_LEVEL":              "debug",
		"BRIDGE_CONCURRENCY":            "16",
		"BRIDGE_REQUEST_TIMEOUT":        "2s",
		"BRIDGE_SHUTDOWN_TIMEOUT":       "5s",
		"BRIDGE_BACKOFF_INITIAL":        "50ms",
		"BRIDGE_BACKOFF_MAX":            "200ms",
		"BRIDGE_BACKOFF_JITTER":         "0",
		"BRIDGE_NOT_FOUND_GRACE":        "400ms",
		"BRIDGE_IAK_URL":                srv.URL + "/iak",
		"BRIDGE_IAK_USERNAME":           w.creds.IAKUsername,
		"BRIDGE_IAK_API_KEY":            w.creds.IAKAPIKey,
		"BRIDGE_AYOPOP_URL":             srv.URL + "/ayopop",
		"BRIDGE_AYOPOP_API_KEY":         w.creds.AyopopKey,
		"BRIDGE_AYOPOP_API_SECRET":      w.creds.AyopopSecret,
		"BRIDGE_APPOTAPAY_URL":          srv.URL + "/appotapay",
		"BRIDGE_APPOTAPAY_PARTNER_CODE": w.creds.AppotaPayPartnerCode,
		"BRIDGE_APPOTAPAY_API_KEY":      w.creds.AppotaPayAPIKey,
		"BRIDGE_APPOTAPAY_SECRET_KEY":   w.creds.AppotaPaySecretKey,
	}
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range env {
		if v == "" {
			os.Unsetenv(k) // t.Setenv below restores the environment
			continue
		}
		t.Setenv(k, v)
	}
	nc, err := nats.Connect(w.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w.nc = nc
	w.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// provision creates the streams and the consumer as a bridge with the
// current environment would, so requests can be published before it runs.
func (w *world) provision() {
	w.t.Helper()
	cfg, err := loadConfig()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := topology.Provision(context.Background(), w.js, cfg.topology()); err != nil {
		w.t.Fatal(err)
	}
}

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

// bridge is a daemon running in this process.
type bridge struct {
	cancel   context.CancelFunc
	done     chan error
	logs     *syncBuffer
	httpAddr string
}

// startBridge runs the daemon with the current environment and waits
// until it consumes.
func (w *world) startBridge() *bridge {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridge{cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	started := make(chan string, 1)
	go func() {
		b.done <- runDaemon(ctx, b.logs, daemonHooks{started: func(_, addr string) { started <- addr }})
	}()
	select {
	case b.httpAddr = <-started:
	case err := <-b.done:
		w.t.Fatalf("bridge exited at start: %v\n%s", err, b.logs)
	case <-time.After(15 * time.Second):
		w.t.Fatalf("bridge did not start\n%s", b.logs)
	}
	w.t.Cleanup(func() {
		if err := b.stop(); err != nil && !errors.Is(err, errAlreadyStopped) {
			w.t.Errorf("bridge stopped with %v", err)
		}
	})
	return b
}

var errAlreadyStopped = errors.New("already stopped")

// stop cancels the daemon and returns what run returned.
func (b *bridge) stop() error {
	b.cancel()
	select {
	case err, ok := <-b.done:
		if !ok {
			return errAlreadyStopped
		}
		close(b.done)
		return err
	case <-time.After(20 * time.Second):
		return errors.New("bridge did not stop within 20s")
	}
}

// publish publishes a request body on status.requested.<provider> with
// Nats-Msg-Id msgID (none when empty).
func (w *world) publish(provider, msgID, body string) *jetstream.PubAck {
	w.t.Helper()
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := w.js.Publish(context.Background(), topology.RequestSubject(provider), []byte(body), opts...)
	if err != nil {
		w.t.Fatalf("publish request: %v", err)
	}
	return ack
}

// request publishes a well-formed request and returns its event id.
func (w *world) request(provider, requestID, reference string, extra string) string {
	w.t.Helper()
	body := `{"request_id":"` + requestID + `","provider":"` + provider + `","reference":` + jsonString(reference) + extra + `}`
	w.publish(provider, requestID, body)
	return publisher.EventID(provider, requestID)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// storedEvent is an event as it sits in the events stream.
type storedEvent struct {
	Subject string
	Header  nats.Header
	Event   publisher.Event
	Raw     []byte
}

// events returns every event in the events stream.
func (w *world) events() []storedEvent {
	w.t.Helper()
	return streamRead(w, topology.DefaultEventsStream, func(m jetstream.Msg) storedEvent {
		var ev publisher.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			w.t.Errorf("event on %s is not JSON: %v", m.Subject(), err)
		}
		return storedEvent{Subject: m.Subject(), Header: m.Headers(), Event: ev, Raw: m.Data()}
	})
}

// deadLetters returns every message in the dead-letter stream.
func (w *world) deadLetters() []jetstream.Msg {
	w.t.Helper()
	return streamRead(w, topology.DefaultDeadLetterStream, func(m jetstream.Msg) jetstream.Msg { return m })
}

func streamRead[T any](w *world, stream string, f func(jetstream.Msg) T) []T {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		w.t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	n := info.State.Msgs
	if n == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []T
	for uint64(len(out)) < n {
		batch, err := cons.Fetch(int(n)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			w.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			out = append(out, f(m))
			got++
		}
		if got == 0 {
			w.t.Fatalf("stream %s: read %d of %d messages", stream, len(out), n)
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventsByID waits until the events stream holds events for every id in
// ids and returns them by id. It fails on an event stored twice.
func (w *world) waitEvents(timeout time.Duration, ids ...string) map[string]storedEvent {
	w.t.Helper()
	var byID map[string]storedEvent
	waitFor(w.t, timeout, "events", func() bool {
		byID = map[string]storedEvent{}
		for _, e := range w.events() {
			if _, dup := byID[e.Event.ID]; dup {
				w.t.Fatalf("event %s stored twice", e.Event.ID)
			}
			byID[e.Event.ID] = e
		}
		for _, id := range ids {
			if _, ok := byID[id]; !ok {
				return false
			}
		}
		return true
	})
	return byID
}

// Helpers of the fault, security and hostile-input suites.

// running reports whether the bridge's run has not returned yet. Call it
// before stop.
func (b *bridge) running() bool {
	select {
	case err := <-b.done:
		b.done <- err // keep it for stop
		return false
	default:
		return true
	}
}

// get fetches one of the bridge's HTTP endpoints and returns the status
// code and the body (0 when the request failed).
func (b *bridge) get(path string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + b.httpAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric returns the value of one series of the bridge's /metrics, such as
// `statusbridge_publish_errors_total{what="event"}`, or 0 when absent.
func (b *bridge) metric(t *testing.T, series string) float64 {
	t.Helper()
	code, body := b.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// useNATS points the world's client and the bridge's BRIDGE_NATS_URL at
// another NATS deployment (a cluster, or a server that requires
// authentication), connecting with opts.
func (w *world) useNATS(url string, opts ...nats.Option) {
	w.t.Helper()
	w.t.Setenv("BRIDGE_NATS_URL", url)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		w.t.Fatalf("connect to %s: %v", url, err)
	}
	w.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		w.t.Fatal(err)
	}
	w.nc, w.js = nc, js
}

// stopNATS shuts the world's NATS server down and returns a function that
// starts it again on the same address with the same JetStream store.
func (w *world) stopNATS() (restart func()) {
	w.t.Helper()
	dir := filepath.Dir(w.nats.StoreDir()) // the server adds "jetstream"
	addr := w.nats.Addr().String()
	w.nats.Shutdown()
	w.nats.WaitForShutdown()
	return func() {
		w.t.Helper()
		var err error
		for range 5 { // the port may take a moment to be free again
			var s *server.Server
			if s, err = natsserver.Start(natsserver.Options{StoreDir: dir, Listen: addr}); err == nil {
				w.t.Cleanup(s.Shutdown)
				w.nats = s
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		w.t.Fatalf("restart NATS on %s: %v", addr, err)
	}
}

// streamInfo returns the state of one of the bridge's streams.
func (w *world) streamInfo(name string) *jetstream.StreamInfo {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.js.Stream(ctx, name)
	if err != nil {
		w.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		w.t.Fatalf("stream %s: %v", name, err)
	}
	return info
}

// consumerInfo returns the state of the bridge's consumer.
func (w *world) consumerInfo() *jetstream.ConsumerInfo {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := w.js.Consumer(ctx, topology.DefaultRequestsStream, topology.DefaultConsumer)
	if err != nil {
		w.t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		w.t.Fatalf("consumer: %v", err)
	}
	return info
}

// waitSettled waits until the events and dead-letter streams hold events
// and deadLetters messages and the work queue is empty, without reading
// the messages, and fails when a stream holds more than expected.
func (w *world) waitSettled(timeout time.Duration, events, deadLetters uint64) {
	w.t.Helper()
	waitFor(w.t, timeout, fmt.Sprintf("%d events, %d dead letters and an empty work queue", events, deadLetters), func() bool {
		ev := w.streamInfo(topology.DefaultEventsStream).State.Msgs
		dl := w.streamInfo(topology.DefaultDeadLetterStream).State.Msgs
		if ev > events || dl > deadLetters {
			w.t.Fatalf("%d events and %d dead letters, want %d and %d", ev, dl, events, deadLetters)
		}
		return ev == events && dl == deadLetters && w.streamInfo(topology.DefaultRequestsStream).State.Msgs == 0
	})
}
