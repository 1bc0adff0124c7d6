package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nkeys"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

// setEnv makes env the only BRIDGE_* variables for the test, so a
// developer's shell cannot change what it reads.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, config.Prefix+"_") {
			t.Setenv(k, "") // restores the variable after the test
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// withProviders is Default with every provider's credentials.
func withProviders() config.Config {
	creds := providertest.TestCredentials()
	c := config.Default()
	c.IAK.Username, c.IAK.APIKey = creds.IAKUsername, providers.Secret(creds.IAKAPIKey)
	c.Ayopop.APIKey, c.Ayopop.APISecret = providers.Secret(creds.AyopopKey), providers.Secret(creds.AyopopSecret)
	c.AppotaPay.PartnerCode = creds.AppotaPayPartnerCode
	c.AppotaPay.APIKey, c.AppotaPay.SecretKey = providers.Secret(creds.AppotaPayAPIKey), providers.Secret(creds.AppotaPaySecretKey)
	return c
}

// TestLoadReadsAsEnvconfig checks Load against envconfig.Process: the
// defaults of an empty environment (which Default returns), values of
// every kind, and a Config passed to a child process through Environ.
func TestLoadReadsAsEnvconfig(t *testing.T) {
	load := func(env map[string]string) (config.Config, config.Config) {
		t.Helper()
		setEnv(t, env)
		got, warnings, err := config.Load()
		if err != nil || len(warnings) > 0 {
			t.Fatalf("Load: %v, warnings %q", err, warnings)
		}
		var want config.Config
		if err := envconfig.Process(config.Prefix, &want); err != nil {
			t.Fatal(err)
		}
		return got, want
	}

	got, want := load(nil)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("empty environment (-envconfig +Load):\n%s", d)
	}
	if d := cmp.Diff(got, config.Default()); d != "" {
		t.Errorf("Default differs from an empty environment (-Load +Default):\n%s", d)
	}

	got, want = load(map[string]string{
		"BRIDGE_NATS_URL": "nats://a:4222,nats://b:4222", "BRIDGE_CONCURRENCY": "0x20", "BRIDGE_MAX_WAIT": "90m",
		"BRIDGE_BACKOFF_JITTER": "0.5", "BRIDGE_IAK_BACKOFF_INITIAL": "2s", "BRIDGE_AYOPOP_BACKOFF_MULTIPLIER": "1.5",
		"BRIDGE_PROVISION": "false", "BRIDGE_EMBEDDED_SYNC_ALWAYS": "0", "BRIDGE_IAK_USERNAME": "0811",
		"BRIDGE_IAK_API_KEY": "k", "BRIDGE_DATA_DIR": "", "BRIDGE_ACK_WAIT": "2m",
	})
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-envconfig +Load):\n%s", d)
	}
	if got.Concurrency != 32 || *got.IAK.Backoff.Initial != 2*time.Second || got.Provision || got.DataDir != "" {
		t.Errorf("read %+v", got)
	}

	c := withProviders()
	c.NatsURL, c.NatsUser, c.NatsPassword = "nats://n:4222", "bridge", "pw"
	c.Backoff.Jitter, c.AppotaPay.Backoff.Max = 0, new(time.Hour)
	c.Provision, c.HttpAddr = false, ""
	env := map[string]string{}
	for _, kv := range c.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	got, _ = load(env)
	if d := cmp.Diff(c, got); d != "" {
		t.Errorf("a Config through Environ and Load (-sent +read):\n%s", d)
	}
}

// TestUnparsableConfig checks that every value of the wrong type is
// reported at once, not only the first one envconfig meets, together with
// the other problems.
func TestUnparsableConfig(t *testing.T) {
	setEnv(t, map[string]string{
		"BRIDGE_CONCURRENCY":            "many",
		"BRIDGE_MAX_WAIT":               "a day",
		"BRIDGE_PROVISION":              "maybe",
		"BRIDGE_IAK_BACKOFF_MULTIPLIER": "two",
		"BRIDGE_LOG_FORMAT":             "xml",
	})
	_, _, err := config.Load()
	if err == nil {
		t.Fatal("loaded an invalid configuration")
	}
	for _, want := range []string{`BRIDGE_CONCURRENCY="many"`, `BRIDGE_MAX_WAIT="a day"`, `BRIDGE_PROVISION="maybe"`, `BRIDGE_IAK_BACKOFF_MULTIPLIER="two"`, "BRIDGE_LOG_FORMAT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "BRIDGE_CONCURRENCY"); n != 1 {
		t.Errorf("BRIDGE_CONCURRENCY is reported %d times:\n%v", n, err)
	}
}

