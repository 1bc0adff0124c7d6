package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	srv := &http.Server{Handler: sim.New(creds, sim.WithProfiles(profiles)), ReadHeaderTimeout: 5 * time.Second}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "simulators listening on %s\n", base)
	sandbox := sim.SandboxCredentials()
	// Print a credential only when it is the well-known sandbox value: one
	// taken from the environment may be real.
	show := func(v, sandboxValue string) string {
		if v == sandboxValue {
			return v
		}
		return "(from the environment)"
	}
	fmt.Fprintf(stdout, "  BRIDGE_IAK_URL=%s/iak BRIDGE_IAK_USERNAME=%s BRIDGE_IAK_API_KEY=%s\n",
		base, creds.IAKUsername, show(creds.IAKAPIKey, sandbox.IAKAPIKey))
	fmt.Fprintf(stdout, "  BRIDGE_AYOPOP_URL=%s/ayopop BRIDGE_AYOPOP_API_KEY=%s BRIDGE_AYOPOP_API_SECRET=%s\n",
		base, show(creds.AyopopKey, sandbox.AyopopKey), show(creds.AyopopSecret, sandbox.AyopopSecret))
	fmt.Fprintf(stdout, "  BRIDGE_APPOTAPAY_URL=%s/appotapay BRIDGE_APPOTAPAY_PARTNER_CODE=%s BRIDGE_APPOTAPAY_API_KEY=%s BRIDGE_APPOTAPAY_SECRET_KEY=%s\n",
		base, creds.AppotaPayPartnerCode, show(creds.AppotaPayAPIKey, sandbox.AppotaPayAPIKey), show(creds.AppotaPaySecretKey, sandbox.AppotaPaySecretKey))
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
	creds := sim.SandboxCredentials()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&creds.IAKUsername, c.IAK.Username)
	set(&creds.IAKAPIKey, c.IAK.APIKey.Reveal())
	set(&creds.AyopopKey, c.Ayopop.APIKey.Reveal())
	set(&creds.AyopopSecret, c.Ayopop.APISecret.Reveal())
	set(&creds.AppotaPayPartnerCode, c.AppotaPay.PartnerCode)
	set(&creds.AppotaPayAPIKey, c.AppotaPay.APIKey.Reveal())
	set(&creds.AppotaPaySecretKey, c.AppotaPay.SecretKey.Reveal())
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
