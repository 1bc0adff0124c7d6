// Package daemontest runs bridges in tests: a World is one test's NATS
// server, provider simulators and bridge configuration, built in code, and
// StartBridge runs daemon.Run in the test's process. Each World has its own
// server on a free port and its own store, so tests using it can run in
// parallel.
package daemontest

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// SyncBuffer collects a daemon's log output.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartNATS runs a JetStream server on a free loopback port for one test.
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	s, err := natsserver.Start(natsserver.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// World is one test's NATS server, simulators and bridge configuration.
type World struct {
	t      testing.TB
	NATS   *server.Server
	Sim    *sim.Server
	SimURL string
	Creds  sim.Credentials
	// NC and JS are the test's own connection.
	NC *nats.Conn
	JS jetstream.JetStream
	// Config is what StartBridge runs a bridge with: the defaults, the
	// World's server and simulators with their credentials, and a fast
	// schedule. Tests change it before they start a bridge.
	Config config.Config
	// TracerProvider, when set, gets the spans of the bridges started
	// after (an SDK provider with an in-memory exporter, say).
	TracerProvider trace.TracerProvider
}

// NewWorld starts NATS and the simulators and configures a bridge that uses
// them; each configure function then changes the configuration.
func NewWorld(t testing.TB, configure ...func(*config.Config)) *World {
	t.Helper()
	w := &World{t: t, NATS: StartNATS(t), Creds: providertest.TestCredentials()}
	w.Sim = sim.New(w.Creds, sim.WithHangFor(10*time.Second))
	srv := httptest.NewServer(w.Sim)
	t.Cleanup(srv.Close)
	w.SimURL = srv.URL

	c := config.Default()
	c.NatsURL = w.NATS.ClientURL()
	c.HttpAddr = "127.0.0.1:0"
	c.LogLevel = "debug"
	c.Concurrency = 16
	c.RequestTimeout = 2 * time.Second
	c.ShutdownTimeout = 5 * time.Second
	c.Backoff.Initial, c.Backoff.Max, c.Backoff.Jitter = 50*time.Millisecond, 200*time.Millisecond, 0
	c.NotFoundGrace = 400 * time.Millisecond
	if err := c.Set(sim.Environ(sim.Variables(srv.URL, w.Creds))...); err != nil {
		t.Fatal(err)
	}
	for _, f := range configure {
		f(&c)
	}
	w.Config = c

	nc, err := nats.Connect(w.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w.NC = nc
	w.JS, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Provision creates the streams and the consumer as a bridge with
// w.Config would, so requests can be published before it runs.
func (w *World) Provision() {
	w.t.Helper()
	if _, err := topology.Provision(context.Background(), w.JS, w.Config.Topology()); err != nil {
		w.t.Fatal(err)
	}
}

// Bridge is a daemon running in the test's process.
type Bridge struct {
	cancel   context.CancelFunc
	done     chan error
	Logs     *SyncBuffer
	HTTPAddr string
	// CallbackAddr is the callback listener's address, when
	// Config.CallbackAddr enables it.
	CallbackAddr string
}

// StartBridge runs daemon.Run with w.Config, its *_FILE secrets read as
// config.Load reads them, and waits until it consumes. The bridge stops
// when the test ends, if it has not been stopped.
func (w *World) StartBridge() *Bridge {
	w.t.Helper()
	cfg := w.Config
	if err := cfg.ReadSecretFiles(); err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{cancel: cancel, done: make(chan error, 1), Logs: &SyncBuffer{}}
	started := make(chan string, 1)
	go func() {
		b.done <- daemon.Run(ctx, cfg, daemon.Options{Log: b.Logs, Version: "test", Started: func(_, addr string) { started <- addr },
			TracerProvider:     w.TracerProvider,
			CallbacksListening: func(addr string) { b.CallbackAddr = addr }})
	}()
	select {
	case b.HTTPAddr = <-started:
	case err := <-b.done:
		w.t.Fatalf("bridge exited at start: %v\n%s", err, b.Logs)
	case <-time.After(15 * time.Second):
		w.t.Fatalf("bridge did not start\n%s", b.Logs)
	}
	w.t.Cleanup(func() {
		if err := b.Stop(); err != nil && !errors.Is(err, errAlreadyStopped) {
			w.t.Errorf("bridge stopped with %v", err)
		}
	})
	return b
}

var errAlreadyStopped = errors.New("already stopped")

// Stop cancels the daemon and returns what Run returned.
func (b *Bridge) Stop() error {
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

// Running reports whether the bridge's Run has not returned yet. Call it
// before Stop.
func (b *Bridge) Running() bool {
	select {
	case err := <-b.done:
		b.done <- err // keep it for Stop
		return false
	default:
		return true
	}
}

// Get fetches one of the bridge's HTTP endpoints and returns the status
// code and the body (0 when the request failed).
func (b *Bridge) Get(path string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + b.HTTPAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Metric returns the value of one series of the bridge's /metrics, such as
// `statusbridge_publish_errors_total{what="event"}`, or 0 when absent.
func (b *Bridge) Metric(t testing.TB, series string) float64 {
	t.Helper()
	code, body := b.Get("/metrics")
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

// Publish publishes a request body on status.requested.<provider> with
// Nats-Msg-Id msgID (none when empty).
func (w *World) Publish(provider, msgID, body string) *jetstream.PubAck {
	w.t.Helper()
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := w.JS.Publish(context.Background(), topology.RequestSubject(provider), []byte(body), opts...)
	if err != nil {
		w.t.Fatalf("publish request: %v", err)
	}
	return ack
}

// Request publishes a well-formed request, extra appended to its members,
// and returns its event id.
func (w *World) Request(provider, requestID, reference string, extra string) string {
	w.t.Helper()
	body := `{"request_id":"` + requestID + `","provider":"` + provider + `","reference":` + JSONString(reference) + extra + `}`
	w.Publish(provider, requestID, body)
	return publisher.EventID(provider, requestID)
}

// JSONString quotes s as a JSON string.
func JSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// StoredEvent is an event as it sits in the events stream.
type StoredEvent struct {
	Subject string
	Header  nats.Header
	Event   publisher.Event
	Raw     []byte
}

// Events returns every event in the events stream.
func (w *World) Events() []StoredEvent {
	w.t.Helper()
	return streamRead(w, topology.DefaultEventsStream, func(m jetstream.Msg) StoredEvent {
		var ev publisher.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			w.t.Errorf("event on %s is not JSON: %v", m.Subject(), err)
		}
		return StoredEvent{Subject: m.Subject(), Header: m.Headers(), Event: ev, Raw: m.Data()}
	})
}

// DeadLetters returns every message in the dead-letter stream.
func (w *World) DeadLetters() []jetstream.Msg {
	w.t.Helper()
	return streamRead(w, topology.DefaultDeadLetterStream, func(m jetstream.Msg) jetstream.Msg { return m })
}

func streamRead[T any](w *World, stream string, f func(jetstream.Msg) T) []T {
	w.t.Helper()
	// A bound for a stuck server, not a speed limit: reading thousands of
	// messages one by one on a loaded machine takes more than seconds.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := w.JS.Stream(ctx, stream)
	if err != nil {
		w.t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	// Read message by message: tests poll this many times a second, and a
	// consumer per poll would pile up faster than the server retires them.
	var out []T
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			w.t.Fatalf("stream %s, message %d: %v", stream, seq, err)
		}
		out = append(out, f(rawMsg{m}))
	}
	return out
}

// rawMsg shows a stored message as a jetstream.Msg, for the readers above.
type rawMsg struct{ m *jetstream.RawStreamMsg }

func (r rawMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: r.m.Sequence}, Timestamp: r.m.Time, Stream: ""}, nil
}
func (r rawMsg) Data() []byte                     { return r.m.Data }
func (r rawMsg) Headers() nats.Header             { return r.m.Header }
func (r rawMsg) Subject() string                  { return r.m.Subject }
func (r rawMsg) Reply() string                    { return "" }
func (r rawMsg) Ack() error                       { return errNotADelivery }
func (r rawMsg) DoubleAck(context.Context) error  { return errNotADelivery }
func (r rawMsg) Nak() error                       { return errNotADelivery }
func (r rawMsg) NakWithDelay(time.Duration) error { return errNotADelivery }
func (r rawMsg) InProgress() error                { return errNotADelivery }
func (r rawMsg) Term() error                      { return errNotADelivery }
func (r rawMsg) TermWithReason(string) error      { return errNotADelivery }

var errNotADelivery = errors.New("a stored message, not a delivery")

// WaitFor polls cond until it holds, and fails the test when timeout
// passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// WaitEvents waits until the events stream holds events for every id in
// ids and returns them by id. It fails on an event stored twice.
func (w *World) WaitEvents(timeout time.Duration, ids ...string) map[string]StoredEvent {
	w.t.Helper()
	var byID map[string]StoredEvent
	WaitFor(w.t, timeout, "events", func() bool {
		byID = map[string]StoredEvent{}
		for _, e := range w.Events() {
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

// UseNATS points the World's client and w.Config at another NATS
// deployment (a cluster, or a server that requires authentication),
// connecting with opts.
func (w *World) UseNATS(url string, opts ...nats.Option) {
	w.t.Helper()
	w.Config.NatsURL = url
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		w.t.Fatalf("connect to %s: %v", url, err)
	}
	w.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		w.t.Fatal(err)
	}
	w.NC, w.JS = nc, js
}

// StopNATS shuts the World's NATS server down and returns a function that
// starts it again on the same address with the same JetStream store.
func (w *World) StopNATS() (restart func()) {
	w.t.Helper()
	dir := filepath.Dir(w.NATS.StoreDir()) // the server adds "jetstream"
	addr := w.NATS.Addr().String()
	w.NATS.Shutdown()
	w.NATS.WaitForShutdown()
	return func() {
		w.t.Helper()
		var s *server.Server
		WaitFor(w.t, 5*time.Second, "NATS to start again on "+addr, func() bool {
			var err error // the port may take a moment to be free again
			s, err = natsserver.Start(natsserver.Options{StoreDir: dir, Listen: addr})
			return err == nil
		})
		w.t.Cleanup(s.Shutdown)
		w.NATS = s
	}
}

// StreamInfo returns the state of one of the bridge's streams.
func (w *World) StreamInfo(name string) *jetstream.StreamInfo {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := w.JS.Stream(ctx, name)
	if err != nil {
		w.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		w.t.Fatalf("stream %s: %v", name, err)
	}
	return info
}

// ConsumerInfo returns the state of the bridge's consumer.
func (w *World) ConsumerInfo() *jetstream.ConsumerInfo {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := w.JS.Consumer(ctx, topology.DefaultRequestsStream, topology.DefaultConsumer)
	if err != nil {
		w.t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		w.t.Fatalf("consumer: %v", err)
	}
	return info
}

// WaitSettled waits until the events and dead-letter streams hold events
// and deadLetters messages and the work queue is empty, without reading
// the messages, and fails when a stream holds more than expected.
func (w *World) WaitSettled(timeout time.Duration, events, deadLetters uint64) {
	w.t.Helper()
	WaitFor(w.t, timeout, fmt.Sprintf("%d events, %d dead letters and an empty work queue", events, deadLetters), func() bool {
		ev := w.StreamInfo(topology.DefaultEventsStream).State.Msgs
		dl := w.StreamInfo(topology.DefaultDeadLetterStream).State.Msgs
		if ev > events || dl > deadLetters {
			w.t.Fatalf("%d events and %d dead letters, want %d and %d", ev, dl, events, deadLetters)
		}
		return ev == events && dl == deadLetters && w.StreamInfo(topology.DefaultRequestsStream).State.Msgs == 0
	})
}

// LogLines parses JSON log output, one object a line.
func LogLines(t testing.TB, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		out = append(out, m)
	}
	return out
}

// NATSRoles maps each user of deploy/nats/nats.conf to the environment
// variable nats-server reads its password from.
var NATSRoles = map[string]string{
	"bridge":      "NATS_BRIDGE_PASSWORD",
	"requester":   "NATS_REQUESTER_PASSWORD",
	"subscriber":  "NATS_SUBSCRIBER_PASSWORD",
	"provisioner": "NATS_PROVISIONER_PASSWORD",
}

// LoadNATSConfig reads a nats-server configuration file as the server does,
// with the given password for each of NATSRoles (by user; a fresh random
// one for a user not given), and returns the options and the passwords by
// user. The passwords are defined as variables of the
// configuration (written before the file's own text in a copy), which the
// server resolves before the environment, so tests need not change the
// process environment and can run in parallel.
func LoadNATSConfig(t testing.TB, path string, given map[string]string) (*server.Options, map[string]string) {
	t.Helper()
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	var vars strings.Builder
	for user, env := range NATSRoles {
		passwords[user] = given[user]
		if passwords[user] == "" {
			passwords[user] = user + "-" + rand.Text()
		}
		fmt.Fprintf(&vars, "%s: %q\n", env, passwords[user])
	}
	copied := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(copied, append([]byte(vars.String()), conf...), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(copied)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return opts, passwords
}

// StartNATSFromConfig runs nats-server with the configuration file at path
// and the passwords given (LoadNATSConfig), changing only what a test must: a free loopback port,
// no monitoring port, a temporary store, no logs or signal handlers.
func StartNATSFromConfig(t testing.TB, path string, given map[string]string) (*server.Server, map[string]string) {
	t.Helper()
	opts, passwords := LoadNATSConfig(t, path, given)
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server with %s did not start", path)
	}
	return s, passwords
}
