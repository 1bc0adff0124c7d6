package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/metrics"
)

// connect opens the NATS connection: reconnecting forever, logging and
// counting disconnects, with the configured authentication and TLS.
func connect(url string, cfg config.Config, version string, log *slog.Logger, m *metrics.Metrics, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("statusbridge " + version),
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
	auth, err := NATSAuth(cfg)
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

// NATSAuth turns the BRIDGE_NATS_* credentials and TLS files of cfg into
// connection options, for the daemon and for other clients such as
// `bridge request`.
func NATSAuth(cfg config.Config) ([]nats.Option, error) {
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
