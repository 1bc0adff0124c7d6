package main

import (
	"context"
	"errors"
	"io"

	"github.com/statusbridge/statusbridge/internal/bench"
)

// runBench is `bridge bench` and its child, `bridge bench worker`: see
// package bench.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := bench.Main(ctx, args, stdout, stderr, buildVersion())
	if ue := (*bench.UsageError)(nil); errors.As(err, &ue) {
		return &exitError{code: 2, err: err}
	}
	return err
}
