package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/rerequest"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// runRerequest re-submits the requests behind the chosen events: a dry run
// that prints what it would send, unless --send.
func runRerequest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rerequest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.String("status", "", "re-submit the requests of events with this status, e.g. expired (required)")
	reason := fs.String("reason", "", "and this reason, e.g. auth_rejected (default: any)")
	since := fs.Duration("since", 0, "of events stored within this long before now, e.g. 6h (required)")
	send := fs.Bool("send", false, "publish the new requests (default: a dry run printing them)")
	stream := fs.String("stream", topology.DefaultEventsStream, "the events stream")
	natsURL := natsURLFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bridge rerequest --status S [--reason R] --since D [--send]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if *status == "" || *since <= 0 || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("--status and a positive --since are required, and nothing else")}
	}
	nc, _, err := connectClient(*natsURL, "statusbridge rerequest", stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	reqs, skipped, err := rerequest.Plan(ctx, js, *stream, rerequest.Filter{Status: *status, Reason: *reason, Since: time.Now().Add(-*since)})
	if err != nil {
		return err
	}
	for _, r := range reqs {
		b, err := json.Marshal(r, json.Deterministic(true))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "skipped event %s: %s\n", s.EventID, s.Why)
	}
	if !*send {
		fmt.Fprintf(stderr, "dry run: %d requests would be sent; --send sends them\n", len(reqs))
		return nil
	}
	n, err := rerequest.Send(ctx, js, reqs)
	fmt.Fprintf(stderr, "sent %d of %d requests\n", n, len(reqs))
	return err
}