// TestUnknownVariables checks that a BRIDGE_* variable the bridge does not
// read is a warning, with the name it most likely misspells.
func TestUnknownVariables(t *testing.T) {
	setEnv(t, map[string]string{
		"BRIDGE_NATSURL":           "nats://elsewhere:4222",
		"BRIDGE_IAK_APIKEY":        "k",
		"BRIDGE_SOMETHING_ELSE_AT": "1",
		"BRIDGE_CONCURRENCY":       "8",
		"NOT_BRIDGE_X":             "1",
	})
	_, warnings, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"unknown variable BRIDGE_IAK_APIKEY; did you mean BRIDGE_IAK_API_KEY?",
		"unknown variable BRIDGE_NATSURL; did you mean BRIDGE_NATS_URL?",
		"unknown variable BRIDGE_SOMETHING_ELSE_AT",
	}
	if d := cmp.Diff(want, warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// TestInvalidConfig checks that every configuration problem is reported at
// once and that none of them echoes a secret.
func TestInvalidConfig(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Concurrency = 0
	c.ShutdownTimeout = time.Second
	c.Backoff.Multiplier = 0.5
	c.LogFormat = "xml"
	c.IAK.URL = "ftp://nope"
	c.IAK.APIKey = "super-secret-key-123"
	c.DuplicateWindow = time.Minute
	c.AppotaPay.SecretKey = "x"
	err := c.Validate()
	if err == nil {
		t.Fatal("an invalid configuration is valid")
	}
	for _, want := range []string{"BRIDGE_CONCURRENCY", "BRIDGE_SHUTDOWN_TIMEOUT", "multiplier", "BRIDGE_LOG_FORMAT", "iak: base URL", "username", "duplicate window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "super-secret-key-123") {
		t.Errorf("configuration error leaks a secret")
	}
}

// TestCallbackAddr: the callback listener has a port of its own, and needs
// Ayopop, the provider that calls it.
func TestCallbackAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		callback, http string
		ayopop         bool
		want           string
	}{
		{"127.0.0.1:8081", ":8080", true, ""},
		{":0", ":0", true, ""},
		{":8080", "127.0.0.1:8080", true, "shares its port"},
		{"8081", ":8080", true, "is not host:port"},
		{":8081", ":8080", false, "Ayopop"},
	} {
		c := config.Default()
		c.CallbackAddr, c.HttpAddr = tc.callback, tc.http
		if tc.ayopop {
			c.Ayopop.APIKey, c.Ayopop.APISecret = "k", "s"
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q beside %q: %v", tc.callback, tc.http, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q beside %q: got %v, want an error about %q", tc.callback, tc.http, err, tc.want)
		}
	}
}

