package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// runProvision creates or updates the streams, the key-value buckets and
// the consumer, as a bridge with BRIDGE_PROVISION=true does at start, and
// exits: run it once as the `provisioner` NATS user, then run the bridges
// with BRIDGE_PROVISION=false as the `bridge` user.
func runProvision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", time.Minute, "give up when NATS has not answered within this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bridge provision [flags]")
		fmt.Fprintln(stderr, "Creates or updates the streams, buckets and consumer of the BRIDGE_* configuration (BRIDGE_STREAM_REPLICAS replicas), then exits.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("provision takes no arguments")}
	}
	cfg, warnings, err := loadConfig(stderr)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "bridge: warning: %s\n", w)
	}
	if cfg.NatsURL == "" {
		return &exitError{code: exitUsage, err: errors.New("BRIDGE_NATS_URL is empty: provision creates the streams on a NATS server")}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// A refused API call gets no answer, only an asynchronous error: stop
	// at the first one instead of waiting for the timeout.
	ctx, refused := context.WithCancelCause(ctx)
	defer refused(nil)
	auth, err := daemon.NATSAuth(cfg)
	if err != nil {
		return err
	}
	// The NATS server may still be starting (compose starts both at once).
	nc, err := nats.Connect(cfg.NatsURL, append(auth, nats.Name("statusbridge provision"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				refused(fmt.Errorf("NATS refused (provision as the provisioner user): %w", err))
			}
		}))...)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	topo := cfg.Topology()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = topology.Provision(pctx, js, topo)
		pcancel()
		if err == nil {
			break
		}
		if cause := context.Cause(ctx); errors.Is(cause, nats.ErrPermissionViolation) {
			return cause
		}
		// Wait for a server that is not up yet; a refusal is final.
		waiting := !nc.IsConnected() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
			errors.Is(err, jetstream.ErrJetStreamNotEnabled)
		if !waiting {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("NATS did not answer within %v: %w", *timeout, err)
		case <-time.After(time.Second):
		}
	}
	fmt.Fprintf(stdout, "provisioned streams %s, %s, %s, buckets %s, %s and consumer %s (%d replicas)\n",
		topo.RequestsStream, topo.EventsStream, topo.DeadLetterStream, topo.CapacityBucket, topo.ChecksBucket, topo.Consumer, topo.Replicas)
	return nil
}
