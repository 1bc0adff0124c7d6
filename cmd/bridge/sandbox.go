package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// demoRequest is one request the sandbox publishes to show an outcome.
type demoRequest struct {
	subject   string // status.requested.<provider>
	body      func(id string) string
	about     string
	reference string
	// callbackAfter, when set, has the Ayopop simulator settle the
	// reference and send its callback that long after the publish.
	callbackAfter time.Duration
}

// demoRequests shows every kind of ending: the references name the
// simulator's script (see package sim).
func demoRequests(deadline time.Time) []demoRequest {
	dl := deadline.UTC().Format(time.RFC3339)
	req := func(provider, ref, about string, extra string) demoRequest {
		return demoRequest{
			subject:   topology.RequestSubject(provider),
			about:     about,
			reference: ref,
			body: func(id string) string {
				return fmt.Sprintf(`{"request_id":%q,"provider":%q,"reference":%q%s,"metadata":{"demo":%q}}`, id, provider, ref, extra, about)
			},
		}
	}
	withDeadline := fmt.Sprintf(`,"deadline":%q`, dl)
	return []demoRequest{
		req("iak", "success#inv-1001", "IAK answers success at once", ""),
		req("iak", "pending*2,success#inv-1002", "IAK pending twice, then success", ""),
		req("iak", "pending,failed#inv-1003", "IAK pending, then failed", ""),
		req("iak", "error503,ratelimit,success#inv-1004", "IAK 503 and 429 with Retry-After, then success", ""),
		req("iak", "notfound#inv-1005", "IAK never heard of it: failed/not_found after the grace", ""),
		req("ayopop", "pending,success#ayo-2001", "Ayopop processing, then success", ""),
		req("ayopop", "failed#ayo-2002", "Ayopop failed", ""),
		withCallback(req("ayopop", "pending*1000,success#ayo-2003", "Ayopop processing until its callback at 2s: confirmed at once, not at the deadline", withDeadline), 2*time.Second),
		req("appotapay", "pending,success#app-3001", "AppotaPay pending, then a signed success", ""),
		req("appotapay", "badsig#app-3002", "AppotaPay forged signature: never trusted, expired/bad_signature at the deadline", withDeadline),
		req("iak", "pending#inv-1006", "IAK stays pending: expired/deadline", withDeadline),
		req("iak", "autherror#inv-1007", "IAK rejects our credentials: expired/auth_rejected", withDeadline),
		{subject: topology.RequestSubject("iak"), about: "missing reference: rejected/invalid_request", body: func(id string) string {
			return fmt.Sprintf(`{"request_id":%q,"provider":"iak"}`, id)
		}},
		{subject: topology.RequestSubject("paypal"), about: "unknown provider: rejected/unknown_provider", body: func(id string) string {
			return fmt.Sprintf(`{"request_id":%q,"provider":"paypal","reference":"x"}`, id)
		}},
		{subject: topology.RequestSubject("iak"), about: "not JSON: dead-lettered", body: func(string) string { return "this is not json" }},
	}
}

func withCallback(d demoRequest, after time.Duration) demoRequest {
	d.callbackAfter = after
	return d
}

// runSandbox runs an embedded NATS server, the provider simulators and the
// daemon in one process, publishes demo requests and prints their events.
func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "exit once every demo request has its event (or dead letter)")
	noDemo := fs.Bool("no-demo", false, "publish no demo requests; just run, for `bridge request` and other clients")
	listen := fs.String("listen", "127.0.0.1:4222", "client address of the embedded NATS server (port 0: any free port)")
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of /healthz, /readyz and /metrics")
	callbackAddr := fs.String("callbacks", "127.0.0.1:8081", "address of the provider callback listener (POST /callbacks/ayopop); empty disables callbacks")
	capacity := sim.RegisterCapacityFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: bridge sandbox [--once] [--no-demo] [--listen host:port] [--http host:port] [capacity flags]\n\n"+
			"Runs an embedded NATS server, the IAK, Ayopop and AppotaPay simulators and the bridge\n"+
			"in one process, with no credentials needed, and publishes demo requests that end in\n"+
			"every possible way. Logs go to stderr, events to stdout.\n\n"+
			"The capacity flags make the simulators slow (--latency), rate-limited (--rate-limit,\n"+
			"answering 429) or down for a while (--outage-after, --outage-for), each also per\n"+
			"provider (--iak-rate-limit …); BRIDGE_<PROVIDER>_RATE_LIMIT and the other BRIDGE_*\n"+
			"variables set the bridge's side.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}

	cfg, warnings, err := loadConfig(stderr)
	if err != nil {
		return err
	}
	dataDir, err := os.MkdirTemp("", "statusbridge-sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)

	profiles, err := capacity.Profiles(time.Now())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	simulators := sim.New(sim.SandboxCredentials(), sim.WithProfiles(profiles))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simSrv := &http.Server{Handler: simulators, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(ln) }()
	defer simSrv.Close()
	simURL := "http://" + ln.Addr().String()
	sandboxConfig(&cfg, dataDir, *listen, *httpAddr, simURL)
	cfg.CallbackAddr = *callbackAddr

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan string, 1)
	daemonErr := make(chan error, 1)
	go func() {
		daemonErr <- daemon.Run(ctx, cfg, daemon.Options{
			Log: stderr, Version: buildVersion(), Warnings: warnings,
			Started: func(natsURL, addr string) {
				fmt.Fprintf(stdout, "sandbox ready: NATS %s, simulators %s, metrics http://%s/metrics\n", natsURL, simURL, addr)
				started <- natsURL
			},
			CallbacksListening: func(addr string) {
				simulators.SetCallbackURL("http://" + addr + "/callbacks/ayopop")
			},
		})
	}()
	var natsURL string
	select {
	case natsURL = <-started:
	case err := <-daemonErr:
		return err
	case <-ctx.Done():
		return <-daemonErr
	}
	if *noDemo {
		fmt.Fprintf(stdout, "try: bridge request --nats-url %s --provider iak --reference 'pending*2,success#my-order' --wait\n", natsURL)
		return <-daemonErr
	}

	allDone, err := publishDemo(ctx, natsURL, stdout, simulators, cfg.CallbackAddr != "")
	if err != nil {
		cancel()
		<-daemonErr
		return err
	}
	if *once {
		select {
		case <-allDone:
			fmt.Fprintln(stdout, "every demo request is resolved")
		case <-ctx.Done():
		}
		cancel()
	}
	return <-daemonErr
}