// TestScheduleProblemsOnce checks that a bad global schedule is reported
// once, not once per provider, and a provider's own override separately.
func TestScheduleProblemsOnce(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Backoff.Jitter = 2
	c.IAK.Backoff.Initial = new(time.Duration) // 0
	err := c.Validate()
	if n := strings.Count(errString(err), "jitter"); n != 1 {
		t.Errorf("jitter reported %d times:\n%v", n, err)
	}
	for _, want := range []string{"BRIDGE_BACKOFF_*: jitter 2", "BRIDGE_IAK_BACKOFF_*: initial delay 0s must be positive"} {
		if !strings.Contains(errString(err), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestPlaceholderCredentials checks that the stand-ins of deploy/ (and the
// usual "change me") are refused as credentials, without being echoed.
func TestPlaceholderCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(c *config.Config, v string)
	}{
		{"BRIDGE_IAK_USERNAME", func(c *config.Config, v string) { c.IAK.Username = v }},
		{"BRIDGE_IAK_API_KEY", func(c *config.Config, v string) { c.IAK.APIKey = providers.Secret(v) }},
		{"BRIDGE_AYOPOP_API_KEY", func(c *config.Config, v string) { c.Ayopop.APIKey = providers.Secret(v) }},
		{"BRIDGE_AYOPOP_API_SECRET", func(c *config.Config, v string) { c.Ayopop.APISecret = providers.Secret(v) }},
		{"BRIDGE_APPOTAPAY_PARTNER_CODE", func(c *config.Config, v string) { c.AppotaPay.PartnerCode = v }},
		{"BRIDGE_APPOTAPAY_API_KEY", func(c *config.Config, v string) { c.AppotaPay.APIKey = providers.Secret(v) }},
		{"BRIDGE_APPOTAPAY_SECRET_KEY", func(c *config.Config, v string) { c.AppotaPay.SecretKey = providers.Secret(v) }},
		{"BRIDGE_NATS_PASSWORD", func(c *config.Config, v string) {
			c.NatsURL, c.NatsUser, c.NatsPassword = "nats://n:4222", "bridge", providers.Secret(v)
		}},
		{"BRIDGE_NATS_TOKEN", func(c *config.Config, v string) { c.NatsURL, c.NatsToken = "nats://n:4222", providers.Secret(v) }},
	} {
		for _, v := range []string{"EXAMPLE-replace-with-the-key-7", "example-partner-7", "change-me-7", "REPLACE_ME-7"} {
			c := withProviders()
			tc.set(&c, v)
			err := c.Validate()
			if !strings.Contains(errString(err), tc.name+" holds a placeholder") {
				t.Errorf("%s=%s: %v", tc.name, v, err)
			}
			if strings.Contains(errString(err), v) {
				t.Errorf("%s: the error quotes the value: %v", tc.name, err)
			}
		}
	}
	if err := withProviders().Validate(); err != nil {
		t.Errorf("real-looking credentials refused: %v", err)
	}
}

// TestSecretFiles reads every secret from its *_FILE path, as mounted
// Kubernetes or compose secrets give them: a trailing newline (LF or CRLF)
// is not part of the secret, anything else is.
func TestSecretFiles(t *testing.T) {
	t.Parallel()
	creds := providertest.TestCredentials()
	secrets := []struct {
		name   string
		value  string
		secret func(*config.Config) (value *providers.Secret, file *string)
	}{
		{"BRIDGE_NATS_PASSWORD", "nats-SECRET-pw", func(c *config.Config) (*providers.Secret, *string) { return &c.NatsPassword, &c.NatsPasswordFile }},
		{"BRIDGE_NATS_TOKEN", "nats-SECRET-tok", func(c *config.Config) (*providers.Secret, *string) { return &c.NatsToken, &c.NatsTokenFile }},
		{"BRIDGE_IAK_API_KEY", creds.IAKAPIKey, func(c *config.Config) (*providers.Secret, *string) { return &c.IAK.APIKey, &c.IAK.APIKeyFile }},
		{"BRIDGE_AYOPOP_API_KEY", creds.AyopopKey, func(c *config.Config) (*providers.Secret, *string) { return &c.Ayopop.APIKey, &c.Ayopop.APIKeyFile }},
		{"BRIDGE_AYOPOP_API_SECRET", creds.AyopopSecret, func(c *config.Config) (*providers.Secret, *string) {
			return &c.Ayopop.APISecret, &c.Ayopop.APISecretFile
		}},
		{"BRIDGE_APPOTAPAY_API_KEY", creds.AppotaPayAPIKey, func(c *config.Config) (*providers.Secret, *string) {
			return &c.AppotaPay.APIKey, &c.AppotaPay.APIKeyFile
		}},
		{"BRIDGE_APPOTAPAY_SECRET_KEY", creds.AppotaPaySecretKey, func(c *config.Config) (*providers.Secret, *string) {
			return &c.AppotaPay.SecretKey, &c.AppotaPay.SecretKeyFile
		}},
	}
	for _, s := range secrets {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct{ file, want string }{
				{s.value, s.value},
				{s.value + "\n", s.value},
				{s.value + "\r\n", s.value},
				{s.value + "\n\n", s.value},
				{" " + s.value + " \n", " " + s.value + " "}, // spaces are the secret's own
			} {
				var c config.Config
				_, file := s.secret(&c)
				*file = writeSecret(t, "secret", tc.file)
				err := c.ReadSecretFiles()
				if got, _ := s.secret(&c); got.Reveal() != tc.want {
					t.Errorf("file %q: read %q, want %q (err %v)", tc.file, got.Reveal(), tc.want, err)
				}
			}

			var c config.Config
			value, file := s.secret(&c)
			*value, *file = providers.Secret(s.value), writeSecret(t, "secret", "other-"+s.value)
			err := c.ReadSecretFiles()
			if err == nil || !strings.Contains(err.Error(), s.name+" and "+s.name+"_FILE are both set") {
				t.Errorf("both set: %v", err)
			}
			providertest.AssertNoSecrets(t, []string{s.value}, errString(err))

			c = config.Config{}
			_, file = s.secret(&c)
			*file = filepath.Join(t.TempDir(), "no-such-file")
			if err := c.ReadSecretFiles(); err == nil || !strings.Contains(err.Error(), s.name+"_FILE") || !strings.Contains(err.Error(), *file) {
				t.Errorf("missing file: %v", err)
			}
		})
	}
}

