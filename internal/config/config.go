// Package config is the bridge's configuration: the BRIDGE_* variables, read
// from the process environment by Load, their defaults (Default), the checks
// that refuse a configuration that cannot work (Validate) and the table
// `bridge config` prints (PrintVariables). Everything else takes a Config,
// so tests build one in code.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/appotapay"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
	"github.com/statusbridge/statusbridge/internal/providers/iak"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// Prefix starts the name of every variable.
const Prefix = "BRIDGE"

// Config is the bridge's whole configuration. Each field is one BRIDGE_*
// variable, named by envconfig's rules from the field's path (IAK.APIKey is
// BRIDGE_IAK_API_KEY); its default and meaning are in its tags. Every field
// sets split_words instead of an envconfig name: a named field would also be
// read from the unprefixed variable (envconfig's fallback), so
// BRIDGE_IAK_USERNAME could silently come from USERNAME.
type Config struct {
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

	EventSigningSeedFile string `split_words:"true" desc:"file holding an nkey seed (user, account, ...) that signs every event: headers Statusbridge-Signer (its public key) and Statusbridge-Signature (Ed25519 over the payload, base64url); empty: unsigned"`
	// EventSigningSeed is what ReadSecretFiles read from
	// BRIDGE_EVENT_SIGNING_SEED_FILE; the seed has no variable of its own.
	EventSigningSeed providers.Secret `ignored:"true"`

	DataDir            string `split_words:"true" default:"./data" desc:"JetStream store of the embedded nats-server"`
	EmbeddedListen     string `split_words:"true" default:"127.0.0.1:4222" desc:"client address of the embedded nats-server (port 0: any free port)"`
	EmbeddedSyncAlways bool   `split_words:"true" default:"true" desc:"embedded nats-server fsyncs every write before acknowledging it (false: every 2 minutes, faster, loses recent writes on power loss)"`

	HttpAddr string `split_words:"true" default:":8080" desc:"address of /healthz, /readyz and /metrics; empty disables it"`

	Concurrency     int           `split_words:"true" default:"64" desc:"provider checks in flight per replica and provider: each provider has its own handlers, so one that is slow or down cannot hold up the others"`
	RequestTimeout  time.Duration `split_words:"true" default:"30s" desc:"timeout of one provider HTTP call"`
	PublishTimeout  time.Duration `split_words:"true" default:"10s" desc:"timeout of one JetStream publish and its acknowledgement"`
	ShutdownTimeout time.Duration `split_words:"true" default:"45s" desc:"on SIGTERM, how long in-flight checks may take to finish; must exceed BRIDGE_REQUEST_TIMEOUT"`
	Backoff         Backoff       `desc:"re-check schedule"`
	MaxWait         time.Duration `split_words:"true" default:"24h" desc:"deadline of a request that sets none, after its publish"`
	MaxDeadline     time.Duration `split_words:"true" default:"720h" desc:"furthest deadline a request may set, after its publish; later ones are rejected"`
	NotFoundGrace   time.Duration `split_words:"true" default:"5m" desc:"how long a reference the provider does not know is checked again before it is failed with reason not_found"`
	MaxPending      int           `split_words:"true" default:"1000000" desc:"requests that may be parked between checks at once, consumer-wide; the consumer's MaxAckPending is this plus room for in-flight work"`
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
	CapacityBucket   string        `split_words:"true" default:"STATUS_CAPACITY" desc:"key-value bucket of the providers' shared call budgets, circuit breakers and recent answers"`
	ChecksBucket     string        `split_words:"true" default:"STATUS_CHECKS" desc:"key-value bucket of each parked request's answered checks"`

	Breaker Breaker `desc:"circuit breaker of each provider"`

	IAK       IAK       `desc:"IAK postpaid"`
	Ayopop    Ayopop    `desc:"Ayopop"`
	AppotaPay AppotaPay `desc:"AppotaPay"`

	LogLevel  string `split_words:"true" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `split_words:"true" default:"json" desc:"json or text"`
}

// Breaker tunes every provider's circuit breaker (BRIDGE_BREAKER_*).
type Breaker struct {
	Failures    int           `default:"5" desc:"consecutive failed calls (5xx, timeouts, connection errors) one replica sees before it opens a provider's breaker"`
	Cooldown    time.Duration `default:"2s" desc:"how long an opened breaker parks the provider's checks before one probe"`
	MaxCooldown time.Duration `split_words:"true" default:"5s" desc:"longest open period: each failed probe doubles the last, up to this"`
}

// Backoff is the re-check schedule of every provider (BRIDGE_BACKOFF_*).
type Backoff struct {
	Initial    time.Duration `default:"5s" desc:"wait after the first check"`
	Max        time.Duration `default:"10m" desc:"longest wait between checks (also caps Retry-After)"`
	Multiplier float64       `default:"2" desc:"growth of the wait per check"`
	Jitter     float64       `default:"0.2" desc:"random spread of each wait, 0 to 1"`
}

// Rate is a provider's call budget (BRIDGE_<PROVIDER>_RATE_*).
type Rate struct {
	Limit float64 `desc:"calls per second to this provider, all replicas together; empty or 0: none fixed, the bridge adapts to the provider's 429 and Retry-After"`
	Burst int     `desc:"calls that may run ahead of the limit's spacing: in any sliding second, calls <= limit + burst (default: a fifth of the limit, at least 1)"`
}

// BackoffOverride is a provider's own schedule; unset fields take the
// BRIDGE_BACKOFF_* value.
type BackoffOverride struct {
	Initial    *time.Duration `desc:"overrides BRIDGE_BACKOFF_INITIAL"`
	Max        *time.Duration `desc:"overrides BRIDGE_BACKOFF_MAX"`
	Multiplier *float64       `desc:"overrides BRIDGE_BACKOFF_MULTIPLIER"`
	Jitter     *float64       `desc:"overrides BRIDGE_BACKOFF_JITTER"`
}

// IAK configures IAK postpaid (BRIDGE_IAK_*).
type IAK struct {
	URL        string           `default:"https://testpostpaid.mobilepulsa.net" desc:"IAK postpaid base URL (production: https://mobilepulsa.net)"`
	Username   string           `desc:"IAK username (the registered phone number)"`
	APIKey     providers.Secret `split_words:"true" desc:"IAK API key"`
	APIKeyFile string           `split_words:"true" desc:"file holding the IAK API key"`
	Backoff    BackoffOverride
	Rate       Rate
}

// Ayopop configures Ayopop (BRIDGE_AYOPOP_*).
type Ayopop struct {
	URL           string           `default:"https://dev.openapi.ayopop.id" desc:"Ayopop base URL"`
	APIKey        providers.Secret `split_words:"true" desc:"Ayopop API key (KEY header and partnerId)"`
	APIKeyFile    string           `split_words:"true" desc:"file holding the Ayopop API key"`
	APISecret     providers.Secret `split_words:"true" desc:"Ayopop API secret (signs the TOKEN JWT)"`
	APISecretFile string           `split_words:"true" desc:"file holding the Ayopop API secret"`
	Version       string           `default:"2.0" desc:"Ayopop API version: 2.0 (/api/v2) or 1.0 (/api/v1)"`
	Backoff       BackoffOverride
	Rate          Rate
}

// AppotaPay configures AppotaPay (BRIDGE_APPOTAPAY_*).
type AppotaPay struct {
	URL           string           `default:"https://gateway.dev.appotapay.com" desc:"AppotaPay base URL (production: https://gateway.appotapay.com)"`
	PartnerCode   string           `split_words:"true" desc:"AppotaPay partner code"`
	APIKey        providers.Secret `split_words:"true" desc:"AppotaPay API key"`
	APIKeyFile    string           `split_words:"true" desc:"file holding the AppotaPay API key"`
	SecretKey     providers.Secret `split_words:"true" desc:"AppotaPay secret key (signs the JWT, verifies response signatures)"`
	SecretKeyFile string           `split_words:"true" desc:"file holding the AppotaPay secret key"`
	Backoff       BackoffOverride
	Rate          Rate
}

// Default is the configuration of an environment that sets no variable:
// every field at the default its tag names. Tests start from it.
func Default() Config {
	var c Config
	for _, v := range variables(&c) {
		if v.def == "" {
			continue
		}
		if err := set(v.field, v.def); err != nil {
			panic(fmt.Sprintf("config: the default of %s: %v", v.key, err))
		}
	}
	return c
}

// Validate reports every problem with c at once, none of them quoting a
// secret.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		add("BRIDGE_CONCURRENCY %d must be 1 to 10000", c.Concurrency)
	}
	if c.RequestTimeout <= 0 {
		add("BRIDGE_REQUEST_TIMEOUT must be positive")
	}
	if c.PublishTimeout <= 0 {
		add("BRIDGE_PUBLISH_TIMEOUT must be positive")
	}
	if c.ShutdownTimeout <= c.RequestTimeout {
		add("BRIDGE_SHUTDOWN_TIMEOUT %v must exceed BRIDGE_REQUEST_TIMEOUT %v", c.ShutdownTimeout, c.RequestTimeout)
	}
	if c.MaxWait <= 0 {
		add("BRIDGE_MAX_WAIT must be positive")
	}
	if c.MaxDeadline < c.MaxWait {
		add("BRIDGE_MAX_DEADLINE %v must be at least BRIDGE_MAX_WAIT %v", c.MaxDeadline, c.MaxWait)
	}
	if c.NotFoundGrace < 0 {
		add("BRIDGE_NOT_FOUND_GRACE must not be negative")
	}
	if c.MaxPending < 1 {
		add("BRIDGE_MAX_PENDING must be positive")
	}
	if c.AckWait != 0 && c.AckWait <= c.RequestTimeout+c.PublishTimeout {
		add("BRIDGE_ACK_WAIT %v must exceed BRIDGE_REQUEST_TIMEOUT + BRIDGE_PUBLISH_TIMEOUT", c.AckWait)
	}
	errs = append(errs, c.scheduleProblems()...)
	for name, r := range map[string]Rate{"IAK": c.IAK.Rate, "AYOPOP": c.Ayopop.Rate, "APPOTAPAY": c.AppotaPay.Rate} {
		if r.Limit < 0 || r.Burst < 0 {
			add("BRIDGE_%s_RATE_LIMIT and BRIDGE_%s_RATE_BURST must not be negative", name, name)
		}
	}
	if c.Breaker.Failures < 1 {
		add("BRIDGE_BREAKER_FAILURES %d must be at least 1", c.Breaker.Failures)
	}
	if c.Breaker.Cooldown <= 0 || c.Breaker.MaxCooldown < c.Breaker.Cooldown {
		add("BRIDGE_BREAKER_COOLDOWN %v must be positive and at most BRIDGE_BREAKER_MAX_COOLDOWN %v", c.Breaker.Cooldown, c.Breaker.MaxCooldown)
	}
	if err := c.Topology().Validate(); err != nil {
		errs = append(errs, err)
	}
	var level slog.Level
	if level.UnmarshalText([]byte(c.LogLevel)) != nil {
		add("BRIDGE_LOG_LEVEL %q must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("BRIDGE_LOG_FORMAT %q must be json or text", c.LogFormat)
	}
	if (c.NatsTlsCert == "") != (c.NatsTlsKey == "") {
		add("BRIDGE_NATS_TLS_CERT and BRIDGE_NATS_TLS_KEY go together")
	}
	if c.NatsURL == "" && (c.NatsCreds != "" || c.NatsNkeySeed != "" || c.NatsUser != "" || c.NatsToken.IsSet()) {
		add("NATS credentials are set but BRIDGE_NATS_URL is empty (the embedded server needs none)")
	}
	for _, cred := range c.credentials() {
		if isPlaceholder(cred.value) {
			add("%s holds a placeholder (an EXAMPLE value from deploy/, or change-me, replace-me); set the real credential", cred.name)
		}
	}
	if _, err := c.Providers(nil); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.EventSigner(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// scheduleProblems validates the global schedule once, and each provider's
// only for what its own overrides add.
func (c Config) scheduleProblems() []error {
	var errs []error
	global := problems(c.schedule(BackoffOverride{}).Validate())
	for _, err := range global {
		errs = append(errs, fmt.Errorf("BRIDGE_BACKOFF_*: %w", err))
	}
	schedules := c.Schedules()
	for _, name := range slices.Sorted(maps.Keys(schedules)) {
		for _, err := range problems(schedules[name].Validate()) {
			if !slices.ContainsFunc(global, func(g error) bool { return g.Error() == err.Error() }) {
				errs = append(errs, fmt.Errorf("BRIDGE_%s_BACKOFF_*: %w", strings.ToUpper(name), err))
			}
		}
	}
	return errs
}

// problems splits an errors.Join into its errors.
func problems(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

type credential struct{ name, value string }

// credentials are the values that identify the bridge to NATS and the
// providers.
func (c Config) credentials() []credential {
	return []credential{
		{"BRIDGE_NATS_USER", c.NatsUser},
		{"BRIDGE_NATS_PASSWORD", c.NatsPassword.Reveal()},
		{"BRIDGE_NATS_TOKEN", c.NatsToken.Reveal()},
		{"BRIDGE_IAK_USERNAME", c.IAK.Username},
		{"BRIDGE_IAK_API_KEY", c.IAK.APIKey.Reveal()},
		{"BRIDGE_AYOPOP_API_KEY", c.Ayopop.APIKey.Reveal()},
		{"BRIDGE_AYOPOP_API_SECRET", c.Ayopop.APISecret.Reveal()},
		{"BRIDGE_APPOTAPAY_PARTNER_CODE", c.AppotaPay.PartnerCode},
		{"BRIDGE_APPOTAPAY_API_KEY", c.AppotaPay.APIKey.Reveal()},
		{"BRIDGE_APPOTAPAY_SECRET_KEY", c.AppotaPay.SecretKey.Reveal()},
	}
}

// isPlaceholder reports whether v is a stand-in rather than a credential:
// every example value in deploy/ starts with EXAMPLE, and "change me" or
// "replace me" are what other templates say.
func isPlaceholder(v string) bool {
	v = strings.ToLower(v)
	if strings.HasPrefix(v, "example") {
		return true
	}
	for _, p := range []string{"change-me", "change_me", "changeme", "replace-me", "replace_me", "replaceme", "replace-with"} {
		if strings.Contains(v, p) {
			return true
		}
	}
	return false
}

// ReadSecretFiles fills each secret whose *_FILE variable names a file (a
// mounted Kubernetes or compose secret) with that file's content, without
// its trailing line break. A secret set both ways is an error. Load calls
// it; call it once.
func (c *Config) ReadSecretFiles() error {
	var errs []error
	for _, s := range []struct {
		name  string
		value *providers.Secret
		path  string
	}{
		{"BRIDGE_NATS_PASSWORD", &c.NatsPassword, c.NatsPasswordFile},
		{"BRIDGE_NATS_TOKEN", &c.NatsToken, c.NatsTokenFile},
		{"BRIDGE_IAK_API_KEY", &c.IAK.APIKey, c.IAK.APIKeyFile},
		{"BRIDGE_AYOPOP_API_KEY", &c.Ayopop.APIKey, c.Ayopop.APIKeyFile},
		{"BRIDGE_AYOPOP_API_SECRET", &c.Ayopop.APISecret, c.Ayopop.APISecretFile},
		{"BRIDGE_APPOTAPAY_API_KEY", &c.AppotaPay.APIKey, c.AppotaPay.APIKeyFile},
		{"BRIDGE_APPOTAPAY_SECRET_KEY", &c.AppotaPay.SecretKey, c.AppotaPay.SecretKeyFile},
		{"BRIDGE_EVENT_SIGNING_SEED", &c.EventSigningSeed, c.EventSigningSeedFile},
	} {
		if s.path == "" {
			continue
		}
		if s.value.IsSet() {
			errs = append(errs, fmt.Errorf("%s and %s_FILE are both set; use one", s.name, s.name))
			continue
		}
		b, err := os.ReadFile(s.path)
		if err != nil {
			// The path is configuration, not a secret; the error names it.
			errs = append(errs, fmt.Errorf("%s_FILE: %w", s.name, err))
			continue
		}
		*s.value = providers.Secret(strings.TrimRight(string(b), "\r\n"))
	}
	return errors.Join(errs...)
}

// EventSigner is the key that signs events (BRIDGE_EVENT_SIGNING_SEED_FILE,
// read by ReadSecretFiles), nil when events are unsigned. Any nkey seed that
// can sign will do; the error never quotes the seed.
func (c Config) EventSigner() (nkeys.KeyPair, error) {
	if !c.EventSigningSeed.IsSet() {
		if c.EventSigningSeedFile != "" && c.EventSigningSeed == "" {
			return nil, errors.New("BRIDGE_EVENT_SIGNING_SEED_FILE is empty or was not read")
		}
		return nil, nil
	}
	kp, err := nkeys.FromSeed([]byte(c.EventSigningSeed.Reveal()))
	if err != nil {
		return nil, errors.New("BRIDGE_EVENT_SIGNING_SEED_FILE does not hold an nkey seed (nsc generate nkey --account, or nk -gen user)")
	}
	if _, err := kp.Sign(nil); err != nil {
		return nil, errors.New("BRIDGE_EVENT_SIGNING_SEED_FILE holds a curve (X) key, which cannot sign; use a user or account seed")
	}
	return kp, nil
}

// schedule is the global schedule with o applied.
func (c Config) schedule(o BackoffOverride) subscriber.Schedule {
	s := subscriber.Schedule{
		Initial: c.Backoff.Initial, Max: c.Backoff.Max,
		Multiplier: c.Backoff.Multiplier, Jitter: c.Backoff.Jitter,
	}
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

// Schedules returns each provider's schedule: the global one with the
// provider's overrides applied.
func (c Config) Schedules() map[string]subscriber.Schedule {
	return map[string]subscriber.Schedule{
		iak.Name:       c.schedule(c.IAK.Backoff),
		ayopop.Name:    c.schedule(c.Ayopop.Backoff),
		appotapay.Name: c.schedule(c.AppotaPay.Backoff),
	}
}

// Topology returns the streams and the consumer the bridge provisions or
// binds to. The consumer's MaxAckPending reaches beyond BRIDGE_MAX_PENDING
// so that fresh requests are still delivered while the parked ones fill
// their share: room for dozens of replicas' in-flight and prefetched work.
func (c Config) Topology() topology.Config {
	ackWait := c.AckWait
	if ackWait == 0 {
		ackWait = 2*c.RequestTimeout + c.PublishTimeout + 10*time.Second
	}
	return topology.Config{
		RequestsStream:   c.RequestsStream,
		EventsStream:     c.EventsStream,
		DeadLetterStream: c.DeadletterStream,
		Consumer:         c.Consumer,
		Replicas:         c.StreamReplicas,
		EventsMaxAge:     c.EventsMaxAge,
		DeadLetterMaxAge: c.DeadletterMaxAge,
		DuplicateWindow:  c.DuplicateWindow,
		AckWait:          ackWait,
		MaxAckPending:    c.MaxPending + max(10000, 4*c.Concurrency),
		CapacityBucket:   c.CapacityBucket,
		ChecksBucket:     c.ChecksBucket,
		// A parked request's checks must outlive its furthest deadline.
		ChecksMaxAge: c.MaxDeadline + 24*time.Hour,
	}
}

// Capacity returns each provider's capacity settings.
func (c Config) Capacity() map[string]capacity.Settings {
	out := map[string]capacity.Settings{}
	for name, r := range map[string]Rate{iak.Name: c.IAK.Rate, ayopop.Name: c.Ayopop.Rate, appotapay.Name: c.AppotaPay.Rate} {
		burst := r.Burst
		if burst == 0 {
			burst = capacity.DefaultBurst(r.Limit)
		}
		out[name] = capacity.Settings{
			Limit: r.Limit, Burst: burst,
			// A check waits in-process for a slot at most a quarter of
			// the time JetStream gives it before redelivering.
			MaxWait: min(2*time.Second, c.Topology().AckWait/4),
			Breaker: capacity.BreakerSettings{
				Failures: c.Breaker.Failures, Cooldown: c.Breaker.Cooldown, MaxCooldown: c.Breaker.MaxCooldown,
				ProbeTimeout: c.RequestTimeout + 5*time.Second,
			},
		}
	}
	return out
}

// Providers builds a client for every provider with credentials and maps
// the others to nil (disabled: their requests are rejected with
// provider_not_configured). A nil hc only validates.
func (c Config) Providers(hc *http.Client) (map[string]providers.Provider, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	out := map[string]providers.Provider{}
	var errs []error
	add := func(name, vars string, configured bool, build func() (providers.Provider, error)) {
		out[name] = nil
		if !configured {
			return
		}
		p, err := build()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", vars, err))
			return
		}
		out[name] = p
	}
	add(iak.Name, "BRIDGE_IAK_*", c.IAK.Username != "" || c.IAK.APIKey.IsSet(), func() (providers.Provider, error) {
		return iak.New(iak.Config{BaseURL: c.IAK.URL, Username: c.IAK.Username, APIKey: c.IAK.APIKey}, hc)
	})
	add(ayopop.Name, "BRIDGE_AYOPOP_*", c.Ayopop.APIKey.IsSet() || c.Ayopop.APISecret.IsSet(), func() (providers.Provider, error) {
		return ayopop.New(ayopop.Config{BaseURL: c.Ayopop.URL, APIKey: c.Ayopop.APIKey, APISecret: c.Ayopop.APISecret, Version: c.Ayopop.Version}, hc)
	})
	add(appotapay.Name, "BRIDGE_APPOTAPAY_*", c.AppotaPay.PartnerCode != "" || c.AppotaPay.APIKey.IsSet() || c.AppotaPay.SecretKey.IsSet(), func() (providers.Provider, error) {
		return appotapay.New(appotapay.Config{BaseURL: c.AppotaPay.URL, PartnerCode: c.AppotaPay.PartnerCode, APIKey: c.AppotaPay.APIKey, SecretKey: c.AppotaPay.SecretKey}, hc)
	})
	return out, errors.Join(errs...)
}
