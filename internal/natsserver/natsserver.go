// Package natsserver runs the embedded nats-server with JetStream that the
// bridge uses when no BRIDGE_NATS_URL is given, and that tests, the sandbox
// and the benchmark start for themselves.
package natsserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server.
type Options struct {
	// StoreDir is JetStream's file store directory.
	StoreDir string
	// Listen is host:port for NATS clients; port 0 picks a free port.
	Listen string
	// SyncAlways makes JetStream fsync every write before acknowledging it,
	// instead of every two minutes (the server's default). Slower, but an
	// acknowledged request survives a power loss.
	SyncAlways bool
	// ServerName names the server in logs and monitoring.
	ServerName string
}

// Start starts the server and waits until it accepts clients.
func Start(o Options) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded listen address %q: bad port", o.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: o.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		NoSigs:     true, // the bridge owns signal handling
		NoLog:      true,
		// Requests are at most 64 KiB, but an oversized one must still be
		// stored to be dead-lettered rather than refused at the socket.
		MaxPayload: 1 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats-server did not become ready within 10s (is the port in use?)")
	}
	return s, nil
}
