package bench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// Variables the bench passes to its workers besides BRIDGE_*.
const (
	// envEventBytes sizes the ceiling's events: "iak=1234,ayopop=…".
	envEventBytes = "STATUSBRIDGE_BENCH_EVENT_BYTES"
	// envProfile is a path prefix: the worker writes <prefix>.cpu.pprof
	// (from ready to exit) and <prefix>.allocs.pprof.
	envProfile = "STATUSBRIDGE_BENCH_PROFILE"
)

// runWorker is `bridge bench worker --mode bridge|ceiling`, the child
// process of a bench round. It reads its configuration from BRIDGE_*, runs
// until SIGTERM, and prints a JSON workerStats line on stdout when it
// consumes and another as it exits.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	fs := flag.NewFlagSet("bench worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "bridge", "bridge (the daemon) or ceiling (the minimal consumer)")
	if err := fs.Parse(args); err != nil {
		return &UsageError{err}
	}
	var mu sync.Mutex
	report := func(phase string, err error) {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := workerStats{
			Phase:       phase,
			CPUNanos:    syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime),
			SysNanos:    syscall.TimevalToNsec(ru.Stime),
			CtxSwitches: ru.Nvcsw + ru.Nivcsw,
			Mallocs:     ms.Mallocs,
			AllocBytes:  ms.TotalAlloc,
		}
		s.RSSKiB, s.HWMKiB, _ = procStatus(os.Getpid())
		if err != nil {
			s.Error = err.Error()
		}
		line, _ := json.Marshal(s)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "%s\n", line)
	}
	profile := os.Getenv(envProfile)
	var cpuFile *os.File
	ready := func() {
		if profile != "" {
			f, err := os.Create(profile + ".cpu.pprof")
			if err == nil && pprof.StartCPUProfile(f) == nil {
				cpuFile = f
			}
		}
		report("ready", nil)
	}

	cfg, warnings, err := config.Load()
	if err != nil {
		err = fmt.Errorf("invalid configuration:\n%w", err)
	}
	switch {
	case err != nil:
	case *mode == "bridge":
		err = daemon.Run(ctx, cfg, daemon.Options{Log: stderr, Version: version, Warnings: warnings,
			Started: func(string, string) { ready() }})
	case *mode == "ceiling":
		err = runCeiling(ctx, cfg, ready)
	default:
		err = fmt.Errorf("unknown worker mode %q", *mode)
	}
	report("exit", err)
	if cpuFile != nil {
		pprof.StopCPUProfile()
		_ = cpuFile.Close()
	}
	if profile != "" {
		if f, ferr := os.Create(profile + ".allocs.pprof"); ferr == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	return err
}

// ceiling is the bench's floor: a consumer that does only what the
// contract demands of every delivery. It fetches from the bridge's
// consumer with the bridge's pull settings, reads the request's reference,
// asks the provider once through the provider's own client (the bridge's
// authentication, request and answer parsing), parks an answer that is not
// final with NakWithDelay on the same schedule, and otherwise publishes a
// payload the size of the bridge's event with a Nats-Msg-Id, waits for the
// PubAck and double-acks. It validates, maps and logs nothing, and has no
// rate limit, breaker or shared state.
type ceiling struct {
	js       jetstream.JetStream
	clients  map[string]providers.Provider
	subject  map[string]string // where each provider's event goes
	payload  map[string][]byte
	schedule map[string]subscriber.Schedule
}

// runCeiling runs the ceiling until ctx ends; ready is called once it
// consumes.
func runCeiling(ctx context.Context, cfg config.Config, ready func()) error {
	nc, err := nats.Connect(cfg.NatsURL, nats.Name("statusbridge bench ceiling"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cons, err := topology.Provision(pctx, js, cfg.Topology())
	cancel()
	if err != nil {
		return err
	}
	hc := providers.NewHTTPClient(cfg.RequestTimeout, cfg.Concurrency)
	defer hc.CloseIdleConnections()
	clients, err := cfg.Providers(hc)
	if err != nil {
		return err
	}
	c := &ceiling{js: js, clients: clients, subject: map[string]string{}, payload: map[string][]byte{}, schedule: cfg.Schedules()}
	sizes := map[string]int{}
	for part := range strings.SplitSeq(os.Getenv(envEventBytes), ",") {
		p, n, _ := strings.Cut(part, "=")
		if v, err := strconv.Atoi(n); err == nil {
			sizes[p] = v
		}
	}
	for p := range clients {
		c.subject[p] = topology.ResolvedSubject(p, "success")
		c.payload[p] = filler(cmp.Or(sizes[p], 1000))
	}

	it, err := cons.Messages(
		jetstream.PullMaxMessages(cfg.Concurrency),
		jetstream.PullExpiry(10*time.Second),
		jetstream.PullHeartbeat(3*time.Second),
	)
	if err != nil {
		return err
	}
	ready()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	// As in the subscriber: a slot is taken before each message, and a
	// fixed pool of handlers takes them.
	sem := make(chan struct{}, cfg.Concurrency)
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for msg := range work {
				c.handle(msg)
				<-sem
			}
		})
	}
	for {
		sem <- struct{}{}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			continue
		}
		work <- msg
	}
	close(work)
	wg.Wait()
	return nil
}

func (c *ceiling) handle(msg jetstream.Msg) {
	provider := strings.TrimPrefix(msg.Subject(), topology.RequestPrefix)
	client := c.clients[provider]
	var req struct {
		Reference string `json:"reference"`
	}
	if client == nil || json.Unmarshal(msg.Data(), &req) != nil {
		_ = msg.Term()
		return
	}
	res, err := client.Status(context.Background(), providers.Query{Reference: req.Reference})
	switch {
	case err != nil:
		_ = msg.NakWithDelay(time.Second)
		return
	case !res.State.Final():
		attempt := 1
		if meta, err := msg.Metadata(); err == nil {
			attempt = int(meta.NumDelivered)
		}
		_ = msg.NakWithDelay(c.schedule[provider].Delay(attempt, nil))
		return
	}
	ev := &nats.Msg{
		Subject: c.subject[provider],
		Data:    c.payload[provider],
		Header:  nats.Header{jetstream.MsgIDHeader: []string{msg.Headers().Get(jetstream.MsgIDHeader)}},
	}
	if _, err := c.js.PublishMsg(context.Background(), ev); err != nil {
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.DoubleAck(context.Background())
}

// filler is a JSON object of n bytes.
func filler(n int) []byte {
	n = max(n, 12)
	return []byte(`{"pad":"` + strings.Repeat("x", n-10) + `"}`)
}
