package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/service"
	"github.com/statusbridge/statusbridge/internal/subscriber"
)

// runInspect prints a request's state, as the bridges' status.inspect
// endpoint answers it; exit code 1 when no bridge knows the id.
func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return callService(ctx, "inspect", service.InspectSubject, args, stdout, stderr)
}

// callService is `bridge inspect` and `bridge cancel`: one call to the
// bridges' service about the request_id in args, its answer printed as one
// JSON object.
func callService(ctx context.Context, name, subject string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := natsURLFlag(fs)
	timeout := fs.Duration("timeout", 15*time.Second, "give up when no bridge answered within this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bridge %s [flags] <request_id>\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("want one request_id")}
	}
	nc, _, err := connectClient(*natsURL, "statusbridge "+name, stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	in, err := service.Call(ctx, nc, subject, fs.Arg(0))
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no bridge answers on %s: is one running, connected to this NATS?", subject)
	}
	var serr *service.Error
	if errors.As(err, &serr) && serr.Code == "400" {
		return &exitError{code: exitUsage, err: err}
	}
	if err != nil {
		return err
	}
	out, err := json.Marshal(in)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(out))
	if in.State == subscriber.StateUnknown {
		return &exitError{code: 1, err: fmt.Errorf("request %s is unknown to the bridge", in.RequestID)}
	}
	return nil
}

// natsURLFlag is the --nats-url flag of the commands that talk to NATS.
func natsURLFlag(fs *flag.FlagSet) *string {
	return fs.String("nats-url", "", "NATS URL (default: BRIDGE_NATS_URL, else nats://127.0.0.1:4222, where the embedded server listens)")
}

// connectClient connects a command to NATS and returns its configuration: the
// URL of --nats-url, BRIDGE_NATS_URL or the default, with the BRIDGE_NATS_*
// credentials.
func connectClient(natsURL, name string, stderr io.Writer) (*nats.Conn, config.Config, error) {
	cfg, warnings, err := loadConfig(stderr)
	if err != nil {
		return nil, cfg, err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "bridge: warning: %s\n", w)
	}
	url := firstNonEmpty(natsURL, cfg.NatsURL, nats.DefaultURL)
	auth, err := daemon.NATSAuth(cfg)
	if err != nil {
		return nil, cfg, err
	}
	nc, err := nats.Connect(url, append(auth, nats.Name(name))...)
	if err != nil {
		return nil, cfg, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, cfg, nil
}
