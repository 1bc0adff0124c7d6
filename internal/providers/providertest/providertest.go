// Package providertest is the conformance suite every provider client runs
// against its simulator in package sim: the outcome mapping, every transport
// and body failure, credentials the provider rejects, hostile references,
// one HTTP attempt per call, and no secret in any error.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/sim"
)

// Harness tells the suite how to build one provider's client.
type Harness struct {
	// Provider is the provider's name, also its path under the simulator.
	Provider string
	// New builds a client for baseURL that authenticates with creds and
	// calls through hc.
	New func(baseURL string, creds sim.Credentials, hc *http.Client) (providers.Provider, error)
	// WrongCredentials returns creds with the provider's secret changed, so
	// the simulator must reject the client's authentication.
	WrongCredentials func(creds sim.Credentials) sim.Credentials
}

// TestCredentials are distinctive values the suite searches errors for.
func TestCredentials() sim.Credentials {
	return sim.Credentials{
		IAKUsername:          "0811SECRETUSER",
		IAKAPIKey:            "iak-SECRET-key-7f3a",
		AyopopKey:            "ayoSECRETkey91",
		AyopopSecret:         "ayopop-SECRET-hmac-55",
		AppotaPayPartnerCode: "APPSECRETPARTNER",
		AppotaPayAPIKey:      "APPSECRETAPIKEY",
		AppotaPaySecretKey:   "appotapay-SECRET-hmac-13",
	}
}

// Secrets lists the credential values of creds that must never leak.
func Secrets(c sim.Credentials) []string {
	return []string{c.IAKAPIKey, c.AyopopKey, c.AyopopSecret, c.AppotaPaySecretKey, c.AppotaPayAPIKey}
}

type env struct {
	sim    *sim.Server
	client providers.Provider
}

func setup(t *testing.T, h Harness, timeout time.Duration, clientCreds sim.Credentials) env {
	t.Helper()
	s := sim.New(TestCredentials(), sim.WithHangFor(5*time.Second))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := h.New(srv.URL+"/"+h.Provider, clientCreds, providers.NewHTTPClient(timeout, 4))
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return env{sim: s, client: c}
}

