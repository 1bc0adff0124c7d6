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
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/statusbridge/statusbridge/internal/providers"
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

	HttpAddr     string `split_words:"true" default:":8080" desc:"address of /healthz, /readyz and /metrics; empty disables it"`
	CallbackAddr string `split_words:"true" desc:"address of the provider callback listener (POST /callbacks/ayopop), its own port, never that of /metrics; empty disables callbacks"`

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
	ChecksBucket     string        `split_words:"true" default:"STATUS_CHECKS" desc:"key-value bucket of each request's state: answered checks, next check, outcome (bridge inspect)"`

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
	for _, p := range c.registered() {
		if p.rate.Limit < 0 || p.rate.Burst < 0 {
			add("%sRATE_LIMIT and %sRATE_BURST must not be negative", p.prefix(), p.prefix())
		}
	}
	if c.CallbackAddr != "" {
		if err := callbackProblem(c.CallbackAddr, c.HttpAddr); err != "" {
			add("BRIDGE_CALLBACK_ADDR %q %s", c.CallbackAddr, err)
		}
		if !c.Ayopop.APIKey.IsSet() && c.Ayopop.APIKeyFile == "" {
			add("BRIDGE_CALLBACK_ADDR is set but Ayopop, the provider that sends callbacks, is not configured")
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
	creds := []credential{
		{"BRIDGE_NATS_USER", c.NatsUser},
		{"BRIDGE_NATS_PASSWORD", c.NatsPassword.Reveal()},
		{"BRIDGE_NATS_TOKEN", c.NatsToken.Reveal()},
	}
	for _, p := range c.registered() {
		for _, name := range p.identities {
			creds = append(creds, credential{p.prefix() + name.suffix, *name.value})
		}
		for _, s := range p.secrets {
			creds = append(creds, credential{p.prefix() + s.suffix, s.value.Reveal()})
		}
	}
	return creds
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
	type secretFile struct {
		name  string
		value *providers.Secret
		path  string
	}
	files := []secretFile{
		{"BRIDGE_NATS_PASSWORD", &c.NatsPassword, c.NatsPasswordFile},
		{"BRIDGE_NATS_TOKEN", &c.NatsToken, c.NatsTokenFile},
		{"BRIDGE_EVENT_SIGNING_SEED", &c.EventSigningSeed, c.EventSigningSeedFile},
	}
	for _, p := range c.registered() {
		for _, s := range p.secrets {
			files = append(files, secretFile{p.prefix() + s.suffix, s.value, *s.file})
		}
	}
	var errs []error
	for _, s := range files {
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
		// A parked request's state must outlive its furthest deadline, and
		// a resolved one's its event (bridge inspect).
		ChecksMaxAge: max(c.MaxDeadline+24*time.Hour, c.EventsMaxAge),
	}
}

// callbackProblem says what is wrong with the callback listener's address:
// it must parse, and must not be the port of /metrics, which is never
// exposed where providers can reach it.
func callbackProblem(callback, httpAddr string) string {
	_, port, err := net.SplitHostPort(callback)
	if err != nil {
		return "is not host:port"
	}
	if _, hport, err := net.SplitHostPort(httpAddr); err == nil && port != "0" && port == hport {
		return "shares its port with BRIDGE_HTTP_ADDR (/metrics)"
	}
	return ""
}
