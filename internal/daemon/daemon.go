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
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
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
		log.Warn("no provider is configured: every request will be rejected with provider_not_configured; " +
			"set BRIDGE_IAK_*, BRIDGE_AYOPOP_* or BRIDGE_APPOTAPAY_* (see bridge config), or try bridge sandbox")
	}
	buckets, gates, capm, err := openCapacity(ctx, js, cfg, clients, m, log)
	if err != nil {
		return err
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
	})
	if err != nil {
		return err
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
