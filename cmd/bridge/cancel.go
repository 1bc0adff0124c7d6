package main

import (
	"context"
	"io"

	"github.com/statusbridge/statusbridge/internal/service"
)

// runCancel stops the bridge checking a request (its event is expired with
// reason cancelled) and prints its state after; a request already resolved
// is left as it is. Exit code 1 when no bridge knows the id.
func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return callService(ctx, "cancel", service.CancelSubject, args, stdout, stderr)
}
