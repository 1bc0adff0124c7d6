package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statusbridge/statusbridge/internal/batchwriter"
	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/appotapay"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
	"github.com/statusbridge/statusbridge/internal/providers/iak"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// exitError carries a process exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// run is the program: it dispatches the subcommand in args.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the command printed its usage, as asked
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(ctx, stderr, daemonHooks{})
	case "sandbox":
		return runSandbox(ctx, args, stdout, stderr)
	case "request":
		return runRequest(ctx, args, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args, stdout, stderr)
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "config":
		return printConfig(stdout)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "bridge %s\n", buildVersion())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
}

const usage = `bridge turns poll-only payment-status APIs into push events over NATS JetStream.

Usage:
  bridge [run]          the daemon: consume status.requested.*, publish status.resolved.*.*
  bridge sandbox        embedded NATS + provider simulators + the daemon, resolving demo requests
  bridge request        publish one request (--provider P --reference R [--wait]) and print its event
  bridge simulate       the IAK, Ayopop and AppotaPay simulators as a standalone HTTP server
  bridge bench          load-test the real pipeline and print throughput, latency and memory
  bridge config         every BRIDGE_* variable with its default and meaning
  bridge version        the build's version
  bridge help           this text

Configuration is read from BRIDGE_* environment variables (see bridge config).
Run "bridge <command> -h" for a command's flags.
`

// logLinger is how long a log line may wait to be written with others.
// When requests are slow to come (a JetStream that fsyncs every write),
// each flush is a timer waking an idle process: at 5 ms that cost about a
// tenth of the daemon's CPU per request, at 100 ms it is noise.
const logLinger = 100 * time.Millisecond

// daemonHooks lets the sandbox and tests see inside a running daemon.
type daemonHooks struct {
	// started is called once the daemon is consuming, with the NATS URL
	// clients can use and the HTTP address it serves.
	started func(natsURL, httpAddr string)
	// configure adjusts the configuration after it was read and validated.
	configure func(*config)
}

// runDaemon runs the bridge until ctx ends.
func runDaemon(ctx context.Context, stderr io.Writer, hooks daemonHooks) error {
	cfg, err := loadConfig()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if hooks.configure != nil {
		hooks.configure(&cfg)
	}
	// Log lines go out in batches, at most logLinger late: a write system
	// call per line cost about 3 µs of every request under load. A crash
	// loses at most that much of the log, never an event.
	logOut := batchwriter.New(stderr, logLinger)
	defer func() { _ = logOut.Flush() }() // the last lines before the daemon returns
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return err
	}
	start := time.Now()
	m := metrics.New(buildVersion())

	// Teardown runs in reverse order of setup: the subscriber drains
	// first (Run returns), then the HTTP server, the NATS connection and
	// the embedded server close.
	var embedded *server.Server
	natsURL := cfg.NatsURL
	var connOpts []nats.Option
	if natsURL == "" {
		embedded, err = natsserver.Start(natsserver.Options{
			StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
			Listen:     cfg.EmbeddedListen,
			SyncAlways: cfg.EmbeddedSyncAlways,
			ServerName: "statusbridge-embedded",
		})
		if err != nil {
			return err
		}
		defer embedded.Shutdown()
		natsURL = embedded.ClientURL()
		connOpts = append(connOpts, nats.InProcessServer(embedded))
		log.Info("embedded nats-server started", "url", natsURL, "store", cfg.DataDir, "sync_always", cfg.EmbeddedSyncAlways)
	}
	nc, err := connect(natsURL, cfg, log, m, connOpts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := waitConnected(ctx, nc, log); err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	topo := cfg.topology()
	bind := func(ctx context.Context) (jetstream.Consumer, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if cfg.Provision {
			return topology.Provision(ctx, js, topo)
		}
		return topology.Bind(ctx, js, topo)
	}
	cons, err := bindAtStart(ctx, bind, log)
	if err != nil {
		return err
	}

	hc := providers.NewHTTPClient(cfg.RequestTimeout, cfg.Concurrency)
	// Keep-alive connections to the providers end with the daemon, not
	// after the transport's idle timeout (the sandbox runs it in-process).
	defer hc.CloseIdleConnections()
	clients, err := buildProviders(cfg, hc)
	if err != nil {
		return err
	}
	var enabled []string
	for name, c := range clients {
		if c != nil {
			enabled = append(enabled, name)
		}
	}
	sub, err := subscriber.New(subscriber.Config{
		Concurrency:     cfg.Concurrency,
		RequestTimeout:  cfg.RequestTimeout,
		PublishTimeout:  cfg.PublishTimeout,
		MaxWait:         cfg.MaxWait,
		MaxDeadline:     cfg.MaxDeadline,
		NotFoundGrace:   cfg.NotFoundGrace,
		Schedules:       cfg.schedules(),
		ShutdownTimeout: cfg.ShutdownTimeout,
		MaxPending:      cfg.MaxPending,
	}, subscriber.Options{
		Consumer:  cons,
		Rebind:    bind,
		Publisher: publisher.New(js, topo.EventsStream, topo.DeadLetterStream),
		Providers: clients,
		Logger:    log,
		Metrics:   m,
	})
	if err != nil {
		return err
	}

	ready := func() bool { return nc.IsConnected() && sub.Ready() }
	httpAddr, stopHTTP, err := serveHTTP(cfg.HttpAddr, m, ready, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	log.Info("bridge started", "version", buildVersion(), "providers", strings.Join(slices.Sorted(slices.Values(enabled)), ","),
		"consumer", topo.Consumer, "provision", cfg.Provision, "http", httpAddr, "startup", time.Since(start).Round(time.Millisecond))
	if hooks.started != nil {
		go func() {
			// Report once the subscriber consumes, so callers can publish.
			for !sub.Ready() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			if ctx.Err() == nil {
				hooks.started(natsURL, httpAddr)
			}
		}()
	}

	err = sub.Run(ctx)
	log.Info("bridge stopping", "err", err)
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "err", derr)
	}
	return err
}

