package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// exitUsage is the exit code of a usage error of `bridge request`
// (sysexits' EX_USAGE): 2, the usual one, means a failed payment there.
const exitUsage = 64

// Exit codes of `bridge request --wait`, by the event's status.
var statusExitCodes = map[string]int{
	publisher.StatusSuccess:  0,
	publisher.StatusFailed:   2,
	publisher.StatusExpired:  3,
	publisher.StatusRejected: 4,
}

type metadataFlag map[string]string

func (m metadataFlag) String() string { return "" }
func (m metadataFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	m[k] = val
	return nil
}

// runRequest publishes one request and, with --wait, prints its event.
func runRequest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	fs.SetOutput(stderr)
	provider := fs.String("provider", "", "provider: "+strings.Join(config.ProviderNames(), ", ")+" (required)")
	reference := fs.String("reference", "", "the partner reference the payment was made with (required)")
	requestID := fs.String("request-id", "", "idempotency key (default: a random one)")
	deadline := fs.String("deadline", "", "RFC 3339 time or a duration from now (e.g. 10m); default: the bridge's BRIDGE_MAX_WAIT")
	wait := fs.Bool("wait", false, "wait for the event and print it; the exit code is 0 success, 2 failed, 3 expired, 4 rejected (1 another error, 64 a usage error)")
	timeout := fs.Duration("timeout", 0, "with --wait, give up after this long (default: until the deadline plus a minute, or forever)")
	natsURL := fs.String("nats-url", "", "NATS URL (default: BRIDGE_NATS_URL, else nats://127.0.0.1:4222, where the embedded server listens)")
	md := metadataFlag{}
	fs.Var(md, "metadata", "key=value echoed in the event (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bridge request --provider P --reference R [--wait] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if *provider == "" || *reference == "" {
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("--provider and --reference are required")}
	}
	if *requestID == "" {
		*requestID = "cli-" + randomHex(8)
	}
	req := map[string]any{"request_id": *requestID, "provider": *provider, "reference": *reference}
	var until time.Time
	if *deadline != "" {
		t, err := parseDeadline(*deadline, time.Now())
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		until = t
		req["deadline"] = t.UTC().Format(time.RFC3339)
	}
	if len(md) > 0 {
		req["metadata"] = map[string]string(md)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}

	nc, cfg, err := connectClient(*natsURL, "statusbridge request", stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	} else if !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until.Add(time.Minute))
		defer cancel()
	}

	eventID := publisher.EventID(*provider, *requestID)
	var events <-chan publisher.Event
	if *wait {
		events, err = watchEvent(ctx, js, cfg.EventsStream, *provider, eventID, time.Now().Add(-time.Second))
		if err != nil {
			return err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: topology.RequestSubject(*provider), Data: body, Header: nats.Header{}}
	ack, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(*requestID))
	if err != nil {
		return fmt.Errorf("publish request: %w", err)
	}
	fmt.Fprintf(stderr, "published %s request_id=%s event_id=%s stream_seq=%d duplicate=%v\n", msg.Subject, *requestID, eventID, ack.Sequence, ack.Duplicate)
	if !*wait {
		return nil
	}
	if ack.Duplicate {
		// The request was already in the stream; its event may be too.
		events, err = watchEvent(ctx, js, cfg.EventsStream, *provider, eventID, time.Now().Add(-cfg.DuplicateWindow-time.Minute))
		if err != nil {
			return err
		}
	}
	select {
	case ev := <-events:
		out, _ := json.MarshalIndent(ev, "", "  ")
		fmt.Fprintln(stdout, string(out))
		if code := statusExitCodes[ev.Data.Status]; code != 0 {
			return &exitError{code: code, err: fmt.Errorf("status %s (%s)", ev.Data.Status, ev.Data.Reason)}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no event for request %s: %w", *requestID, context.Cause(ctx))
	}
}

// watchEvent delivers the event with id from the events stream, reading
// provider's events stored since start.
func watchEvent(ctx context.Context, js jetstream.JetStream, stream, provider, id string, start time.Time) (<-chan publisher.Event, error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.ResolvedSubject(provider, "*")},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, fmt.Errorf("watch events in %s: %w", stream, err)
	}
	out := make(chan publisher.Event, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev publisher.Event
		if json.Unmarshal(m.Data(), &ev) == nil && ev.ID == id {
			select {
			case out <- ev:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, cc.Stop)
	return out, nil
}

func parseDeadline(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--deadline %q is neither an RFC 3339 time nor a positive duration", s)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