// Run runs the conformance suite for h.
func Run(t *testing.T, h Harness) {
	states := []struct {
		outcome sim.Outcome
		want    providers.State
	}{
		{sim.Success, providers.StateSuccess},
		{sim.Pending, providers.StatePending},
		{sim.Failed, providers.StateFailed},
		{sim.NotFound, providers.StateNotFound},
	}
	for _, tc := range states {
		t.Run("state/"+string(tc.outcome), func(t *testing.T) {
			e := setup(t, h, 5*time.Second, TestCredentials())
			ref := "conf-" + string(tc.outcome)
			e.sim.Script(h.Provider, ref, tc.outcome)
			res, err := e.client.Status(t.Context(), providers.Query{Reference: ref})
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if res.State != tc.want {
				t.Fatalf("state = %v, want %v", res.State, tc.want)
			}
			if res.Code == "" {
				t.Errorf("provider code is empty")
			}
			if tc.want.Final() && res.Details == nil && res.TransactionID == "" {
				t.Errorf("a verdict carries neither a transaction id nor details")
			}
			if got := e.sim.Calls(h.Provider, ref); got != 1 {
				t.Errorf("simulator saw %d calls, want exactly 1", got)
			}
		})
	}

	failures := []struct {
		outcome    sim.Outcome
		cause      error
		httpStatus int
		retryAfter time.Duration
	}{
		{sim.ServerError, providers.ErrUnavailable, 500, 0},
		{sim.Unavailable, providers.ErrUnavailable, 503, time.Second},
		{sim.RateLimited, providers.ErrRateLimited, 429, 2 * time.Second},
		{sim.HTML, providers.ErrBadResponse, 200, 0},
		{sim.Garbage, providers.ErrBadResponse, 200, 0},
		{sim.Truncated, providers.ErrBadResponse, 200, 0},
		{sim.Huge, providers.ErrBadResponse, 200, 0},
		{sim.WrongShape, providers.ErrBadResponse, 200, 0},
		{sim.UnknownCode, providers.ErrUnknownCode, 0, 0},
		{sim.AuthError, providers.ErrAuth, 0, 0},
		{sim.Reset, providers.ErrTransport, 0, 0},
	}
	for _, tc := range failures {
		t.Run("failure/"+string(tc.outcome), func(t *testing.T) {
			e := setup(t, h, 5*time.Second, TestCredentials())
			ref := "conf-" + string(tc.outcome)
			e.sim.Script(h.Provider, ref, tc.outcome)
			_, err := e.client.Status(t.Context(), providers.Query{Reference: ref})
			pe := checkRetryable(t, h, err, tc.cause)
			if tc.httpStatus != 0 && pe.HTTPStatus != tc.httpStatus {
				t.Errorf("HTTPStatus = %d, want %d", pe.HTTPStatus, tc.httpStatus)
			}
			if pe.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", pe.RetryAfter, tc.retryAfter)
			}
			if got := e.sim.Calls(h.Provider, ref); got != 1 {
				t.Errorf("simulator saw %d calls, want exactly 1", got)
			}
		})
	}

	t.Run("failure/timeout", func(t *testing.T) {
		e := setup(t, h, 300*time.Millisecond, TestCredentials())
		e.sim.Script(h.Provider, "conf-timeout", sim.Hang)
		start := time.Now()
		_, err := e.client.Status(t.Context(), providers.Query{Reference: "conf-timeout"})
		checkRetryable(t, h, err, providers.ErrTransport)
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("Status returned after %v; the client timeout was 300ms", d)
		}
	})

	t.Run("failure/context_canceled", func(t *testing.T) {
		e := setup(t, h, 5*time.Second, TestCredentials())
		e.sim.Script(h.Provider, "conf-cancel", sim.Hang)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := e.client.Status(ctx, providers.Query{Reference: "conf-cancel"})
		checkRetryable(t, h, err, providers.ErrTransport)
	})

	t.Run("failure/connection_refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL + "/" + h.Provider
		srv.Close()
		c, err := h.New(base, TestCredentials(), providers.NewHTTPClient(time.Second, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(t.Context(), providers.Query{Reference: "conf-refused"})
		checkRetryable(t, h, err, providers.ErrTransport)
	})

	t.Run("failure/wrong_path", func(t *testing.T) {
		e := setup(t, h, 5*time.Second, TestCredentials())
		srv := httptest.NewServer(e.sim)
		defer srv.Close()
		c, err := h.New(srv.URL+"/not-"+h.Provider, TestCredentials(), providers.NewHTTPClient(time.Second, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(t.Context(), providers.Query{Reference: "conf-path"})
		pe := checkRetryable(t, h, err, nil)
		if pe.HTTPStatus != http.StatusNotFound && pe.HTTPStatus != http.StatusMethodNotAllowed {
			t.Errorf("HTTPStatus = %d, want 404 or 405", pe.HTTPStatus)
		}
	})

	t.Run("auth/wrong_credentials", func(t *testing.T) {
		e := setup(t, h, 5*time.Second, h.WrongCredentials(TestCredentials()))
		e.sim.Script(h.Provider, "conf-auth", sim.Success)
		_, err := e.client.Status(t.Context(), providers.Query{Reference: "conf-auth"})
		checkRetryable(t, h, err, providers.ErrAuth)
		if got := e.sim.Calls(h.Provider, "conf-auth"); got != 0 {
			t.Errorf("the simulator counted %d authenticated calls from wrong credentials", got)
		}
	})

	t.Run("hostile_references", func(t *testing.T) {
		e := setup(t, h, 5*time.Second, TestCredentials())
		for _, ref := range []string{
			"a/b", "/", "../../etc/passwd", "a?b=c&d", "x#frag", "100% sure", "sp ace", "dot.star.*.>",
			"ünïcødé-ref", `quote"and\back`, "%2F%2e%2e", "a+b", "semi;colon",
		} {
			e.sim.Script(h.Provider, ref, sim.Success)
			res, err := e.client.Status(t.Context(), providers.Query{Reference: ref})
			if err != nil {
				t.Errorf("reference %q: %v", ref, err)
				continue
			}
			if res.State != providers.StateSuccess {
				t.Errorf("reference %q: state %v, want success", ref, res.State)
			}
			if got := e.sim.Calls(h.Provider, ref); got != 1 {
				t.Errorf("reference %q reached the simulator as another reference (%d calls under its own)", ref, got)
			}
		}
	})
}

// checkRetryable asserts err is a Retryable *providers.Error of provider h
// with cause (when cause is not nil) and no secret in its text.
func checkRetryable(t *testing.T, h Harness, err error, cause error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Provider != h.Provider {
		t.Errorf("Provider = %q, want %q", pe.Provider, h.Provider)
	}
	if pe.Kind != providers.Retryable {
		t.Errorf("Kind = %v, want retryable", pe.Kind)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Errorf("error %q does not wrap %q", err, cause)
	}
	AssertNoSecrets(t, Secrets(TestCredentials()), err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	return pe
}

// AssertNoSecrets fails the test if any text contains any secret.
func AssertNoSecrets(t testing.TB, secrets []string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("secret %q leaked into %q", s[:3]+"…", text)
			}
		}
	}
}
