// Command bridge turns poll-only payment-status APIs into push events: it
// consumes status.requested.<provider> from NATS JetStream, checks the
// provider until the payment is final, and publishes one
// status.resolved.<provider>.<status> CloudEvent. `bridge help` lists the
// commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bridge: %v\n", err)
		os.Exit(exitCode(err))
	}
}
