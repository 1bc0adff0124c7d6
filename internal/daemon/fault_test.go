package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// faultConfig is the schedule of the fault tests: short timeouts and a
// short ack wait, so that work lost in a fault comes back within seconds.
func faultConfig(c *config.Config) {
	c.RequestTimeout = time.Second
	c.PublishTimeout = time.Second
	c.AckWait = 4 * time.Second
	c.ShutdownTimeout = 3 * time.Second
	c.LogLevel = "info"
}

// loadScripts are the IAK scripts the load of the fault tests cycles
// through, with the status each ends in.
var loadScripts = []struct{ script, status string }{
	{"success", publisher.StatusSuccess},
	{"pending*3,success", publisher.StatusSuccess},
	{"pending*6,success", publisher.StatusSuccess},
	{"pending*2,failed", publisher.StatusFailed},
	{"error500,pending,success", publisher.StatusSuccess},
	{"reset,pending*2,success", publisher.StatusSuccess},
}

// load publishes n IAK requests named prefix-i and returns the status each
// event id must end with.
func (w *world) load(prefix string, n int) map[string]string {
	w.t.Helper()
	want := make(map[string]string, n)
	for i := range n {
		s := loadScripts[i%len(loadScripts)]
		rid := fmt.Sprintf("%s-%04d", prefix, i)
		want[w.Request("iak", rid, s.script+"#"+rid, "")] = s.status
	}
	return want
}

// loadPatiently is load for a cluster in failover: each publish is
// retried until JetStream takes it (its Nats-Msg-Id makes a retry of a
// publish that did land harmless).
func (w *world) loadPatiently(prefix string, n int) map[string]string {
	w.t.Helper()
	want := make(map[string]string, n)
	for i := range n {
		s := loadScripts[i%len(loadScripts)]
		rid := fmt.Sprintf("%s-%04d", prefix, i)
		body := `{"request_id":"` + rid + `","provider":"iak","reference":"` + s.script + "#" + rid + `"}`
		daemontest.WaitFor(w.t, 60*time.Second, "JetStream to take request "+rid, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := w.JS.Publish(ctx, topology.RequestSubject("iak"), []byte(body), jetstream.WithMsgID(rid))
			return err == nil
		})
		want[publisher.EventID("iak", rid)] = s.status
	}
	return want
}

// checkExactlyOnce waits for an event for every id in want and checks that
// the events stream holds nothing else, each with its status.
func (w *world) checkExactlyOnce(timeout time.Duration, want map[string]string) {
	w.t.Helper()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	got := w.WaitEvents(timeout, ids...) // fails on an event stored twice
	if all := w.Events(); len(all) != len(want) {
		w.t.Errorf("the events stream holds %d events for %d requests", len(all), len(want))
	}
	for id, status := range want {
		if s := got[id].Event.Data.Status; s != status {
			w.t.Errorf("event %s: status %s, want %s: %s", id, s, status, got[id].Raw)
		}
	}
	daemontest.WaitFor(w.t, 10*time.Second, "an empty work queue", func() bool {
		return w.StreamInfo("STATUS_REQUESTS").State.Msgs == 0
	})
}

// waitReady waits until /readyz answers code.
func waitReady(t *testing.T, b *daemontest.Bridge, timeout time.Duration, code int) {
	t.Helper()
	daemontest.WaitFor(t, timeout, fmt.Sprintf("/readyz %d", code), func() bool {
		got, _ := b.Get("/readyz")
		return got == code
	})
}