// TestPrintVariables checks the table of `bridge config`: every variable
// with its default and meaning.
func TestPrintVariables(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := config.PrintVariables(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if f := strings.Fields(lines[0]); !cmp.Equal(f, []string{"VARIABLE", "DEFAULT", "MEANING"}) {
		t.Errorf("header %q", lines[0])
	}
	rows := map[string]bool{}
	for _, l := range lines[1:] {
		rows[strings.Fields(l)[0]] = true
	}
	for _, kv := range config.Default().Environ() {
		if k, _, _ := strings.Cut(kv, "="); !rows[k] {
			t.Errorf("no row for %s", k)
		}
	}
	for _, want := range []string{"BRIDGE_CONCURRENCY 64 provider checks in flight per replica and provider: each provider has its own handlers, so one that is slow or down cannot hold up the others", "BRIDGE_IAK_BACKOFF_JITTER overrides BRIDGE_BACKOFF_JITTER"} {
		found := false
		for _, l := range lines {
			found = found || strings.Join(strings.Fields(l), " ") == want
		}
		if !found {
			t.Errorf("no row %q in\n%s", want, out.String())
		}
	}
}

func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestEventSigningSeed reads the seed that signs events at load, as the
// other secret files, and refuses a file that holds no usable seed without
// quoting it.
func TestEventSigningSeed(t *testing.T) {
	user, _ := nkeys.CreateUser()
	account, _ := nkeys.CreateAccount()
	curve, _ := nkeys.CreateCurveKeys()
	seedOf := func(kp nkeys.KeyPair) string {
		s, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		return string(s)
	}
	publicOf := func(kp nkeys.KeyPair) string {
		p, _ := kp.PublicKey()
		return p
	}
	tests := []struct {
		name, file string // file: the content; "-" for no variable
		signer     string // the public key expected; "" for unsigned
		problem    string // part of the error expected; "" for none
	}{
		{"unset: unsigned", "-", "", ""},
		{"a user seed", seedOf(user) + "\n", publicOf(user), ""},
		{"an account seed", seedOf(account), publicOf(account), ""},
		{"not a seed", "SUTHIS-IS-NOT-A-SEED-BUT-LOOKS-LIKE-ONE", "", "BRIDGE_EVENT_SIGNING_SEED_FILE does not hold an nkey seed"},
		{"a public key, not a seed", publicOf(user), "", "BRIDGE_EVENT_SIGNING_SEED_FILE does not hold an nkey seed"},
		{"a curve key, which cannot sign", seedOf(curve), "", "cannot sign"},
		{"an empty file", "\n", "", "BRIDGE_EVENT_SIGNING_SEED_FILE is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.file != "-" {
				env["BRIDGE_EVENT_SIGNING_SEED_FILE"] = writeSecret(t, "seed.nk", tc.file)
			}
			setEnv(t, env)
			c, _, err := config.Load()
			if tc.problem == "" && strings.Contains(errString(err), "SIGNING") || !strings.Contains(errString(err), tc.problem) {
				t.Fatalf("Load: %v, want a problem %q", err, tc.problem)
			}
			providertest.AssertNoSecrets(t, []string{strings.TrimSpace(tc.file)}, errString(err))
			if tc.problem != "" {
				return
			}
			kp, err := c.EventSigner()
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if kp != nil {
				got = publicOf(kp)
			}
			if got != tc.signer {
				t.Errorf("signer %q, want %q", got, tc.signer)
			}
			if strings.Contains(c.EventSigningSeed.String(), "SU") || strings.Contains(c.EventSigningSeed.String(), "SA") {
				t.Errorf("the seed prints as %q", c.EventSigningSeed)
			}
		})
	}
}
