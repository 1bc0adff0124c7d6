package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/appotapay"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
	"github.com/statusbridge/statusbridge/internal/providers/iak"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// Variables the bench passes to its workers besides BRIDGE_*.
const (
	// envBenchEventBytes sizes the ceiling's events: "iak=1234,ayopop=…".
	envBenchEventBytes = "STATUSBRIDGE_BENCH_EVENT_BYTES"
	// envBenchProfile is a path prefix: the worker writes <prefix>.cpu.pprof
	// (from ready to exit) and <prefix>.allocs.pprof.
	envBenchProfile = "STATUSBRIDGE_BENCH_PROFILE"
)

// runBenchWorker is `bridge bench worker --mode bridge|ceiling`, the child
// process of a bench round. It reads its configuration from BRIDGE_*, runs
// until SIGTERM, and prints a JSON workerStats line on stdout when it
// consumes and another as it exits.
func runBenchWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "bridge", "bridge (the daemon) or ceiling (the minimal consumer)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
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
	profile := os.Getenv(envBenchProfile)
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

	var err error
	switch *mode {
	case "bridge":
		err = runDaemon(ctx, stderr, func(string, string) { ready() })
	case "ceiling":
		err = runCeiling(ctx, ready)
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
// consumer with the bridge's pull settings, makes one HTTP call to the
// provider with a request built by string concatenation (the IAK sign and
// the AppotaPay token are computed once; Ayopop's token names the
// reference, so it is one HMAC per call), parks a pending answer with
// NakWithDelay on the same schedule, and otherwise publishes a payload the
// size of the bridge's event with a Nats-Msg-Id, waits for the PubAck and
// double-acks. It validates, parses, maps and logs nothing.
type ceiling struct {
	js       jetstream.JetStream
	hc       *http.Client
	build    map[string]func(ref string) (*http.Request, error)
	pending  map[string][][]byte // markers of a pending answer in each provider's body
	subject  map[string]string   // where each provider's event goes
	payload  map[string][]byte
	schedule map[string]subscriber.Schedule
	bufs     sync.Pool
}

// runCeiling runs the ceiling until ctx ends; ready is called once it
// consumes.
func runCeiling(ctx context.Context, ready func()) error {
	cfg, _, err := config.Load()
	if err != nil {
		return err
	}
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
	c, stopTokens, err := newCeiling(cfg, js)
	if err != nil {
		return err
	}
	defer stopTokens()

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
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range work {
				c.handle(msg)
				<-sem
			}
		}()
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
	build := c.build[provider]
	if build == nil {
		_ = msg.Term()
		return
	}
	req, err := build(member(msg.Data(), `"reference":"`))
	if err != nil {
		_ = msg.Term()
		return
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		_ = msg.NakWithDelay(time.Second)
		return
	}
	buf := c.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	ok := err == nil && resp.StatusCode == http.StatusOK
	pending := false
	for _, m := range c.pending[provider] {
		pending = pending || bytes.Contains(buf.Bytes(), m)
	}
	c.bufs.Put(buf)
	switch {
	case !ok:
		_ = msg.NakWithDelay(time.Second)
		return
	case pending:
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

// member returns the text after key up to the next quote: a string member
// of a JSON body, read without parsing (the load generator writes plain
// references).
func member(body []byte, key string) string {
	_, rest, ok := bytes.Cut(body, []byte(key))
	if !ok {
		return ""
	}
	v, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(v)
}

// newCeiling prepares the ceiling's requests and payloads. stop ends the
// AppotaPay token's refresher.
func newCeiling(cfg config.Config, js jetstream.JetStream) (*ceiling, func(), error) {
	c := &ceiling{
		js:       js,
		hc:       providers.NewHTTPClient(cfg.RequestTimeout, cfg.Concurrency),
		build:    map[string]func(string) (*http.Request, error){},
		subject:  map[string]string{},
		payload:  map[string][]byte{},
		schedule: cfg.Schedules(),
		pending: map[string][][]byte{
			iak.Name:       {[]byte(`"response_code":"39"`)},
			ayopop.Name:    {[]byte(`"responseCode":299`)},
			appotapay.Name: {[]byte(`"errorCode":34`), []byte(`"errorCode":35`)},
		},
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	sizes := map[string]int{}
	for part := range strings.SplitSeq(os.Getenv(envBenchEventBytes), ",") {
		p, n, _ := strings.Cut(part, "=")
		if v, err := strconv.Atoi(n); err == nil {
			sizes[p] = v
		}
	}
	for _, p := range []string{iak.Name, ayopop.Name, appotapay.Name} {
		c.subject[p] = topology.ResolvedSubject(p, "success")
		c.payload[p] = filler(cmp.Or(sizes[p], 1000))
	}

	// IAK: the body names the reference; the sign is constant per account.
	iakURL, err := providers.Endpoint(cfg.IAK.URL, "/api/v1/bill/check")
	if err != nil {
		return nil, nil, err
	}
	sum := md5.Sum([]byte(cfg.IAK.Username + cfg.IAK.APIKey.Reveal() + "cs"))
	iakHead := `{"commands":"checkstatus","username":"` + cfg.IAK.Username + `","ref_id":"`
	iakTail := `","sign":"` + hex.EncodeToString(sum[:]) + `"}`
	c.build[iak.Name] = func(ref string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, iakURL, strings.NewReader(iakHead+ref+iakTail))
		if err == nil {
			req.Header["Content-Type"] = []string{"application/json"}
		}
		return req, err
	}

	// Ayopop: the TOKEN's claims are the body, so each call signs its own.
	path := "/api/v2/bill/status"
	if cfg.Ayopop.Version == ayopop.Version1 {
		path = "/api/v1/bill/status"
	}
	ayoURL, err := providers.Endpoint(cfg.Ayopop.URL, path)
	if err != nil {
		return nil, nil, err
	}
	ayoKey, ayoSecret, ayoVersion := cfg.Ayopop.APIKey.Reveal(), []byte(cfg.Ayopop.APISecret.Reveal()), cfg.Ayopop.Version
	ayoHeader := b64(`{"alg":"HS256","typ":"JWT"}`) + "."
	c.build[ayopop.Name] = func(ref string) (*http.Request, error) {
		claims := `{"partnerId":"` + ayoKey + `","refNumber":"` + ref + `"}`
		signing := ayoHeader + b64(claims)
		req, err := http.NewRequest(http.MethodPost, ayoURL, strings.NewReader(claims))
		if err == nil {
			req.Header["Key"] = []string{ayoKey}
			req.Header["Token"] = []string{signing + "." + hs256(ayoSecret, signing)}
			req.Header["Version"] = []string{ayoVersion}
			req.Header["Content-Type"] = []string{"application/json"}
		}
		return req, err
	}

	// AppotaPay: the token names no reference; one is minted a minute.
	appURL, err := providers.Endpoint(cfg.AppotaPay.URL, "/api/v1/service/bill/transaction/")
	if err != nil {
		return nil, nil, err
	}
	var appToken atomic.Value
	mint := func() {
		now := time.Now()
		apiKey := cfg.AppotaPay.APIKey.Reveal()
		claims := fmt.Sprintf(`{"iss":%q,"jti":"%s-%d","api_key":%q,"exp":%d}`,
			cfg.AppotaPay.PartnerCode, apiKey, now.Unix(), apiKey, now.Add(5*time.Minute).Unix())
		signing := b64(`{"typ":"JWT","alg":"HS256","cty":"appotapay-api;v=1"}`) + "." + b64(claims)
		appToken.Store("Bearer " + signing + "." + hs256([]byte(cfg.AppotaPay.SecretKey.Reveal()), signing))
	}
	mint()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mint()
			}
		}
	}()
	c.build[appotapay.Name] = func(ref string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, appURL+url.PathEscape(ref), nil)
		if err == nil {
			req.Header["X-Appotapay-Auth"] = []string{appToken.Load().(string)}
		}
		return req, err
	}
	return c, func() { close(done) }, nil
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func hs256(key []byte, signing string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(signing))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// filler is a JSON object of n bytes.
func filler(n int) []byte {
	n = max(n, 12)
	return []byte(`{"pad":"` + strings.Repeat("x", n-10) + `"}`)
}