// TestNATSRestartUnderLoad restarts the NATS server (same port, same
// store) while hundreds of requests are parked or in flight: the bridge
// reports not ready while it is down, reconnects by itself, and every
// request resolves exactly once.
func TestNATSRestartUnderLoad(t *testing.T) {
	t.Parallel()
	w := newWorld(t, faultConfig)
	w.Provision()
	want := w.load("restart", 240)
	b := w.StartBridge()
	daemontest.WaitFor(t, 30*time.Second, "some events before the restart", func() bool { return len(w.Events()) >= 40 })

	before := len(w.Events())
	restart := w.StopNATS()
	t.Logf("NATS stopped with %d of %d events published", before, len(want))
	if before == len(want) {
		t.Fatal("everything resolved before the restart; the test proves nothing")
	}
	waitReady(t, b, 10*time.Second, http.StatusServiceUnavailable)
	restart()
	waitReady(t, b, 20*time.Second, http.StatusOK)
	for id, s := range w.load("after-restart", 30) {
		want[id] = s
	}

	w.checkExactlyOnce(60*time.Second, want)
	if !b.Running() {
		t.Fatalf("the bridge exited\n%s", b.Logs)
	}
	if n := b.Metric(t, "statusbridge_nats_reconnects_total"); n < 1 {
		t.Errorf("statusbridge_nats_reconnects_total = %v after a restart", n)
	}
	// Stopped while NATS is up: stopped without NATS, the bridge waits out
	// its pull request's expiry (10s) before it exits.
	if err := b.Stop(); err != nil {
		t.Fatalf("bridge stopped with %v", err)
	}
}

// TestNATSUnreachable takes NATS away for five seconds under load: the
// bridge stays up and not ready the whole time, and finishes the work when
// NATS is back.
func TestNATSUnreachable(t *testing.T) {
	t.Parallel()
	w := newWorld(t, faultConfig)
	w.Provision()
	want := w.load("outage", 120)
	b := w.StartBridge()
	daemontest.WaitFor(t, 30*time.Second, "some events before the outage", func() bool { return len(w.Events()) >= 20 })

	before := len(w.Events())
	restart := w.StopNATS()
	t.Logf("NATS stopped with %d of %d events published", before, len(want))
	if before == len(want) {
		t.Fatal("everything resolved before the outage; the test proves nothing")
	}
	waitReady(t, b, 10*time.Second, http.StatusServiceUnavailable)
	outage := time.After(5 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for down := true; down; {
		select {
		case <-outage:
			down = false
		case <-tick.C:
			if code, body := b.Get("/readyz"); code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz answered %d %q while NATS was down", code, body)
			}
			if !b.Running() {
				t.Fatalf("the bridge exited while NATS was down\n%s", b.Logs)
			}
		}
	}
	restart()
	waitReady(t, b, 20*time.Second, http.StatusOK)
	w.checkExactlyOnce(60*time.Second, want)
	if !b.Running() {
		t.Fatalf("the bridge exited\n%s", b.Logs)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("bridge stopped with %v", err)
	}
}

// cluster is a JetStream cluster of embedded servers on loopback, each on
// fixed ports and its own store, so a node can be stopped and started
// again as the same node.
type cluster struct {
	t       *testing.T
	opts    []server.Options
	servers []*server.Server
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
	}
	c := &cluster{t: t, servers: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, server.Options{
			ServerName: fmt.Sprintf("node-%d", i),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 1 << 20,
			Cluster:    server.ClusterOpts{Name: "statusbridge-test", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	for i := range n {
		c.start(i)
	}
	return c
}

// start starts node i (again).
func (c *cluster) start(i int) {
	c.t.Helper()
	o := c.opts[i] // a copy: the server keeps and changes its options
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		c.t.Fatalf("node %d did not start", i)
	}
	c.t.Cleanup(s.Shutdown)
	c.servers[i] = s
}

// stop shuts node i down.
func (c *cluster) stop(i int) {
	c.servers[i].Shutdown()
	c.servers[i].WaitForShutdown()
}

// index returns the index of the node named name.
func (c *cluster) index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	c.t.Fatalf("no node %q", name)
	return -1
}

