package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/natsserver"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// bench is what every round shares: the NATS server, the simulators and
// the load generator's connection.
type bench struct {
	o       options
	workDir string
	stderr  io.Writer

	nats    *server.Server // nil with --nats-url
	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream

	simSrv *http.Server
	simURL string
	sim    atomic.Pointer[sim.Server] // replaced every round, so counts start at zero
	calls  atomic.Pointer[callLog]    // capacity rounds: when each provider call arrived

	// eventBytes is the mean event size per provider seen in the last
	// bridge round; the ceiling publishes payloads of that size.
	eventBytes map[string]int
}

func newBench(ctx context.Context, o options, workDir string, stderr io.Writer) (*bench, error) {
	b := &bench{o: o, workDir: workDir, stderr: stderr, natsURL: o.natsURL, eventBytes: map[string]int{}}
	if b.natsURL == "" {
		s, err := natsserver.Start(natsserver.Options{
			StoreDir:   filepath.Join(workDir, "jetstream"),
			Listen:     "127.0.0.1:0",
			SyncAlways: o.syncAlways,
			ServerName: "statusbridge-bench",
		})
		if err != nil {
			return nil, err
		}
		b.nats, b.natsURL = s, s.ClientURL()
	}
	nc, err := nats.Connect(b.natsURL, nats.Name("statusbridge bench"))
	if err != nil {
		b.close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		b.close()
		return nil, err
	}

	b.sim.Store(sim.New(sim.SandboxCredentials()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.close()
		return nil, err
	}
	b.simSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if l := b.calls.Load(); l != nil {
				l.add(r.URL.Path)
			}
			b.sim.Load().ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = b.simSrv.Serve(ln) }()
	b.simURL = "http://" + ln.Addr().String()
	return b, ctx.Err()
}

