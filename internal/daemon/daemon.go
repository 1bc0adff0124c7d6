// Package daemon assembles the bridge from a config.Config and runs it: the
// NATS connection (or an embedded nats-server), the streams and the
// consumer, the provider clients, the subscriber and the HTTP endpoints.
// The binary, `bridge sandbox`, the benchmark and the tests all start the
// bridge through Run.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/callback"
	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/service"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
	"github.com/statusbridge/statusbridge/internal/tracing"
)

// Options are what Run needs besides the configuration.
type Options struct {
	// Log receives the log lines, each written when it is logged, so that a
	// crash keeps every line before it. The binary passes os.Stderr; nil
	// discards them.
	Log io.Writer
	// Version names the build in logs, /metrics and the NATS connection
	// name; empty is "dev".
	Version string
	// Warnings are logged at WARN level once the logger is up (the ones
	// config.Load returns).
	Warnings []string
	// Started, when set, is called once the bridge consumes, with the NATS
	// URL clients can use and the address of /metrics (empty when
	// BRIDGE_HTTP_ADDR is).
	Started func(natsURL, httpAddr string)
	// TracerProvider, when set, makes the spans of traced requests (tests
	// pass an in-memory one); otherwise the standard OTEL_* environment
	// decides (see tracing.Setup), and without it tracing is off.
	TracerProvider trace.TracerProvider
	// CallbacksListening, when set, is called with the address of the
	// callback listener once it listens (BRIDGE_CALLBACK_ADDR may name
	// port 0).
	CallbacksListening func(addr string)
}

