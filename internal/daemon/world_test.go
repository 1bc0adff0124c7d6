package daemon_test

import (
	"testing"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
)

// world is a daemontest.World with the helpers of this package's suites.
type world struct {
	*daemontest.World
	t *testing.T
}

// newWorld starts a test's NATS server and simulators and configures a
// bridge that uses them (see daemontest.NewWorld).
func newWorld(t *testing.T, configure ...func(*config.Config)) *world {
	t.Helper()
	return &world{World: daemontest.NewWorld(t, configure...), t: t}
}