// waitConnected waits for the first connection to NATS, saying every few
// seconds why there is none yet. Credentials the server refuses stop the
// start: that is a configuration error, not an outage.
func waitConnected(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastLog time.Time
	for !nc.IsConnected() {
		err := nc.LastError()
		if isAuthError(err) {
			return fmt.Errorf("NATS refused the credentials (BRIDGE_NATS_*): %w", err)
		}
		if err != nil && time.Since(lastLog) >= 5*time.Second {
			log.Warn("NATS not reachable yet; retrying", "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped before NATS was reachable: %w", cmp.Or(err, ctx.Err()))
		case <-tick.C:
		}
	}
	return nil
}

func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

// bindAtStart provisions or binds the consumer, waiting for NATS while it
// is unreachable; a JetStream that answers but refuses is a startup error.
func bindAtStart(ctx context.Context, bind func(context.Context) (jetstream.Consumer, error), log *slog.Logger) (jetstream.Consumer, error) {
	for {
		cons, err := bind(ctx)
		if err == nil {
			return cons, nil
		}
		if !isUnavailable(err) {
			return nil, err
		}
		log.Warn("JetStream not reachable yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped before JetStream was reachable: %w", err)
		case <-time.After(2 * time.Second):
		}
	}
}

func isUnavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected)
}

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// connect opens the NATS connection: reconnecting forever, logging and
// counting disconnects, with the configured authentication and TLS.
func connect(url string, cfg config, log *slog.Logger, m *metrics.Metrics, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("statusbridge " + buildVersion()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		// By default a connection that meets the same auth error twice
		// closes for good, and the daemon would run on without NATS until
		// restarted. Refused credentials at start stop the start
		// (waitConnected); later, as during a rotation, keep trying.
		nats.IgnoreAuthErrorAbort(),
		nats.PingInterval(10 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return // our own Drain or Close
			}
			m.NATSDisconnects.Inc()
			log.Warn("disconnected from NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.NATSReconnects.Inc()
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", "err", err)
		}),
	}
	opts = append(opts, extra...)
	auth, err := natsAuth(cfg)
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

// natsAuth turns the BRIDGE_NATS_* credentials and TLS files into options.
func natsAuth(cfg config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.NatsCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NatsCreds))
	}
	if cfg.NatsNkeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NatsNkeySeed)
		if err != nil {
			return nil, fmt.Errorf("BRIDGE_NATS_NKEY_SEED: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.NatsUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NatsUser, cfg.NatsPassword.Reveal()))
	}
	if cfg.NatsToken.IsSet() {
		opts = append(opts, nats.Token(cfg.NatsToken.Reveal()))
	}
	if cfg.NatsTlsCa != "" {
		opts = append(opts, nats.RootCAs(cfg.NatsTlsCa))
	}
	if cfg.NatsTlsCert != "" {
		opts = append(opts, nats.ClientCert(cfg.NatsTlsCert, cfg.NatsTlsKey))
	}
	return opts, nil
}

// buildProviders builds a client for every provider with credentials, and
// maps the others to nil (disabled). A nil hc only validates.
func buildProviders(cfg config, hc *http.Client) (map[string]providers.Provider, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	out := map[string]providers.Provider{}
	var errs []error
	if cfg.IAK.Username != "" || cfg.IAK.APIKey.IsSet() {
		c, err := iak.New(iak.Config{BaseURL: cfg.IAK.URL, Username: cfg.IAK.Username, APIKey: cfg.IAK.APIKey}, hc)
		if err != nil {
			errs = append(errs, fmt.Errorf("BRIDGE_IAK_*: %w", err))
		} else {
			out[iak.Name] = c
		}
	} else {
		out[iak.Name] = nil
	}
	if cfg.Ayopop.APIKey.IsSet() || cfg.Ayopop.APISecret.IsSet() {
		c, err := ayopop.New(ayopop.Config{BaseURL: cfg.Ayopop.URL, APIKey: cfg.Ayopop.APIKey, APISecret: cfg.Ayopop.APISecret, Version: cfg.Ayopop.Version}, hc)
		if err != nil {
			errs = append(errs, fmt.Errorf("BRIDGE_AYOPOP_*: %w", err))
		} else {
			out[ayopop.Name] = c
		}
	} else {
		out[ayopop.Name] = nil
	}
	if cfg.AppotaPay.PartnerCode != "" || cfg.AppotaPay.APIKey.IsSet() || cfg.AppotaPay.SecretKey.IsSet() {
		c, err := appotapay.New(appotapay.Config{BaseURL: cfg.AppotaPay.URL, PartnerCode: cfg.AppotaPay.PartnerCode, APIKey: cfg.AppotaPay.APIKey, SecretKey: cfg.AppotaPay.SecretKey}, hc)
		if err != nil {
			errs = append(errs, fmt.Errorf("BRIDGE_APPOTAPAY_*: %w", err))
		} else {
			out[appotapay.Name] = c
		}
	} else {
		out[appotapay.Name] = nil
	}
	return out, errors.Join(errs...)
}

// serveHTTP serves /healthz, /readyz and /metrics on addr (empty: none) and
// returns the address it listens on and a stop function.
func serveHTTP(addr string, m *metrics.Metrics, ready func() bool, log *slog.Logger) (string, func(), error) {
	if addr == "" {
		return "", func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready: NATS disconnected or consumer not bound\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("BRIDGE_HTTP_ADDR: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
