package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/deadletters"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// runDeadletters lists the dead letters, or shows one; it only reads.
func runDeadletters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deadletters", flag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int("limit", 1000, "list: at most this many, the newest")
	maxBytes := fs.Int("max-bytes", 64<<10, "show: print at most this much of the body")
	stream := fs.String("stream", topology.DefaultDeadLetterStream, "the dead-letter stream")
	natsURL := natsURLFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bridge deadletters [flags] list | show <sequence>")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	var seq uint64
	switch {
	case fs.NArg() == 1 && fs.Arg(0) == "list" && *limit > 0:
	case fs.NArg() == 2 && fs.Arg(0) == "show":
		var err error
		if seq, err = strconv.ParseUint(fs.Arg(1), 10, 64); err != nil || seq == 0 {
			return &exitError{code: exitUsage, err: errors.New("show needs a sequence number, as list prints them")}
		}
	default:
		fs.Usage()
		return &exitError{code: exitUsage, err: errors.New("want list, or show <sequence>")}
	}
	nc, _, err := connectClient(*natsURL, "statusbridge deadletters", stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if seq == 0 {
		letters, total, err := deadletters.List(ctx, js, *stream, *limit)
		if err != nil {
			return err
		}
		if err := deadletters.WriteList(stdout, letters); err != nil {
			return err
		}
		if uint64(len(letters)) < total {
			fmt.Fprintf(stderr, "the newest %d of %d dead letters; --limit shows more\n", len(letters), total)
		}
		return nil
	}
	l, err := deadletters.Show(ctx, js, *stream, seq)
	if err != nil {
		return err
	}
	return deadletters.WriteLetter(stdout, l, *maxBytes)
}
