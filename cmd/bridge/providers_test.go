package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

// TestProviderRegistration: a provider is registered in config (its
// variables and client) and in sim (its simulator); everything else
// follows from those two lists or is checked here against them, as the
// README's "Adding a provider" says.
func TestProviderRegistration(t *testing.T) {
	t.Parallel()
	names := config.ProviderNames()
	if len(names) == 0 {
		t.Fatal("config registers no provider")
	}
	if got := sim.Names(); !slices.Equal(got, names) {
		t.Errorf("simulators %v, configured providers %v: each provider needs both, in the same order", got, names)
	}

	var schema struct {
		Properties struct {
			Provider struct {
				Enum []string `json:"enum"`
			} `json:"provider"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(readFile(t, repoRoot+"/schemas/status.requested.v1.json")), &schema); err != nil {
		t.Fatal(err)
	}
	if got := schema.Properties.Provider.Enum; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(names))) {
		t.Errorf("status.requested.v1.json's provider enum %v, registered %v", got, names)
	}

	// The simulators' variables are the bridge's, and configure every
	// provider: sandbox, simulate, the bench and the tests use them.
	c := config.Default()
	if err := c.Set(sim.Environ(sim.Variables("http://127.0.0.1:1", sim.SandboxCredentials()))...); err != nil {
		t.Fatalf("the simulators name variables the bridge does not have: %v", err)
	}
	clients, err := c.Providers(nil)
	if err != nil {
		t.Fatalf("the simulators' variables do not configure the bridge: %v", err)
	}
	for _, name := range names {
		if clients[name] == nil {
			t.Errorf("the simulators' variables leave %s unconfigured", name)
		}
		if c.Schedules()[name].Validate() != nil || c.Capacity()[name].MaxWait <= 0 {
			t.Errorf("%s has no schedule or capacity settings", name)
		}
	}

	// The docs: a section in docs/providers.md and its variables in
	// docs/configuration.md (TestReadmeProviders and the configuration
	// tests check their content).
	providersDoc, configDoc := readFile(t, repoRoot+"/docs/providers.md"), readFile(t, repoRoot+"/docs/configuration.md")
	for _, name := range names {
		if !strings.Contains(strings.ToLower(providersDoc), "## "+name) {
			t.Errorf("docs/providers.md has no section for %s", name)
		}
		if v := "BRIDGE_" + strings.ToUpper(name) + "_URL"; !strings.Contains(configDoc, v) {
			t.Errorf("docs/configuration.md does not name %s", v)
		}
	}
}