func (c *cluster) clientURLs() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// TestClusterNodeLoss runs the bridge against a three-node JetStream
// cluster with every stream on three replicas, stops the node leading the
// requests stream under load and starts it again: nothing is lost and
// every request resolves exactly once.
func TestClusterNodeLoss(t *testing.T) {
	t.Parallel()
	w := newWorld(t, faultConfig, func(c *config.Config) { c.StreamReplicas = 3 })
	c := startCluster(t, 3)
	w.UseNATS(c.clientURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	daemontest.WaitFor(t, 60*time.Second, "the cluster to create the streams", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := topology.Provision(ctx, w.JS, w.Config.Topology())
		return err == nil
	})
	if r := w.StreamInfo(topology.DefaultRequestsStream).Config.Replicas; r != 3 {
		t.Fatalf("requests stream has %d replicas", r)
	}

	want := w.load("cluster", 150)
	b := w.StartBridge()
	// Counted from the stream's state: reading the stream through a
	// consumer while a node comes and goes is itself at the mercy of the
	// failover.
	events := func() int { return int(w.StreamInfo(topology.DefaultEventsStream).State.Msgs) }
	daemontest.WaitFor(t, 60*time.Second, "some events before the node loss", func() bool { return events() >= 25 })
	leader := w.StreamInfo(topology.DefaultRequestsStream).Cluster.Leader
	before := events()
	c.stop(c.index(leader))
	t.Logf("stopped %s, the requests stream's leader, with %d of %d events published", leader, before, len(want))
	for id, s := range w.loadPatiently("node-down", 30) {
		want[id] = s
	}
	daemontest.WaitFor(t, 60*time.Second, "progress without the node", func() bool { return events() >= before+25 })
	c.start(c.index(leader))
	for id, s := range w.loadPatiently("node-back", 30) {
		want[id] = s
	}
	daemontest.WaitFor(t, 90*time.Second, "an event for every request and every replica current", func() bool {
		if events() < len(want) {
			return false
		}
		for _, stream := range []string{topology.DefaultRequestsStream, topology.DefaultEventsStream} {
			ci := w.StreamInfo(stream).Cluster
			if ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
				return false
			}
			for _, r := range ci.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
		}
		return true
	})
	w.checkExactlyOnce(30*time.Second, want)
	if !b.Running() {
		t.Fatalf("the bridge exited\n%s", b.Logs)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("bridge stopped with %v", err)
	}
}

// TestReplicasShareTheWork runs three bridges on one consumer over all
// three providers, stops one of them halfway, and checks that every request
// resolves once and that the providers saw exactly the checks the scripts
// imply: no request was checked twice for one delivery.
func TestReplicasShareTheWork(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.LogLevel, c.Concurrency, c.NotFoundGrace = "info", 8, time.Minute })
	w.Provision()
	scripts := []struct {
		script string
		calls  int
		status string
	}{
		{"success", 1, publisher.StatusSuccess},
		{"pending*2,success", 3, publisher.StatusSuccess},
		{"pending,failed", 2, publisher.StatusFailed},
		{"error500,success", 2, publisher.StatusSuccess},
		{"timeout,success", 2, publisher.StatusSuccess},
		{"ratelimit,pending,success", 3, publisher.StatusSuccess},
		{"notfound,success", 2, publisher.StatusSuccess},
		{"html,truncated,garbage,success", 4, publisher.StatusSuccess},
		{"pending,success,failed", 2, publisher.StatusSuccess}, // the first verdict wins
		{"pending,failed,success", 2, publisher.StatusFailed},
	}
	providers := []string{"iak", "ayopop", "appotapay"}
	type req struct{ provider, reference, status string }
	reqs := map[string]req{}
	wantCalls := map[string]int{}
	const n = 300
	for i := range n {
		s := scripts[i%len(scripts)]
		p := providers[i%len(providers)]
		rid := fmt.Sprintf("replica-%03d", i)
		ref := s.script + "#" + rid
		reqs[w.Request(p, rid, ref, "")] = req{p, ref, s.status}
		wantCalls[p] += s.calls
	}
	replicas := []*daemontest.Bridge{w.StartBridge(), w.StartBridge(), w.StartBridge()}
	daemontest.WaitFor(t, 60*time.Second, "a third of the events", func() bool { return len(w.Events()) >= n/3 })
	if err := replicas[0].Stop(); err != nil {
		t.Fatalf("replica stopped with %v", err)
	}

	want := map[string]string{}
	for id, r := range reqs {
		want[id] = r.status
	}
	w.checkExactlyOnce(90*time.Second, want)
	for _, s := range scripts {
		for i := range n {
			if scripts[i%len(scripts)].script != s.script {
				continue
			}
			r := reqs[publisher.EventID(providers[i%len(providers)], fmt.Sprintf("replica-%03d", i))]
			if got := w.Sim.Calls(r.provider, r.reference); got != s.calls {
				t.Errorf("%s %q: %d checks, want %d", r.provider, r.reference, got, s.calls)
			}
		}
	}
	for _, p := range providers {
		if got := w.Sim.TotalCalls(p); got != wantCalls[p] {
			t.Errorf("%s saw %d checks in all, want %d", p, got, wantCalls[p])
		}
	}
	for i, b := range replicas[1:] {
		if !b.Running() {
			t.Errorf("replica %d exited\n%s", i+1, b.Logs)
		}
	}
}

