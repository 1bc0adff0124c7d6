package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/appotapay"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
	"github.com/statusbridge/statusbridge/internal/providers/iak"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// envPrefix prefixes every variable.
const envPrefix = "BRIDGE"

// config is the bridge's whole configuration, read from BRIDGE_* variables.
// Every field sets split_words instead of an envconfig name: a named field
// would also be read from the unprefixed variable (envconfig's fallback),
// so BRIDGE_IAK_USERNAME could silently come from USERNAME.
type config struct {
	NatsURL      string           `split_words:"true" desc:"NATS server URLs, comma-separated; empty starts an embedded nats-server with JetStream"`
	NatsCreds    string           `split_words:"true" desc:"path of a NATS credentials file (user JWT and nkey seed)"`
	NatsNkeySeed string           `split_words:"true" desc:"path of an nkey seed file"`
	NatsUser     string           `split_words:"true" desc:"NATS user name"`
	NatsPassword providers.Secret `split_words:"true" desc:"NATS password (or BRIDGE_NATS_PASSWORD_FILE)"`
	NatsToken    providers.Secret `split_words:"true" desc:"NATS token (or BRIDGE_NATS_TOKEN_FILE)"`
	NatsTlsCa    string           `split_words:"true" desc:"path of the CA certificate(s) that sign the NATS server's certificate"`
	NatsTlsCert  string           `split_words:"true" desc:"path of the client certificate for NATS mutual TLS"`
	NatsTlsKey   string           `split_words:"true" desc:"path of the client certificate's private key"`

	NatsPasswordFile string `split_words:"true" desc:"file holding BRIDGE_NATS_PASSWORD"`
	NatsTokenFile    string `split_words:"true" desc:"file holding BRIDGE_NATS_TOKEN"`

	DataDir            string `split_words:"true" default:"./data" desc:"JetStream store of the embedded nats-server"`
	EmbeddedListen     string `split_words:"true" default:"127.0.0.1:4222" desc:"client address of the embedded nats-server (port 0: any free port)"`
	EmbeddedSyncAlways bool   `split_words:"true" default:"true" desc:"embedded nats-server fsyncs every write before acknowledging it (false: every 2 minutes, faster, loses recent writes on power loss)"`

	HttpAddr string `split_words:"true" default:":8080" desc:"address of /healthz, /readyz and /metrics; empty disables it"`

	Concurrency     int           `split_words:"true" default:"64" desc:"provider checks in flight per replica"`
	RequestTimeout  time.Duration `split_words:"true" default:"30s" desc:"timeout of one provider HTTP call"`
	PublishTimeout  time.Duration `split_words:"true" default:"10s" desc:"timeout of one JetStream publish and its acknowledgement"`
	ShutdownTimeout time.Duration `split_words:"true" default:"45s" desc:"on SIGTERM, how long in-flight checks may take to finish; must exceed BRIDGE_REQUEST_TIMEOUT"`
	Backoff         backoffConfig `desc:"re-check schedule"`
	MaxWait         time.Duration `split_words:"true" default:"24h" desc:"deadline of a request that sets none, after its publish"`
	MaxDeadline     time.Duration `split_words:"true" default:"720h" desc:"furthest deadline a request may set, after its publish; later ones are rejected"`
	NotFoundGrace   time.Duration `split_words:"true" default:"5m" desc:"how long a reference the provider does not know is checked again before it is failed with reason not_found"`
	MaxPending      int           `split_words:"true" default:"100000" desc:"requests that may be parked between checks at once, consumer-wide; the consumer's MaxAckPending is this plus room for in-flight work"`
	AckWait         time.Duration `split_words:"true" desc:"consumer ack wait, the crash-detection window (default: 2 x BRIDGE_REQUEST_TIMEOUT + BRIDGE_PUBLISH_TIMEOUT + 10s)"`

	Provision        bool          `default:"true" desc:"create or update the streams and the consumer at start; false binds to an operator's definitions (deploy/nats) and fails if they are missing or unsafe"`
	RequestsStream   string        `split_words:"true" default:"STATUS_REQUESTS" desc:"stream of status.requested.*"`
	EventsStream     string        `split_words:"true" default:"STATUS_EVENTS" desc:"stream of status.resolved.*.*"`
	DeadletterStream string        `split_words:"true" default:"STATUS_DEADLETTER" desc:"stream of status.deadletter.*"`
	Consumer         string        `default:"bridge" desc:"durable pull consumer shared by every replica"`
	StreamReplicas   int           `split_words:"true" default:"1" desc:"replicas of each stream when provisioning (3 in a cluster)"`
	EventsMaxAge     time.Duration `split_words:"true" default:"168h" desc:"how long events are kept"`
	DeadletterMaxAge time.Duration `split_words:"true" default:"720h" desc:"how long dead letters are kept"`
	DuplicateWindow  time.Duration `split_words:"true" default:"15m" desc:"Nats-Msg-Id duplicate window of the requests and events streams (at least 10m)"`

	IAK       iakConfig       `desc:"IAK postpaid"`
	Ayopop    ayopopConfig    `desc:"Ayopop"`
	AppotaPay appotaPayConfig `desc:"AppotaPay"`

	LogLevel  string `split_words:"true" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `split_words:"true" default:"json" desc:"json or text"`
}

type backoffConfig struct {
	Initial    time.Duration `default:"5s" desc:"wait after the first check"`
	Max        time.Duration `default:"10m" desc:"longest wait between checks (also caps Retry-After)"`
	Multiplier float64       `default:"2" desc:"growth of the wait per check"`
	Jitter     float64       `default:"0.2" desc:"random spread of each wait, 0 to 1"`
}

// backoffOverride is a provider's own schedule; unset fields take the
// BRIDGE_BACKOFF_* value.
type backoffOverride struct {
	Initial    *time.Duration `desc:"overrides BRIDGE_BACKOFF_INITIAL"`
	Max        *time.Duration `desc:"overrides BRIDGE_BACKOFF_MAX"`
	Multiplier *float64       `desc:"overrides BRIDGE_BACKOFF_MULTIPLIER"`
	Jitter     *float64       `desc:"overrides BRIDGE_BACKOFF_JITTER"`
}

type iakConfig struct {
	URL        string           `default:"https://testpostpaid.mobilepulsa.net" desc:"IAK postpaid base URL (production: https://mobilepulsa.net)"`
	Username   string           `desc:"IAK username (the registered phone number)"`
	APIKey     providers.Secret `split_words:"true" desc:"IAK API key"`
	APIKeyFile string           `split_words:"true" desc:"file holding the IAK API key"`
	Backoff    backoffOverride
}

type ayopopConfig struct {
	URL           string           `default:"https://dev.openapi.ayopop.id" desc:"Ayopop base URL"`
	APIKey        providers.Secret `split_words:"true" desc:"Ayopop API key (KEY header and partnerId)"`
	APIKeyFile    string           `split_words:"true" desc:"file holding the Ayopop API key"`
	APISecret     providers.Secret `split_words:"true" desc:"Ayopop API secret (signs the TOKEN JWT)"`
	APISecretFile string           `split_words:"true" desc:"file holding the Ayopop API secret"`
	Version       string           `default:"2.0" desc:"Ayopop API version: 2.0 (/api/v2) or 1.0 (/api/v1)"`
	Backoff       backoffOverride
}

type appotaPayConfig struct {
	URL           string           `default:"https://gateway.dev.appotapay.com" desc:"AppotaPay base URL (production: https://gateway.appotapay.com)"`
	PartnerCode   string           `split_words:"true" desc:"AppotaPay partner code"`
	APIKey        providers.Secret `split_words:"true" desc:"AppotaPay API key"`
	APIKeyFile    string           `split_words:"true" desc:"file holding the AppotaPay API key"`
	SecretKey     providers.Secret `split_words:"true" desc:"AppotaPay secret key (signs the JWT, verifies response signatures)"`
	SecretKeyFile string           `split_words:"true" desc:"file holding the AppotaPay secret key"`
	Backoff       backoffOverride
}

// loadConfig reads and validates the configuration from the environment
// and returns every problem at once.
func loadConfig() (config, error) {
	var c config
	// envconfig stops at the first value it cannot parse; list them all.
	if errs := unparsableValues(&c); len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if err := envconfig.Process(envPrefix, &c); err != nil {
		return c, err
	}
	var errs []error
	readSecretFiles(&c, &errs)
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		errs = append(errs, fmt.Errorf("BRIDGE_CONCURRENCY %d must be 1 to 10000", c.Concurrency))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("BRIDGE_REQUEST_TIMEOUT must be positive"))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, errors.New("BRIDGE_PUBLISH_TIMEOUT must be positive"))
	}
	if c.ShutdownTimeout <= c.RequestTimeout {
		errs = append(errs, fmt.Errorf("BRIDGE_SHUTDOWN_TIMEOUT %v must exceed BRIDGE_REQUEST_TIMEOUT %v", c.ShutdownTimeout, c.RequestTimeout))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, errors.New("BRIDGE_MAX_WAIT must be positive"))
	}
	if c.MaxDeadline < c.MaxWait {
		errs = append(errs, fmt.Errorf("BRIDGE_MAX_DEADLINE %v must be at least BRIDGE_MAX_WAIT %v", c.MaxDeadline, c.MaxWait))
	}
	if c.NotFoundGrace < 0 {
		errs = append(errs, errors.New("BRIDGE_NOT_FOUND_GRACE must not be negative"))
	}
	if c.MaxPending < 1 {
		errs = append(errs, errors.New("BRIDGE_MAX_PENDING must be positive"))
	}
	if c.AckWait == 0 {
		c.AckWait = 2*c.RequestTimeout + c.PublishTimeout + 10*time.Second
	} else if c.AckWait <= c.RequestTimeout+c.PublishTimeout {
		errs = append(errs, fmt.Errorf("BRIDGE_ACK_WAIT %v must exceed BRIDGE_REQUEST_TIMEOUT + BRIDGE_PUBLISH_TIMEOUT", c.AckWait))
	}
	for name, s := range c.schedules() {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("backoff of %s (BRIDGE_BACKOFF_* or BRIDGE_%s_BACKOFF_*): %w", name, strings.ToUpper(name), err))
		}
	}
	if err := c.topology().Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("BRIDGE_LOG_FORMAT %q must be json or text", c.LogFormat))
	}
	if (c.NatsTlsCert == "") != (c.NatsTlsKey == "") {
		errs = append(errs, errors.New("BRIDGE_NATS_TLS_CERT and BRIDGE_NATS_TLS_KEY go together"))
	}
	if c.NatsURL == "" && (c.NatsCreds != "" || c.NatsNkeySeed != "" || c.NatsUser != "" || c.NatsToken.IsSet()) {
		errs = append(errs, errors.New("NATS credentials are set but BRIDGE_NATS_URL is empty (the embedded server needs none)"))
	}
	if _, err := buildProviders(c, nil); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// unparsableValues reports every set variable whose value does not parse
// as its field's type, the way envconfig.Process will parse it. Only
// numbers, booleans and durations can fail, so no secret is ever quoted.
func unparsableValues(c *config) []error {
	var errs []error
	check := func(key string, field any) string {
		v, set := os.LookupEnv(key)
		f, ok := field.(reflect.Value)
		if !set || !ok {
			return ""
		}
		t := f.Type()
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		var err error
		switch {
		case t == reflect.TypeFor[time.Duration]():
			_, err = time.ParseDuration(v)
		case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
			_, err = strconv.ParseInt(v, 0, t.Bits())
		case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
			_, err = strconv.ParseUint(v, 0, t.Bits())
		case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
			_, err = strconv.ParseFloat(v, t.Bits())
		case t.Kind() == reflect.Bool:
			_, err = strconv.ParseBool(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a valid %s", key, v, t))
		}
		return ""
	}
	tmpl := template.Must(template.New("check").Funcs(template.FuncMap{"check": check}).
		Parse(`{{range .}}{{check .Key .Field}}{{end}}`))
	if err := envconfig.Usaget(envPrefix, c, io.Discard, tmpl); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// readSecretFiles fills each secret from its *_FILE variable (a mounted
// Kubernetes secret); setting both is an error.
func readSecretFiles(c *config, errs *[]error) {
	for _, s := range []struct {
		name   string
		value  *providers.Secret
		path   string
		prefix string
	}{
		{"BRIDGE_NATS_PASSWORD", &c.NatsPassword, c.NatsPasswordFile, ""},
		{"BRIDGE_NATS_TOKEN", &c.NatsToken, c.NatsTokenFile, ""},
		{"BRIDGE_IAK_API_KEY", &c.IAK.APIKey, c.IAK.APIKeyFile, ""},
		{"BRIDGE_AYOPOP_API_KEY", &c.Ayopop.APIKey, c.Ayopop.APIKeyFile, ""},
		{"BRIDGE_AYOPOP_API_SECRET", &c.Ayopop.APISecret, c.Ayopop.APISecretFile, ""},
		{"BRIDGE_APPOTAPAY_API_KEY", &c.AppotaPay.APIKey, c.AppotaPay.APIKeyFile, ""},
		{"BRIDGE_APPOTAPAY_SECRET_KEY", &c.AppotaPay.SecretKey, c.AppotaPay.SecretKeyFile, ""},
	} {
		if s.path == "" {
			continue
		}
		if s.value.IsSet() {
			*errs = append(*errs, fmt.Errorf("%s and %s_FILE are both set; use one", s.name, s.name))
			continue
		}
		b, err := os.ReadFile(s.path)
		if err != nil {
			// The path is configuration, not a secret; the error names it.
			*errs = append(*errs, fmt.Errorf("%s_FILE: %w", s.name, err))
			continue
		}
		*s.value = providers.Secret(strings.TrimRight(string(b), "\r\n"))
	}
}

// schedules returns each provider's schedule: the global one with the
// provider's overrides applied.
func (c config) schedules() map[string]subscriber.Schedule {
	base := subscriber.Schedule{
		Initial: c.Backoff.Initial, Max: c.Backoff.Max,
		Multiplier: c.Backoff.Multiplier, Jitter: c.Backoff.Jitter,
	}
	apply := func(o backoffOverride) subscriber.Schedule {
		s := base
		if o.Initial != nil {
			s.Initial = *o.Initial
		}
		if o.Max != nil {
			s.Max = *o.Max
		}
		if o.Multiplier != nil {
			s.Multiplier = *o.Multiplier
		}
		if o.Jitter != nil {
			s.Jitter = *o.Jitter
		}
		return s
	}
	return map[string]subscriber.Schedule{
		iak.Name:       apply(c.IAK.Backoff),
		ayopop.Name:    apply(c.Ayopop.Backoff),
		appotapay.Name: apply(c.AppotaPay.Backoff),
	}
}

// inflightHeadroom is how far MaxAckPending reaches beyond BRIDGE_MAX_PENDING,
// so that fresh requests are still delivered while the parked ones fill
// their share: room for dozens of replicas' in-flight and prefetched work.
func (c config) inflightHeadroom() int { return max(10000, 4*c.Concurrency) }

func (c config) topology() topology.Config {
	return topology.Config{
		RequestsStream:   c.RequestsStream,
		EventsStream:     c.EventsStream,
		DeadLetterStream: c.DeadletterStream,
		Consumer:         c.Consumer,
		Replicas:         c.StreamReplicas,
		EventsMaxAge:     c.EventsMaxAge,
		DeadLetterMaxAge: c.DeadletterMaxAge,
		DuplicateWindow:  c.DuplicateWindow,
		AckWait:          c.AckWait,
		MaxAckPending:    c.MaxPending + c.inflightHeadroom(),
	}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("BRIDGE_LOG_LEVEL %q must be debug, info, warn or error", s)
	}
	return l, nil
}

// printConfig prints every variable with its default, its current value
// (secrets redacted) and its meaning, straight from the config struct.
func printConfig(w io.Writer) error {
	var c config
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	tmpl := template.Must(template.New("config").Funcs(template.FuncMap{
		"current": func(f reflect.Value) string {
			if f.Kind() == reflect.Pointer {
				if f.IsNil() {
					return ""
				}
				f = f.Elem()
			}
			if s, ok := f.Interface().(fmt.Stringer); ok {
				return s.String()
			}
			return fmt.Sprint(f.Interface())
		},
	}).Parse("VARIABLE\tDEFAULT\tMEANING\n{{range .}}{{.Key}}\t{{.Tags.Get \"default\"}}\t{{.Tags.Get \"desc\"}}\n{{end}}"))
	if err := envconfig.Usaget(envPrefix, &c, tw, tmpl); err != nil {
		return err
	}
	return tw.Flush()
}