func (b *bench) close() {
	if b.simSrv != nil {
		_ = b.simSrv.Close()
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.nats != nil {
		b.nats.Shutdown()
		b.nats.WaitForShutdown()
	}
}

// callLog records when each provider call arrived at the simulators.
type callLog struct {
	mu sync.Mutex
	at map[string][]time.Time // per provider
}

func (l *callLog) add(path string) {
	provider, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !slices.Contains(providerNames, provider) {
		return // the admin API
	}
	now := time.Now()
	l.mu.Lock()
	l.at[provider] = append(l.at[provider], now)
	l.mu.Unlock()
}

// busiestSecond is the most calls to provider in any sliding second that
// starts at or after from.
func (l *callLog) busiestSecond(provider string, from time.Time) int {
	l.mu.Lock()
	at := slices.Clone(l.at[provider])
	l.mu.Unlock()
	slices.SortFunc(at, time.Time.Compare)
	most, first := 0, 0
	for i, t := range at {
		if t.Before(from) {
			first = i + 1
			continue
		}
		for t.Sub(at[first]) >= time.Second { // the second (t-1s, t]
			first++
		}
		most = max(most, i-first+1)
	}
	return most
}

// timeline is the mean calls per second to provider in each bucket of
// the round, which started at start.
func (l *callLog) timeline(provider string, start time.Time, bucket time.Duration) []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var counts []float64
	for _, t := range l.at[provider] {
		i := max(0, int(t.Sub(start)/bucket))
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	for i := range counts {
		counts[i] /= bucket.Seconds()
	}
	return counts
}

// simCalls is the number of authenticated checks the simulators answered
// since the last resetSim.
func (b *bench) simCalls() int {
	s, n := b.sim.Load(), 0
	for _, p := range providerNames {
		n += s.TotalCalls(p)
	}
	return n
}

// resetSim starts the round with fresh simulators: no calls, no profile.
func (b *bench) resetSim() {
	b.sim.Store(sim.New(sim.SandboxCredentials()))
	if b.o.capacity {
		b.calls.Store(&callLog{at: map[string][]time.Time{}})
	}
}

// applyProfiles gives the simulators the capacity flags' profiles, with
// outages placed from start, and returns them.
func (b *bench) applyProfiles(start time.Time) (map[string]sim.Profile, error) {
	profiles, err := b.o.profiles.Profiles(start)
	if err != nil {
		return nil, err
	}
	s := b.sim.Load()
	for p, prof := range profiles {
		if err := s.SetProfile(p, prof); err != nil {
			return nil, err
		}
		profiles[p] = s.Profile(p) // with the simulator's defaults
	}
	return profiles, nil
}

// natsDescription says which server the rounds ran against.
func (b *bench) natsDescription() string {
	if b.nats == nil {
		return "external server " + b.natsURL + " (its own storage settings)"
	}
	sync := "sync_always=true: fsync before every ack, the daemon's embedded default"
	if !b.o.syncAlways {
		sync = "sync_always=false: fsync every 2 minutes"
	}
	return fmt.Sprintf("embedded nats-server %s in the bench process, file store in a temp dir, %s", server.VERSION, sync)
}

// resetStreams deletes the bridge's streams and key-value buckets, so that
// a round starts empty (no budget, breaker or answer of the last one); the
// worker provisions them again.
func (b *bench) resetStreams(ctx context.Context) error {
	for _, name := range []string{topology.DefaultRequestsStream, topology.DefaultEventsStream, topology.DefaultDeadLetterStream} {
		if err := b.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	for _, name := range []string{topology.DefaultCapacityBucket, topology.DefaultChecksBucket} {
		if err := b.js.DeleteKeyValue(ctx, name); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("delete bucket %s: %w", name, err)
		}
	}
	return nil
}

// consumerInfo reads the bridge consumer's state.
func (b *bench) consumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := b.js.Consumer(ctx, topology.DefaultRequestsStream, topology.DefaultConsumer)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

func (b *bench) streamMsgs(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// bridgeEnv is the configuration of a bridge (or ceiling) worker: the
// daemon's defaults, pointed at the bench's NATS server and simulators,
// then extra, then the --env variables.
func (b *bench) bridgeEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"BRIDGE_NATS_URL":  b.natsURL,
		"BRIDGE_HTTP_ADDR": "127.0.0.1:0",
		"BRIDGE_LOG_LEVEL": b.o.logLevel,
	}
	if b.o.realAPIs {
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			for _, p := range providerNames {
				if strings.HasPrefix(k, "BRIDGE_"+strings.ToUpper(p)+"_") {
					env[k] = v
				}
			}
		}
	} else {
		for _, v := range sim.Variables(b.simURL, sim.SandboxCredentials()) {
			env[v.Name] = v.Value
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	for k, v := range b.o.env {
		env[k] = v
	}
	return env
}

// childEnv is this process's environment without its BRIDGE_* variables,
// plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// workerStats is a line a worker prints on stdout: once when it is
// consuming, once as it exits.
type workerStats struct {
	Phase    string `json:"phase"`  // "ready" or "exit"
	CPUNanos int64  `json:"cpu_ns"` // user and system
	SysNanos int64  `json:"sys_ns"`
	// CtxSwitches counts voluntary and involuntary context switches.
	CtxSwitches int64  `json:"ctx_switches"`
	Mallocs     uint64 `json:"mallocs"`
	AllocBytes  uint64 `json:"alloc_bytes"`
	// RSSKiB and HWMKiB are VmRSS and VmHWM of /proc/self/status. The
	// parent cannot use the child's rusage ru_maxrss: Linux carries the
	// forking process's peak over the exec into it.
	RSSKiB int64  `json:"rss_kib"`
	HWMKiB int64  `json:"hwm_kib"`
	Error  string `json:"error,omitempty"`
}

// worker is a bridge or ceiling child process.
type worker struct {
	cmd     *exec.Cmd
	ready   chan workerStats
	exit    chan workerStats
	done    chan struct{}
	waitErr error
	logPath string

	readyStats workerStats // valid once startWorker returned
}

// startWorker runs `bridge bench worker --mode mode` with env and waits
// until it consumes. The baseline mode is the bridge of the --baseline
// binary.
func (b *bench) startWorker(ctx context.Context, mode, name string, env map[string]string) (*worker, error) {
	w := &worker{
		ready:   make(chan workerStats, 1),
		exit:    make(chan workerStats, 1),
		done:    make(chan struct{}),
		logPath: filepath.Join(b.workDir, name+".log"),
	}
	logFile, err := os.Create(w.logPath)
	if err != nil {
		return nil, err
	}
	// The worker logs to a pipe, as under a container runtime or systemd,
	// and the bench stores it. A file of its own would share the disk with
	// the NATS store's fsyncs and time the journal, not the bridge.
	logBuf := bufio.NewWriterSize(logFile, 256<<10)
	if mode == "baseline" {
		w.cmd = exec.Command(b.o.baseline, "bench", "worker", "--mode", "bridge")
	} else {
		w.cmd = exec.Command(os.Args[0], "bench", "worker", "--mode", mode)
	}
	w.cmd.Env = childEnv(env)
	w.cmd.SysProcAttr = dieWithParent()
	w.cmd.Stderr = logBuf
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s workerStats
			if json.Unmarshal(sc.Bytes(), &s) != nil {
				continue
			}
			switch s.Phase {
			case "ready":
				w.ready <- s
			case "exit":
				w.exit <- s
			}
		}
	}()
	go func() {
		<-lines                  // Wait closes the pipe: read it to the end first
		w.waitErr = w.cmd.Wait() // the log is copied to the end too
		_ = logBuf.Flush()
		_ = logFile.Close()
		close(w.done)
	}()
	select {
	case w.readyStats = <-w.ready:
		return w, nil
	case <-w.done:
		return nil, fmt.Errorf("worker exited at start (%v); its log:\n%s", w.waitErr, tail(w.logPath, 20))
	case <-time.After(60 * time.Second):
		w.kill()
		return nil, fmt.Errorf("worker not ready within 60s; its log:\n%s", tail(w.logPath, 20))
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

// startWorkers starts --replicas workers of mode (the ceiling and the
// baseline too), all with env, and waits until every one consumes.
func (b *bench) startWorkers(ctx context.Context, mode, name string, env map[string]string) ([]*worker, error) {
	var ws []*worker
	for i := range b.o.replicas {
		n := name
		if b.o.replicas > 1 {
			n = fmt.Sprintf("%s-%d", name, i+1)
		}
		w, err := b.startWorker(ctx, mode, n, env)
		if err != nil {
			killAll(ws)
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

func (w *worker) pid() int { return w.cmd.Process.Pid }

func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.done
}

func killAll(ws []*worker) {
	for _, w := range ws {
		w.kill()
	}
}

// stop sends SIGTERM, waits for the exit, and returns the exit line and the
// process's resource usage.
func (w *worker) stop() (workerStats, *syscall.Rusage, error) {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(90 * time.Second):
		w.kill()
		return workerStats{}, nil, errors.New("worker did not exit within 90s of SIGTERM")
	}
	if w.waitErr != nil {
		return workerStats{}, nil, fmt.Errorf("worker exited with %v; its log:\n%s", w.waitErr, tail(w.logPath, 20))
	}
	var s workerStats
	select {
	case s = <-w.exit:
	default:
		return s, nil, errors.New("worker exited without its statistics")
	}
	ru, _ := w.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return s, nil, errors.New("no resource usage for the worker")
	}
	return s, ru, nil
}

// usage is what a round's workers used from ready to exit, all together.
type usage struct {
	cpu, cpuSys  time.Duration // cpuSys < 0: unknown
	cpuStartup   time.Duration // before ready
	ctxSwitches  int64         // < 0: unknown
	mallocs      uint64
	allocBytes   uint64
	maxHWMKiB    int64 // VmHWM at exit of the largest worker
	logProblems  int
	firstProblem []string
}

// stopAll stops every worker (all of them, whatever fails) and adds up
// their usage.
func stopAll(ws []*worker) (usage, error) {
	var u usage
	var errs []error
	for _, w := range ws {
		stats, ru, err := w.stop()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cpu := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		u.cpuStartup += time.Duration(w.readyStats.CPUNanos)
		u.cpu += cpu - time.Duration(w.readyStats.CPUNanos)
		if w.readyStats.CtxSwitches > 0 && u.cpuSys >= 0 { // a --baseline build may not report them; any worker has switched by ready
			u.cpuSys += time.Duration(syscall.TimevalToNsec(ru.Stime) - w.readyStats.SysNanos)
			u.ctxSwitches += ru.Nvcsw + ru.Nivcsw - w.readyStats.CtxSwitches
		} else {
			u.cpuSys, u.ctxSwitches = -1, -1
		}
		u.mallocs += stats.Mallocs - w.readyStats.Mallocs
		u.allocBytes += stats.AllocBytes - w.readyStats.AllocBytes
		u.maxHWMKiB = max(u.maxHWMKiB, stats.HWMKiB)
		n, first := logProblems(w.logPath)
		u.logProblems += n
		u.firstProblem = append(u.firstProblem, first...)
	}
	return u, errors.Join(errs...)
}

// procStatus reads VmRSS and VmHWM (KiB) of a running process.
func procStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, nil
}