// Run runs the bridge until ctx ends, then drains: in-flight checks get
// cfg.ShutdownTimeout to finish. It returns nil after a clean stop, and an
// error when cfg is invalid or the bridge cannot start.
func Run(ctx context.Context, cfg config.Config, o Options) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	version := cmp.Or(o.Version, "dev")
	log := newLogger(cfg, cmp.Or[io.Writer](o.Log, io.Discard))
	for _, w := range o.Warnings {
		log.Warn(w)
	}
	start := time.Now()
	m := metrics.New(version)

	// Teardown runs in reverse order of setup: the subscriber drains
	// first (Run returns), then the HTTP server, the NATS connection and
	// the embedded server close.
	var embedded *server.Server
	natsURL := cfg.NatsURL
	var connOpts []nats.Option
	if natsURL == "" {
		var err error
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
	nc, err := connect(natsURL, cfg, version, log, m, connOpts...)
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

	topo := cfg.Topology()
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
	clients, err := cfg.Providers(hc)
	if err != nil {
		return err
	}
	var enabled []string
	for name, c := range clients {
		if c != nil {
			enabled = append(enabled, name)
		}
	}
	slices.Sort(enabled)
	if len(enabled) == 0 {
		var vars []string
		for _, name := range config.ProviderNames() {
			vars = append(vars, "BRIDGE_"+strings.ToUpper(name)+"_*")
		}
		log.Warn("no provider is configured: every request will be rejected with provider_not_configured; " +
			"set " + strings.Join(vars, ", ") + " (see bridge config), or try bridge sandbox")
	}
	buckets, gates, capm, err := openCapacity(ctx, js, cfg, clients, m, log)
	if err != nil {
		return err
	}
	tp := o.TracerProvider
	if tp == nil {
		p, err := tracing.Setup(ctx, version, log)
		if err != nil {
			return err
		}
		// Spans still buffered are exported after the subscriber drained.
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				log.Warn("tracing: could not export the last spans", "err", err)
			}
		}()
		tp = p.TracerProvider
	}
	signer, err := cfg.EventSigner() // validated above
	if err != nil {
		return err
	}
	var pubOpts []publisher.Option
	if signer != nil {
		public, _ := signer.PublicKey()
		log.Info("events are signed", "signer", public)
		pubOpts = append(pubOpts, publisher.WithSigner(signer))
	}
	sub, err := subscriber.New(subscriber.Config{
		Concurrency:     cfg.Concurrency,
		RequestTimeout:  cfg.RequestTimeout,
		PublishTimeout:  cfg.PublishTimeout,
		MaxWait:         cfg.MaxWait,
		MaxDeadline:     cfg.MaxDeadline,
		NotFoundGrace:   cfg.NotFoundGrace,
		Schedules:       cfg.Schedules(),
		ShutdownTimeout: cfg.ShutdownTimeout,
		MaxPending:      cfg.MaxPending,
		Callbacks:       map[string]bool{ayopop.Name: cfg.CallbackAddr != ""},
	}, subscriber.Options{
		Consumer:  cons,
		Rebind:    bind,
		Publisher: publisher.New(js, topo.EventsStream, topo.DeadLetterStream, pubOpts...),
		Providers: clients,
		Logger:    log,
		Metrics:   m,

		Gates:           gates,
		CapacityKV:      buckets.Capacity,
		ChecksKV:        buckets.Checks,
		CapacityMetrics: capm,
		TracerProvider:  tp,
	})
	if err != nil {
		return err
	}

	// Calls under way finish during the drain; new ones go to other
	// replicas once shutdown begins.
	svc, err := service.Start(context.WithoutCancel(ctx), nc, version, sub, log)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { _ = svc.Stop() })
	// The server has the service's subscriptions once the bridge reports
	// it started.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		log.Warn("nats flush", "err", err)
	}

	cbm := callback.NewMetrics(m.Registry)
	if cfg.CallbackAddr != "" {
		stop, err := serveCallbacks(cfg, sub, cbm, log, o.CallbacksListening)
		if err != nil {
			return err
		}
		// Before the drain: the confirming checks under way publish.
		defer stop()
	}

	ready := func() bool { return nc.IsConnected() && sub.Ready() }
	httpAddr, stopHTTP, err := serveHTTP(cfg.HttpAddr, Handler(m, ready), log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	log.Info("bridge started", "version", version, "providers", strings.Join(enabled, ","),
		"consumer", topo.Consumer, "provision", cfg.Provision, "http", httpAddr, "startup", time.Since(start).Round(time.Millisecond))
	if o.Started != nil {
		go func() {
			// Report once the subscriber consumes, so callers can publish.
			for !sub.Ready() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			if ctx.Err() == nil {
				o.Started(natsURL, httpAddr)
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

// openCapacity opens the shared-state buckets and a gate for every
// configured provider, which keeps each within its shared budget.
func openCapacity(ctx context.Context, js jetstream.JetStream, cfg config.Config, clients map[string]providers.Provider, m *metrics.Metrics, log *slog.Logger) (topology.Buckets, map[string]*capacity.Gate, *capacity.Metrics, error) {
	names := slices.Sorted(maps.Keys(clients))
	capm := capacity.NewMetrics(m.Registry, names)
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	buckets, err := topology.OpenBuckets(octx, js, cfg.Topology())
	if err != nil {
		return buckets, nil, nil, err
	}
	settings := cfg.Capacity()
	gates := map[string]*capacity.Gate{}
	for _, name := range names {
		if clients[name] == nil {
			continue
		}
		g, err := capacity.Open(ctx, buckets.Capacity, name, settings[name], log, capm)
		if err != nil {
			return buckets, nil, nil, err
		}
		gates[name] = g
		if s := settings[name]; s.Limit > 0 {
			log.Info("provider rate limit", "provider", name, "calls_per_second", s.Limit, "burst", s.Burst)
		}
	}
	return buckets, gates, capm, nil
}

// newLogger writes every record to w as it is logged, in the configured
// format and level (both validated).
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serveCallbacks serves POST /callbacks/ayopop on BRIDGE_CALLBACK_ADDR,
// a listener of its own: it faces the providers, /metrics does not.
func serveCallbacks(cfg config.Config, sub *subscriber.Subscriber, m *callback.Metrics, log *slog.Logger, listening func(string)) (stop func(), err error) {
	h := callback.New(callback.Options{
		Confirmer:      sub,
		ValidReference: subscriber.ValidReference,
		Timeout:        cfg.RequestTimeout + 2*cfg.PublishTimeout + 2*time.Second,
		Workers:        cfg.Concurrency,
		Log:            log,
		Metrics:        m,
	})
	ln, err := net.Listen("tcp", cfg.CallbackAddr)
	if err != nil {
		return nil, fmt.Errorf("BRIDGE_CALLBACK_ADDR: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("callback listener", "err", err)
		}
	}()
	log.Info("serving provider callbacks", "addr", ln.Addr().String(), "path", "/callbacks/ayopop")
	if listening != nil {
		listening(ln.Addr().String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		h.Close()
	}, nil
}
