package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

// runSimulate serves the three provider simulators until ctx ends.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on")
	callbackURL := fs.String("callback-url", "", "where POST /_sim/callbacks/ayopop/{reference} sends Ayopop's callback, e.g. http://127.0.0.1:8081/callbacks/ayopop")
	capacity := sim.RegisterCapacityFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: bridge simulate [--addr host:port] [capacity flags]

Serves scripted simulators of the IAK, Ayopop and AppotaPay status APIs. Each
checks credentials exactly as its provider documents. Credentials come from the
BRIDGE_IAK_*, BRIDGE_AYOPOP_* and BRIDGE_APPOTAPAY_* variables when set, else
the sandbox credentials printed at start.

Script a reference with PUT /_sim/scripts/{provider}/{reference} and a body
{"steps":["pending","success"]}, or name the reference after its script:
"pending*3,success#order-1". Outcomes: `+outcomeList()+`.

Capacity flags make the simulators behave like real aggregators: slow answers
(--latency), a rate limit answering 429 with Retry-After (--rate-limit), an
outage answering 503 (--outage-after, --outage-for); each also per provider
(--iak-rate-limit …). PUT /_sim/profiles/{provider} changes them at run time,
GET /_sim/stats/{provider} counts calls, refusals and the busiest second.
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	creds, err := simCredentials()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	profiles, err := capacity.Profiles(time.Now())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	srv := &http.Server{Handler: sim.New(creds, sim.WithProfiles(profiles), sim.WithCallbackURL(*callbackURL)), ReadHeaderTimeout: 5 * time.Second}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "simulators listening on %s\n", base)
	// Print a credential only when it is the well-known sandbox value: one
	// taken from the environment may be real.
	sandbox := sim.Variables(base, sim.SandboxCredentials())
	for i, v := range sim.Variables(base, creds) {
		if v.Secret && v.Value != sandbox[i].Value {
			v.Value = "(from the environment)"
		}
		sep := " "
		if strings.HasSuffix(v.Name, "_URL") { // a provider per line
			sep = "\n  "
			if i == 0 {
				sep = "  "
			}
		}
		fmt.Fprintf(stdout, "%s%s=%s", sep, v.Name, v.Value)
	}
	fmt.Fprintln(stdout)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// simCredentials are the sandbox credentials, overridden by any provider
// credentials set in the environment, so one set of variables configures
// both a bridge and the simulators it talks to.
func simCredentials() (sim.Credentials, error) {
	var c config.Config
	if err := envconfig.Process(config.Prefix, &c); err != nil {
		return sim.Credentials{}, err
	}
	if err := c.ReadSecretFiles(); err != nil {
		return sim.Credentials{}, err
	}
	env := map[string]string{}
	for _, kv := range c.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	creds := sim.SandboxCredentials()
	creds.Override(func(name string) string { return env[name] })
	return creds, nil
}

func outcomeList() string {
	s := ""
	for i, o := range sim.Outcomes {
		if i > 0 {
			s += ", "
		}
		s += string(o)
	}
	return s
}
