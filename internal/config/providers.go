package config

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/appotapay"
	"github.com/statusbridge/statusbridge/internal/providers/ayopop"
	"github.com/statusbridge/statusbridge/internal/providers/iak"
	"github.com/statusbridge/statusbridge/internal/subscriber"
)

// provider is one provider's part of the configuration, as the rest of the
// bridge sees it. registered is the one place a provider is added: its
// credentials, secret files, schedule, budget and client all follow from
// its entry there.
type provider struct {
	name       string // as in subjects: iak.Name
	identities []identity
	secrets    []secret
	backoff    BackoffOverride
	rate       Rate
	// configured: some credential is set, so the provider is enabled and
	// its settings must be complete.
	configured bool
	client     func(hc *http.Client) (providers.Provider, error)
}

// identity is a credential that is not secret (a user name, a partner code).
type identity struct {
	suffix string // after BRIDGE_<NAME>_
	value  *string
}

// secret is a credential with its *_FILE twin.
type secret struct {
	suffix string
	value  *providers.Secret
	file   *string
}

// prefix is the start of the provider's variables: BRIDGE_IAK_.
func (p provider) prefix() string { return Prefix + "_" + strings.ToUpper(p.name) + "_" }

// registered lists the providers the bridge implements, each bound to c's
// fields.
func (c *Config) registered() []provider {
	return []provider{
		{
			name:       iak.Name,
			identities: []identity{{"USERNAME", &c.IAK.Username}},
			secrets:    []secret{{"API_KEY", &c.IAK.APIKey, &c.IAK.APIKeyFile}},
			backoff:    c.IAK.Backoff, rate: c.IAK.Rate,
			configured: c.IAK.Username != "" || c.IAK.APIKey.IsSet(),
			client: func(hc *http.Client) (providers.Provider, error) {
				return iak.New(iak.Config{BaseURL: c.IAK.URL, Username: c.IAK.Username, APIKey: c.IAK.APIKey}, hc)
			},
		},
		{
			name: ayopop.Name,
			secrets: []secret{
				{"API_KEY", &c.Ayopop.APIKey, &c.Ayopop.APIKeyFile},
				{"API_SECRET", &c.Ayopop.APISecret, &c.Ayopop.APISecretFile},
			},
			backoff: c.Ayopop.Backoff, rate: c.Ayopop.Rate,
			configured: c.Ayopop.APIKey.IsSet() || c.Ayopop.APISecret.IsSet(),
			client: func(hc *http.Client) (providers.Provider, error) {
				return ayopop.New(ayopop.Config{BaseURL: c.Ayopop.URL, APIKey: c.Ayopop.APIKey, APISecret: c.Ayopop.APISecret, Version: c.Ayopop.Version}, hc)
			},
		},
		{
			name:       appotapay.Name,
			identities: []identity{{"PARTNER_CODE", &c.AppotaPay.PartnerCode}},
			secrets: []secret{
				{"API_KEY", &c.AppotaPay.APIKey, &c.AppotaPay.APIKeyFile},
				{"SECRET_KEY", &c.AppotaPay.SecretKey, &c.AppotaPay.SecretKeyFile},
			},
			backoff: c.AppotaPay.Backoff, rate: c.AppotaPay.Rate,
			configured: c.AppotaPay.PartnerCode != "" || c.AppotaPay.APIKey.IsSet() || c.AppotaPay.SecretKey.IsSet(),
			client: func(hc *http.Client) (providers.Provider, error) {
				return appotapay.New(appotapay.Config{BaseURL: c.AppotaPay.URL, PartnerCode: c.AppotaPay.PartnerCode, APIKey: c.AppotaPay.APIKey, SecretKey: c.AppotaPay.SecretKey}, hc)
			},
		},
	}
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

// ProviderNames lists the providers the bridge implements, in the order
// of their variables.
func ProviderNames() []string {
	var c Config
	var names []string
	for _, p := range c.registered() {
		names = append(names, p.name)
	}
	return names
}

// Schedules returns each provider's schedule: the global one with the
// provider's overrides applied.
func (c Config) Schedules() map[string]subscriber.Schedule {
	out := map[string]subscriber.Schedule{}
	for _, p := range c.registered() {
		out[p.name] = c.schedule(p.backoff)
	}
	return out
}

// Capacity returns each provider's capacity settings.
func (c Config) Capacity() map[string]capacity.Settings {
	out := map[string]capacity.Settings{}
	for _, p := range c.registered() {
		burst := p.rate.Burst
		if burst == 0 {
			burst = capacity.DefaultBurst(p.rate.Limit)
		}
		out[p.name] = capacity.Settings{
			Limit: p.rate.Limit, Burst: burst,
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
	for _, p := range c.registered() {
		out[p.name] = nil
		if !p.configured {
			continue
		}
		client, err := p.client(hc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s*: %w", p.prefix(), err))
			continue
		}
		out[p.name] = client
	}
	return out, errors.Join(errs...)
}