// sandboxConfig points the daemon at the simulators with their
// credentials and a fast schedule, so the demo ends within seconds.
func sandboxConfig(c *config.Config, dataDir, listen, httpAddr, simURL string) {
	c.NatsURL = ""
	// The embedded server asks for no credentials and speaks no TLS.
	c.NatsCreds, c.NatsNkeySeed, c.NatsUser, c.NatsPassword, c.NatsToken = "", "", "", "", ""
	c.NatsTlsCa, c.NatsTlsCert, c.NatsTlsKey = "", "", ""
	c.DataDir = dataDir
	c.EmbeddedListen = listen
	c.EmbeddedSyncAlways = false // a throwaway store
	c.HttpAddr = httpAddr
	if err := c.Set(sim.Environ(sim.Variables(simURL, sim.SandboxCredentials()))...); err != nil {
		panic(err) // the simulators name only variables the bridge has
	}
	c.Backoff.Initial, c.Backoff.Max = time.Second, 4*time.Second
	c.NotFoundGrace = 8 * time.Second
	c.RequestTimeout = 5 * time.Second
	c.ShutdownTimeout = 10 * time.Second
	if os.Getenv("BRIDGE_LOG_FORMAT") == "" {
		c.LogFormat = "text"
	}
	if os.Getenv("BRIDGE_LOG_LEVEL") == "" {
		c.LogLevel = "warn"
	}
}

// publishDemo publishes the demo requests and prints each event as it
// arrives; the returned channel closes when all have one.
func publishDemo(ctx context.Context, natsURL string, stdout io.Writer, simulators *sim.Server, callbacks bool) (<-chan struct{}, error) {
	nc, err := nats.Connect(natsURL, nats.Name("statusbridge sandbox demo"))
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	run := randomHex(3)
	start := time.Now()
	demos := demoRequests(start.Add(15 * time.Second))
	var mu sync.Mutex
	waiting := map[string]string{} // event id or dead-letter sequence → about
	done := make(chan struct{})
	finish := func(key string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		about, ok := waiting[key]
		delete(waiting, key)
		if ok && len(waiting) == 0 {
			close(done)
		}
		return about, ok
	}
	if _, err := nc.Subscribe(topology.ResolvedPrefix+">", func(m *nats.Msg) {
		var ev publisher.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		about, ok := finish(ev.ID)
		if !ok {
			return
		}
		d := ev.Data
		line := fmt.Sprintf("%6.1fs  %-9s %-9s %-22s attempts=%d", time.Since(start).Seconds(), d.Status, d.Provider, d.Reason, d.Attempts)
		if d.Amount != "" {
			line += fmt.Sprintf(" amount=%s %s", d.Amount, d.Currency)
		}
		fmt.Fprintf(stdout, "%s  (%s)\n", line, about)
	}); err != nil {
		return nil, err
	}
	if _, err := nc.Subscribe(topology.DeadLetterPrefix+">", func(m *nats.Msg) {
		about, ok := finish("deadletter:" + m.Header.Get(publisher.HeaderOriginalSequence))
		if !ok {
			return
		}
		fmt.Fprintf(stdout, "%6.1fs  %-9s %-9s %-22s (%s)\n", time.Since(start).Seconds(), "deadlettr", strings.TrimPrefix(m.Subject, topology.DeadLetterPrefix),
			m.Header.Get(publisher.HeaderDeadLetterReason), about)
	}); err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}

	if !callbacks { // the callback's demo would only expire
		demos = slices.DeleteFunc(demos, func(d demoRequest) bool { return d.callbackAfter > 0 })
	}
	fmt.Fprintf(stdout, "publishing %d demo requests; events follow as the bridge resolves them:\n", len(demos))
	for i, d := range demos {
		id := fmt.Sprintf("demo-%s-%02d", run, i+1)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		mu.Lock()
		ack, err := js.PublishMsg(pctx, &nats.Msg{Subject: d.subject, Data: []byte(d.body(id))}, jetstream.WithMsgID(id))
		if err == nil {
			provider := strings.TrimPrefix(d.subject, topology.RequestPrefix)
			if strings.Contains(d.about, "dead-lettered") {
				waiting[fmt.Sprintf("deadletter:%d", ack.Sequence)] = d.about
			} else {
				waiting[publisher.EventID(provider, id)] = d.about
			}
		}
		mu.Unlock()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("publish demo request: %w", err)
		}
		if d.callbackAfter > 0 {
			time.AfterFunc(d.callbackAfter, func() {
				status, err := simulators.AyopopCallback(ctx, d.reference, false)
				result := fmt.Sprintf("HTTP %d", status)
				if err != nil {
					result = err.Error()
				}
				fmt.Fprintf(stdout, "%6.1fs  %-9s %-9s %-22s the simulator settled %s and called the bridge back\n", time.Since(start).Seconds(), "callback", "ayopop", result, d.reference)
			})
		}
	}
	return done, nil
}
