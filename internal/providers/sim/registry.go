package sim

import (
	"net/http"
	"strings"
)

// simulator is one simulated provider: the single place it is registered.
// Everything else (routes, capacity profiles, stats, and the BRIDGE_*
// variables that sandbox, simulate, the bench and the tests give a bridge)
// follows from this list.
type simulator struct {
	name string
	// route serves the provider's status call under /<name>/.
	route func(s *Server, m *http.ServeMux)
	// credentials are the provider's BRIDGE_<NAME>_* credential variables
	// (without the prefix) and the fields of Credentials they carry.
	credentials func(c *Credentials) []credential
}

type credential struct {
	suffix string // after BRIDGE_<NAME>_
	value  *string
	secret bool
}

var simulators = []simulator{
	{
		name:  IAK,
		route: func(s *Server, m *http.ServeMux) { m.HandleFunc("POST /iak/api/v1/bill/check", s.serveIAK) },
		credentials: func(c *Credentials) []credential {
			return []credential{{"USERNAME", &c.IAKUsername, false}, {"API_KEY", &c.IAKAPIKey, true}}
		},
	},
	{
		name: Ayopop,
		route: func(s *Server, m *http.ServeMux) {
			m.HandleFunc("POST /ayopop/api/{version}/bill/status", s.serveAyopop)
		},
		credentials: func(c *Credentials) []credential {
			return []credential{{"API_KEY", &c.AyopopKey, true}, {"API_SECRET", &c.AyopopSecret, true}}
		},
	},
	{
		name: AppotaPay,
		// A prefix, not a {partnerRefId} wildcard: ServeMux answers 404
		// for a segment that is only an escaped slash ("%2F", the
		// reference "/").
		route: func(s *Server, m *http.ServeMux) { m.HandleFunc("GET "+appotaPayStatusPath, s.serveAppotaPay) },
		credentials: func(c *Credentials) []credential {
			return []credential{
				{"PARTNER_CODE", &c.AppotaPayPartnerCode, false},
				{"API_KEY", &c.AppotaPayAPIKey, true},
				{"SECRET_KEY", &c.AppotaPaySecretKey, true},
			}
		},
	},
}

// Names lists the simulated providers, in the order reports show them.
func Names() []string {
	names := make([]string, len(simulators))
	for i, s := range simulators {
		names[i] = s.name
	}
	return names
}

// Variable is one BRIDGE_* variable that points a bridge at a simulator.
type Variable struct {
	Name, Value string
	Secret      bool // a credential, printed only when it is a sandbox value
}

// Variables are the variables that point a bridge at the simulators served
// at base and make it use creds: each provider's URL and credentials.
func Variables(base string, creds Credentials) []Variable {
	var vars []Variable
	for _, s := range simulators {
		prefix := "BRIDGE_" + strings.ToUpper(s.name) + "_"
		vars = append(vars, Variable{Name: prefix + "URL", Value: base + "/" + s.name})
		for _, c := range s.credentials(&creds) {
			vars = append(vars, Variable{Name: prefix + c.suffix, Value: *c.value, Secret: c.secret})
		}
	}
	return vars
}

// Override replaces each credential whose BRIDGE_* variable lookup gives a
// non-empty value, so one set of variables configures both a bridge and
// the simulators it talks to.
func (c *Credentials) Override(lookup func(name string) string) {
	for _, s := range simulators {
		prefix := "BRIDGE_" + strings.ToUpper(s.name) + "_"
		for _, cred := range s.credentials(c) {
			if v := lookup(prefix + cred.suffix); v != "" {
				*cred.value = v
			}
		}
	}
}

// Environ is vars as NAME=VALUE.
func Environ(vars []Variable) []string {
	env := make([]string, len(vars))
	for i, v := range vars {
		env[i] = v.Name + "=" + v.Value
	}
	return env
}