// logProblems counts the WARN and ERROR lines of a worker's log and
// returns the first few.
func logProblems(path string) (int, []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	n := 0
	var first []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) ||
			strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			n++
			if len(first) < 3 {
				first = append(first, line)
			}
		}
	}
	return n, first
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freePort returns a loopback address nobody listens on right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startupToReady times `bridge run` with an embedded server, from the
// process start until /readyz answers 200.
func (b *bench) startupToReady(ctx context.Context, dataDir string) (time.Duration, error) {
	httpAddr, err := freePort()
	if err != nil {
		return 0, err
	}
	env := b.bridgeEnv(map[string]string{
		"BRIDGE_DATA_DIR":        dataDir,
		"BRIDGE_EMBEDDED_LISTEN": "127.0.0.1:0",
		"BRIDGE_HTTP_ADDR":       httpAddr,
	})
	delete(env, "BRIDGE_NATS_URL")
	cmd := exec.Command(os.Args[0], "run")
	cmd.Env = childEnv(env)
	cmd.SysProcAttr = dieWithParent()
	client := &http.Client{Timeout: time.Second}
	url := "http://" + httpAddr + "/readyz"
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case err := <-done:
			done <- err
			return 0, fmt.Errorf("bridge run exited before it was ready: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Second {
			return 0, errors.New("bridge run not ready within 30s")
		}
	}
}

// dieWithParent makes a child process end when the bench does, killed or
// not, so no worker outlives its run and keeps consuming elsewhere.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
