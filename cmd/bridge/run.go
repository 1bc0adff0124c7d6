package main

import (
	"context"
	"fmt"
	"io"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
)

// runDaemon is `bridge run`: the bridge, configured by the environment,
// until ctx ends. started, when set, is called once it consumes.
func runDaemon(ctx context.Context, stderr io.Writer, started func(natsURL, httpAddr string)) error {
	cfg, warnings, err := loadConfig(stderr)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, cfg, daemon.Options{Log: stderr, Version: buildVersion(), Warnings: warnings, Started: started})
}

// loadConfig reads the configuration from the environment. When it is
// invalid, the warnings are printed before the error is returned: a
// misspelled variable may be the cause.
func loadConfig(stderr io.Writer) (config.Config, []string, error) {
	cfg, warnings, err := config.Load()
	if err != nil {
		for _, w := range warnings {
			fmt.Fprintf(stderr, "bridge: warning: %s\n", w)
		}
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, warnings, nil
}
