package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// signersFlag collects the repeatable --signer.
type signersFlag []string

func (s *signersFlag) String() string { return strings.Join(*s, ",") }
func (s *signersFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// runVerify checks events in the events stream against trusted signers:
// one event by its stream sequence, or every event as it is stored.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var signers signersFlag
	fs.Var(&signers, "signer", "public nkey whose signature is trusted (required; repeat it during a rollover of the signing seed)")
	seq := fs.Uint64("seq", 0, "the event at this sequence of the events stream (with --follow: start there)")
	follow := fs.Bool("follow", false, "verify every event as it is stored (from --seq, else new ones only), one line each, until interrupted")
	natsURL := fs.String("nats-url", "", "NATS URL (default: BRIDGE_NATS_URL, else nats://127.0.0.1:4222)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bridge verify --signer KEY (--seq N | --follow [--seq N]) [flags]")
		fmt.Fprintln(stderr, "Checks an event's Statusbridge-Signature against the trusted signers, and that its subject names its data's provider and status.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if len(signers) == 0 || (*seq == 0 && !*follow) || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("--signer and one of --seq or --follow are required")}
	}

	nc, cfg, err := connectClient(*natsURL, "statusbridge verify", stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	if !*follow {
		stream, err := js.Stream(ctx, cfg.EventsStream)
		if err != nil {
			return fmt.Errorf("events stream %s: %w", cfg.EventsStream, err)
		}
		m, err := stream.GetMsg(ctx, *seq)
		if err != nil {
			return fmt.Errorf("event %d of %s: %w", *seq, cfg.EventsStream, err)
		}
		id, err := verifyEvent(m.Subject, m.Data, m.Header, signers)
		if err != nil {
			return fmt.Errorf("event %d on %s refused: %w", *seq, m.Subject, err)
		}
		fmt.Fprintf(stdout, "%s\n", m.Data)
		fmt.Fprintf(stderr, "verified: event %s (sequence %d, %s) signed by %s\n", id, *seq, m.Subject, m.Header.Get(publisher.HeaderSigner))
		return nil
	}

	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{topology.ResolvedPrefix + ">"}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if *seq > 0 {
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *seq
	}
	cons, err := js.OrderedConsumer(ctx, cfg.EventsStream, occ)
	if err != nil {
		return fmt.Errorf("read events from %s: %w", cfg.EventsStream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var sseq uint64
		if md, err := m.Metadata(); err == nil {
			sseq = md.Sequence.Stream
		}
		if id, err := verifyEvent(m.Subject(), m.Data(), m.Headers(), signers); err != nil {
			fmt.Fprintf(stdout, "REFUSED %d %s: %v\n", sseq, m.Subject(), err)
		} else {
			fmt.Fprintf(stdout, "ok %d %s %s\n", sseq, m.Subject(), id)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "verifying events of %s; interrupt to stop\n", cfg.EventsStream)
	<-ctx.Done()
	cc.Stop()
	return nil
}

// verifyEvent checks an event message's signature against signers and that
// its subject is the one its data names, and returns the event's id.
func verifyEvent(subject string, payload []byte, header nats.Header, signers []string) (string, error) {
	if err := publisher.VerifyEvent(payload, header, signers...); err != nil {
		return "", err
	}
	var ev publisher.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return "", fmt.Errorf("not an event: %w", err)
	}
	if want := topology.ResolvedSubject(ev.Data.Provider, ev.Data.Status); subject != want {
		return "", fmt.Errorf("published on %s, but its data says %s", subject, want)
	}
	return ev.ID, nil
}