// faultProxy stands in front of the simulators and answers a reference's
// first checks itself with faults the simulators do not script (a
// proxy's 502, a wrong content type, a redirect, a stalled body…), then
// passes its checks on.
type faultProxy struct {
	next http.Handler

	mu     sync.Mutex
	faults map[string][]fault // provider + "\x00" + reference
	served map[string]int
}

type fault func(w http.ResponseWriter, r *http.Request, next http.Handler)

func newFaultProxy(t *testing.T, next http.Handler) (*faultProxy, string) {
	p := &faultProxy{next: next, faults: map[string][]fault{}, served: map[string]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// inject makes the proxy answer the next len(faults) checks of reference.
func (p *faultProxy) inject(provider, reference string, faults ...fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[provider+"\x00"+reference] = faults
}

// calls returns how many checks of reference the proxy answered itself,
// without passing them on.
func (p *faultProxy) calls(provider, reference string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[provider+"\x00"+reference]
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	provider, ref := requestReference(r)
	key := provider + "\x00" + ref
	p.mu.Lock()
	var f fault
	if q := p.faults[key]; len(q) > 0 {
		f, p.faults[key] = q[0], q[1:]
		p.served[key]++
	}
	p.mu.Unlock()
	if f == nil {
		p.next.ServeHTTP(w, r)
		return
	}
	passedOn := false
	f(w, r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passedOn = true // the simulator counts this check
		p.next.ServeHTTP(w, r)
	}))
	if passedOn {
		p.mu.Lock()
		p.served[key]--
		p.mu.Unlock()
	}
}

