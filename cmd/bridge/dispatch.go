package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
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
		return runDaemon(ctx, stderr, nil)
	case "sandbox":
		ctx, stop := exitWithParent(ctx, parentPoll, os.Getppid)
		defer stop()
		return runSandbox(ctx, args, stdout, stderr)
	case "request":
		return runRequest(ctx, args, stdout, stderr)
	case "inspect":
		return runInspect(ctx, args, stdout, stderr)
	case "cancel":
		return runCancel(ctx, args, stdout, stderr)
	case "rerequest":
		return runRerequest(ctx, args, stdout, stderr)
	case "deadletters":
		return runDeadletters(ctx, args, stdout, stderr)
	case "verify":
		return runVerify(ctx, args, stdout, stderr)
	case "provision":
		return runProvision(ctx, args, stdout, stderr)
	case "simulate":
		ctx, stop := exitWithParent(ctx, parentPoll, os.Getppid)
		defer stop()
		return runSimulate(ctx, args, stdout, stderr)
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "config":
		return config.PrintVariables(stdout)
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
  bridge inspect        a request's state: bridge inspect <request_id> (exit 1: unknown)
  bridge cancel         stop checking a request: its event is expired, reason cancelled
  bridge rerequest      re-submit the requests behind chosen events (--status S --reason R --since D [--send])
  bridge deadletters    the dead letters: list, or show <sequence>
  bridge provision      create the streams, buckets and consumer (as the NATS provisioner), then exit
  bridge verify         check events' signatures (--signer KEY --seq N, or --follow)
  bridge simulate       the IAK, Ayopop and AppotaPay simulators as a standalone HTTP server
  bridge bench          load-test the real pipeline and print throughput, latency and memory
  bridge config         every BRIDGE_* variable with its default and meaning
  bridge version        the build's version
  bridge help           this text

Configuration is read from BRIDGE_* environment variables (see bridge config).
Run "bridge <command> -h" for a command's flags.
`

// parentPoll is how often sandbox and simulate look for their parent.
const parentPoll = 500 * time.Millisecond

// exitWithParent returns a context that also ends when the process that
// started this one is gone. sandbox and simulate are run by hand, often
// through `go run`, and `kill` of a backgrounded `go run` stops go but not
// the program it built, which would keep the sandbox's ports (4222, 8080)
// until someone finds and kills it. An orphan is adopted by init or a
// subreaper, so a parent process id that changes means the parent is gone
// (on Linux and other Unix systems; elsewhere it never changes).
func exitWithParent(ctx context.Context, every time.Duration, getppid func() int) (context.Context, context.CancelFunc) {
	parent := getppid()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if getppid() != parent {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}