// requestReference reads the provider and the reference of a status call
// to the simulators, leaving the body readable.
func requestReference(r *http.Request) (provider, reference string) {
	provider, _, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if provider == "appotapay" {
		_, ref, _ := strings.Cut(r.URL.Path, "/bill/transaction/")
		return provider, ref
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var b struct {
		RefID     string `json:"ref_id"`
		RefNumber string `json:"refNumber"`
	}
	_ = json.Unmarshal(body, &b)
	return provider, b.RefID + b.RefNumber
}

// answer is a fault that answers status with body.
func answer(status int, contentType, body string) fault {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// relabelled passes the check on and changes the answer's Content-Type.
func relabelled(contentType string) fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

// stalled sends the headers and the start of a body, then nothing until
// the client gives up.
func stalled(w http.ResponseWriter, r *http.Request, _ http.Handler) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"data":{"status":`)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// TestProviderMisbehaviour drives every way a provider can misbehave
// through the daemon: each request ends in the status its first verdict
// gives, after exactly the checks its script implies, and nothing the
// bridge started is left running once it stopped.
func TestProviderMisbehaviour(t *testing.T) {
	// Not parallel: it checks that no goroutine outlives the bridge.
	w := newWorld(t, func(c *config.Config) {
		c.RequestTimeout, c.ShutdownTimeout, c.NotFoundGrace = time.Second, 3*time.Second, time.Minute
	})
	proxy, proxyURL := newFaultProxy(t, w.Sim)
	var stolen atomic.Int32 // requests that followed a redirect
	attacker := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { stolen.Add(1) }))
	t.Cleanup(attacker.Close)
	w.Config.IAK.URL, w.Config.Ayopop.URL, w.Config.AppotaPay.URL = proxyURL+"/iak", proxyURL+"/ayopop", proxyURL+"/appotapay"

	soon := `,"deadline":"` + time.Now().Add(4*time.Second).UTC().Format(time.RFC3339Nano) + `"`
	tests := []struct {
		name, script string
		faults       []fault // answered by the proxy before the script's steps
		extra        string
		status       string
		reason       string
		calls        int // -1: not counted exactly
	}{
		{"hang past the request timeout", "timeout,success", nil, "", "success", "", 2},
		{"connection reset", "reset,success", nil, "", "success", "", 2},
		{"500", "error500,success", nil, "", "success", "", 2},
		{"503 with Retry-After", "error503,success", nil, "", "success", "", 2},
		{"502 from a proxy", "success", []fault{answer(http.StatusBadGateway, "text/html", "<html><body>502 Bad Gateway</body></html>")}, "", "success", "", 2},
		{"504 from a proxy, empty", "success", []fault{answer(http.StatusGatewayTimeout, "", "")}, "", "success", "", 2},
		{"404", "success", []fault{answer(http.StatusNotFound, "text/plain", "404 page not found")}, "", "success", "", 2},
		{"429 with Retry-After", "ratelimit,success", nil, "", "success", "", 2},
		{"html", "html,success", nil, "", "success", "", 2},
		{"truncated", "truncated,success", nil, "", "success", "", 2},
		{"4 MiB body", "huge,success", nil, "", "success", "", 2},
		{"garbage", "garbage,success", nil, "", "success", "", 2},
		{"wrong shape", "wrongshape,success", nil, "", "success", "", 2},
		{"unknown code", "unknowncode,success", nil, "", "success", "", 2},
		{"empty 200", "success", []fault{answer(http.StatusOK, "application/json", "")}, "", "success", "", 2},
		{"JSON null", "success", []fault{answer(http.StatusOK, "application/json", "null")}, "", "success", "", 2},
		{"stalled body", "success", []fault{stalled}, "", "success", "", 2},
		{"redirect elsewhere", "success", []fault{func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			http.Redirect(w, r, attacker.URL+"/steal", http.StatusTemporaryRedirect)
		}}, "", "success", "", 2},
		// The content type is not what decides: the body is read and, for
		// AppotaPay, authenticated as usual.
		{"success labelled text/html", "success", []fault{relabelled("text/html; charset=utf-8")}, "", "success", "", 1},
		{"failed labelled text/plain", "failed", []fault{relabelled("text/plain")}, "", "failed", "provider_failed", 1},
		{"pending, success, failed: the first verdict wins", "pending,success,failed", nil, "", "success", "", 2},
		{"pending, failed, success: the first verdict wins", "pending,failed,success", nil, "", "failed", "provider_failed", 2},
		{"hangs until the deadline", "timeout", nil, soon, "expired", "deadline", -1},
		{"html until the deadline", "html", nil, soon, "expired", "deadline", -1},
		{"4 MiB until the deadline", "huge", nil, soon, "expired", "deadline", -1},
	}

	w.Provision() // the server's goroutines for the streams are no leak
	before := goroutines()
	b := w.StartBridge()
	type sent struct{ provider, reference string }
	refs := map[string]sent{}
	var ids []string
	for i, tc := range tests {
		for _, p := range []string{"iak", "ayopop", "appotapay"} {
			rid := fmt.Sprintf("misbehave-%02d-%s", i, p)
			ref := tc.script + "#" + rid
			proxy.inject(p, ref, tc.faults...)
			id := w.Request(p, rid, ref, tc.extra)
			refs[id] = sent{p, ref}
			ids = append(ids, id)
		}
	}
	got := w.WaitEvents(60*time.Second, ids...)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{"iak", "ayopop", "appotapay"} {
				id := publisher.EventID(p, fmt.Sprintf("misbehave-%02d-%s", i, p))
				e := got[id]
				if d := e.Event.Data; d.Status != tc.status || d.Reason != tc.reason {
					t.Errorf("%s: status/reason = %s/%s, want %s/%s: %s", p, d.Status, d.Reason, tc.status, tc.reason, e.Raw)
				}
				if want := topology.ResolvedSubject(p, tc.status); e.Subject != want {
					t.Errorf("%s: subject %s, want %s", p, e.Subject, want)
				}
				r := refs[id]
				calls := proxy.calls(p, r.reference) + w.Sim.Calls(p, r.reference)
				if tc.calls >= 0 && calls != tc.calls {
					t.Errorf("%s: %d checks, want %d", p, calls, tc.calls)
				}
			}
		})
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the bridge followed a redirect %d times", n)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("bridge stopped with %v", err)
	}
	if n := len(w.Events()); n != len(ids) {
		t.Errorf("%d events for %d requests", n, len(ids))
	}

	// Everything the bridge started ends with it: HTTP connections to the
	// providers, the NATS connection, the consumer, the HTTP server.
	if leaked := waitGoroutinesEnd(before, 15*time.Second); len(leaked) > 0 {
		t.Errorf("%d goroutines started while the bridge ran outlive it:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	}
}

// goroutines returns the stack of every goroutine by its id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		id, _, _ := strings.Cut(strings.TrimPrefix(head, "goroutine "), " ")
		out[id] = g
	}
	return out
}

// waitGoroutinesEnd waits until every goroutine started since before has
// ended, and returns the stacks of those that did not. The NATS server's own
// goroutines are left out: the server outlives the bridge, and the test's
// reads of the streams start some.
func waitGoroutinesEnd(before map[string]string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var leaked []string
		for id, stack := range goroutines() {
			if _, old := before[id]; old || strings.Contains(stack, "nats-server/v2/server.") {
				continue
			}
			leaked = append(leaked, stack)
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		<-tick.C
	}
}

// TestEventPublishRefused makes the events and dead-letter streams refuse
// new messages (full, discard new): no request is acknowledged while its
// event or dead letter is not stored, the failures are counted, and once
// the streams take messages again every request ends exactly once.
func TestEventPublishRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.LogLevel, c.PublishTimeout = "info", time.Second })
	b := w.StartBridge()
	ctx := t.Context()
	kept := []string{
		w.Request("iak", "refused-kept-1", "success#refused-kept-1", ""),
		w.Request("iak", "refused-kept-2", "success#refused-kept-2", ""),
	}
	w.Publish("iak", "", "not json: fills the dead-letter stream")
	w.WaitSettled(20*time.Second, 2, 1)

	limit := func(stream string, maxMsgs int64, discard jetstream.DiscardPolicy) {
		t.Helper()
		s, err := w.JS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs, cfg.Discard = maxMsgs, discard
		if _, err := w.JS.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("update %s: %v", stream, err)
		}
	}
	limit(topology.DefaultEventsStream, 2, jetstream.DiscardNew)
	limit(topology.DefaultDeadLetterStream, 1, jetstream.DiscardNew)

	want := map[string]string{kept[0]: "success", kept[1]: "success"}
	scripts := []struct{ script, status string }{{"success", "success"}, {"pending,success", "success"}, {"failed", "failed"}}
	for i := range 12 {
		s := scripts[i%len(scripts)]
		rid := fmt.Sprintf("refused-%02d", i)
		want[w.Request("iak", rid, s.script+"#"+rid, "")] = s.status
	}
	w.Publish("iak", "", `{"request_id": "no closing brace"`)
	w.Publish("iak", "", `{"provider":"iak","reference":"no request id"}`)

	daemontest.WaitFor(t, 30*time.Second, "a refused publish for every request", func() bool {
		refused := map[string]bool{}
		for _, l := range daemontest.LogLines(t, b.Logs.String()) {
			if l["msg"] == "event publish failed; the request will be handled again" {
				refused[fmt.Sprint(l["request_id"])] = true
			}
		}
		return len(refused) == 12 && b.Metric(t, `statusbridge_publish_errors_total{what="deadletter"}`) >= 2
	})
	if n := b.Metric(t, `statusbridge_publish_errors_total{what="event"}`); n < 12 {
		t.Errorf("statusbridge_publish_errors_total{what=\"event\"} = %v, want at least 12", n)
	}
	if n := w.StreamInfo(topology.DefaultRequestsStream).State.Msgs; n != 14 {
		t.Errorf("the work queue holds %d requests while their events are refused, want all 14", n)
	}
	if ev, dl := w.StreamInfo(topology.DefaultEventsStream).State.Msgs, w.StreamInfo(topology.DefaultDeadLetterStream).State.Msgs; ev != 2 || dl != 1 {
		t.Errorf("full streams hold %d events and %d dead letters, want 2 and 1", ev, dl)
	}

	limit(topology.DefaultEventsStream, -1, jetstream.DiscardOld)
	limit(topology.DefaultDeadLetterStream, -1, jetstream.DiscardOld)
	w.WaitSettled(60*time.Second, 14, 3)
	w.checkExactlyOnce(10*time.Second, want)
	if ci := w.ConsumerInfo(); ci.NumPending != 0 || ci.NumAckPending != 0 {
		t.Errorf("consumer: %d pending, %d awaiting an ack", ci.NumPending, ci.NumAckPending)
	}
}
