// Package sim simulates the status APIs of IAK, Ayopop and AppotaPay on one
// HTTP server, for tests, `bridge sandbox`, `bridge simulate` and `bridge
// bench`. Each simulator checks credentials the way its provider documents
// (IAK's md5 sign, Ayopop's and AppotaPay's HS256 JWTs), implemented here
// independently of the clients, and answers from a script of outcomes per
// reference.
//
// Routes, each under its provider's base path:
//
//	POST /iak/api/v1/bill/check                                   IAK checkstatus
//	POST /ayopop/api/v1/bill/status, /ayopop/api/v2/bill/status   Ayopop status
//	GET  /appotapay/api/v1/service/bill/transaction/{partnerRefId} AppotaPay status
//	PUT  /_sim/scripts/{provider}/{reference}                     set a script: {"steps":["pending","success"]}
//	GET  /_sim/calls/{provider}/{reference}                       {"calls":n}
//	GET  /_sim/stats                                               calls per provider
//	GET  /_sim/stats/{provider}                                    ProviderStats: calls, refusals, peak calls per second, references
//	PUT  /_sim/profiles/{provider}                                 set a capacity Profile, e.g. {"latency":"250ms","rate_limit":50}
//	GET  /_sim/profiles/{provider}                                 the Profile, its outage as outage_from and outage_until
//	DELETE /_sim/scripts                                           forget all scripts and counts (not the profiles)
//
// A reference without a script set through the API is read as a script
// itself when it looks like one: steps separated by commas, each an Outcome
// optionally repeated with *n, then optionally '#' and anything, e.g.
// "pending*3,success#order-7781". The last step repeats forever. Any other
// reference gets the server's default script.
//
// Each provider has a capacity Profile (latency, rate limit, outage), set
// with SetProfile, WithProfiles, the flags of RegisterCapacityFlags or
// PUT /_sim/profiles/{provider}. Its members are "latency", "jitter",
// "retry_after" and "outage_retry_after" (Go durations), "rate_limit"
// (calls per second), and the outage: "outage_after" (default 0) and
// "outage_for" from now, or "outage_from" and "outage_until" (RFC 3339),
// e.g. {"latency":"250ms","jitter":"50ms","rate_limit":50,"retry_after":"1s",
// "outage_after":"10s","outage_for":"60s"}. Unknown members and bad values
// get HTTP 400. A PUT replaces the whole profile: one without outage
// members ends an outage.
package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outcome is one scripted answer of a simulator.
type Outcome string

// Outcomes every simulator gives in its provider's own format.
const (
	Success  Outcome = "success"  // the payment succeeded (signed, where the provider signs)
	Failed   Outcome = "failed"   // the payment failed
	Pending  Outcome = "pending"  // still processing
	NotFound Outcome = "notfound" // the provider does not know the reference
	// UnknownCode answers well-formed JSON with a code no table documents.
	UnknownCode Outcome = "unknowncode"
	// AuthError answers as if the credentials were wrong, whatever was sent.
	AuthError Outcome = "autherror"
	// WrongShape answers valid JSON that is not the documented structure.
	WrongShape Outcome = "wrongshape"
	// BadSignature answers a success whose signature does not verify
	// (AppotaPay; the others have no response signature and answer success).
	BadSignature Outcome = "badsig"
	// Unsigned answers a success without a signature (AppotaPay; the others
	// answer success).
	Unsigned Outcome = "unsigned"
	// NotReceived is IAK's "payment request not received" (status 0, code
	// 42); the others answer NotFound.
	NotReceived Outcome = "notreceived"
)

// Outcomes the server gives the same way for every provider.
const (
	ServerError Outcome = "error500"  // HTTP 500 with a JSON body
	Unavailable Outcome = "error503"  // HTTP 503 with Retry-After: 1
	RateLimited Outcome = "ratelimit" // HTTP 429 with Retry-After: 2
	Hang        Outcome = "timeout"   // no answer until the client gives up
	HTML        Outcome = "html"      // HTTP 200 with an HTML maintenance page
	Garbage     Outcome = "garbage"   // HTTP 200 with bytes that are not JSON
	Truncated   Outcome = "truncated" // HTTP 200 with JSON cut off mid-way
	Huge        Outcome = "huge"      // HTTP 200 with a 4 MiB body
	Reset       Outcome = "reset"     // the connection is closed without an answer
)

// Outcomes lists every outcome, for validation and documentation.
var Outcomes = []Outcome{
	Success, Failed, Pending, NotFound, UnknownCode, AuthError, WrongShape, BadSignature, Unsigned, NotReceived,
	ServerError, Unavailable, RateLimited, Hang, HTML, Garbage, Truncated, Huge, Reset,
}

// Provider names, as in subjects and base paths.
const (
	IAK       = "iak"
	Ayopop    = "ayopop"
	AppotaPay = "appotapay"
)

// Credentials are the accounts the simulators accept.
type Credentials struct {
	IAKUsername string
	IAKAPIKey   string

	AyopopKey    string // the API key, also the JWT's partnerId claim
	AyopopSecret string // the HS256 key of the TOKEN header

	AppotaPayPartnerCode string
	AppotaPayAPIKey      string
	AppotaPaySecretKey   string // HS256 key of the JWT and HMAC key of response signatures
}

// SandboxCredentials are the well-known credentials of `bridge sandbox` and
// `bridge simulate`. They protect nothing.
func SandboxCredentials() Credentials {
	return Credentials{
		IAKUsername:          "081234567890",
		IAKAPIKey:            "sim-iak-api-key",
		AyopopKey:            "simAyopopKey",
		AyopopSecret:         "sim-ayopop-secret",
		AppotaPayPartnerCode: "SIMPARTNER",
		AppotaPayAPIKey:      "SIMAPIKEY",
		AppotaPaySecretKey:   "sim-appotapay-secret",
	}
}

// Server is the simulators' HTTP handler. It is safe for concurrent use.
type Server struct {
	creds         Credentials
	defaultScript []Outcome
	now           func() time.Time
	hangFor       time.Duration
	callbackURL   string
	mux           *http.ServeMux

	mu       sync.Mutex
	refs     map[refKey]*refState
	totals   map[string]int
	capacity map[string]*capacity // per provider, fixed at New
}

type refKey struct{ provider, reference string }

type refState struct {
	steps []Outcome   // nil: parse from the reference or use the default
	calls int         // authenticated calls that consumed a step
	times []time.Time // when each of those calls arrived
	asked int         // authenticated calls, refused ones included
}

// Option configures a Server.
type Option func(*Server)

// WithDefaultScript sets the script of references that carry none (default:
// pending once, then success).
func WithDefaultScript(steps ...Outcome) Option {
	return func(s *Server) { s.defaultScript = steps }
}

// WithClock sets the clock used for token expiry checks and timestamps.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithHangFor sets how long the Hang outcome waits before giving up on a
// client that never times out (default 2 minutes).
func WithHangFor(d time.Duration) Option { return func(s *Server) { s.hangFor = d } }

// New returns a Server accepting creds.
func New(creds Credentials, opts ...Option) *Server {
	s := &Server{
		creds:         creds,
		defaultScript: []Outcome{Pending, Success},
		now:           time.Now,
		hangFor:       2 * time.Minute,
		refs:          map[refKey]*refState{},
		totals:        map[string]int{},
		capacity:      map[string]*capacity{},
	}
	for _, p := range Names() {
		s.capacity[p] = &capacity{profile: Profile{RetryAfter: time.Second}}
	}
	for _, o := range opts {
		o(s)
	}
	m := http.NewServeMux()
	for _, sim := range simulators {
		sim.route(s, m)
	}
	m.HandleFunc("PUT /_sim/scripts/{provider}/{reference}", s.putScript)
	m.HandleFunc("GET /_sim/calls/{provider}/{reference}", s.getCalls)
	m.HandleFunc("GET /_sim/stats", s.getStats)
	m.HandleFunc("GET /_sim/stats/{provider}", s.getProviderStats)
	m.HandleFunc("PUT /_sim/profiles/{provider}", s.putProfile)
	m.HandleFunc("GET /_sim/profiles/{provider}", s.getProfile)
	m.HandleFunc("DELETE /_sim/scripts", s.reset)
	m.HandleFunc("POST /_sim/callbacks/ayopop/{reference}", s.postCallback)
	s.mux = m
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Script sets the outcomes of provider's reference; the last one repeats.
func (s *Server) Script(provider, reference string, steps ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(provider, reference)
	st.steps = append([]Outcome(nil), steps...)
	st.calls = 0
	st.times = nil
}

// Calls returns how many authenticated checks of reference the provider's
// simulator has answered.
func (s *Server) Calls(provider, reference string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.refs[refKey{provider, reference}]; ok {
		return st.calls
	}
	return 0
}

// CallTimes returns when each authenticated check of reference arrived.
func (s *Server) CallTimes(provider, reference string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.refs[refKey{provider, reference}]; ok {
		return append([]time.Time(nil), st.times...)
	}
	return nil
}

// TotalCalls returns the number of authenticated checks answered for provider.
func (s *Server) TotalCalls(provider string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totals[provider]
}

func (s *Server) state(provider, reference string) *refState {
	k := refKey{provider, reference}
	st, ok := s.refs[k]
	if !ok {
		st = &refState{}
		s.refs[k] = st
	}
	return st
}

// script is the reference's script: set by Script, else parsed from the
// reference, else the default. Call it with s.mu held.
func (s *Server) script(st *refState, reference string) []Outcome {
	if st.steps != nil {
		return st.steps
	}
	if parsed, err := ParseScript(reference); err == nil {
		return parsed
	}
	return s.defaultScript
}

// next consumes the next scripted outcome of an authenticated check that
// arrived at at.
func (s *Server) next(provider, reference string, at time.Time) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(provider, reference)
	steps := s.script(st, reference)
	i := min(st.calls, len(steps)-1)
	st.calls++
	st.times = append(st.times, at)
	s.totals[provider]++
	return steps[i]
}

// ParseScript reads a script from a reference such as
// "pending*3,success#order-7781".
func ParseScript(reference string) ([]Outcome, error) {
	script, _, _ := strings.Cut(reference, "#")
	if script == "" {
		return nil, fmt.Errorf("empty script")
	}
	var steps []Outcome
	for part := range strings.SplitSeq(script, ",") {
		name, count, repeated := strings.Cut(part, "*")
		n := 1
		if repeated {
			var err error
			n, err = strconv.Atoi(count)
			if err != nil || n < 1 || n > 1000 {
				return nil, fmt.Errorf("step %q: repeat count must be 1..1000", part)
			}
		}
		o := Outcome(name)
		if !o.valid() {
			return nil, fmt.Errorf("step %q: unknown outcome", part)
		}
		for range n {
			steps = append(steps, o)
		}
	}
	return steps, nil
}

func (o Outcome) valid() bool {
	for _, k := range Outcomes {
		if o == k {
			return true
		}
	}
	return false
}

// serveGeneric answers the outcomes that look the same for every provider
// and reports whether it did.
func (s *Server) serveGeneric(w http.ResponseWriter, r *http.Request, o Outcome) bool {
	switch o {
	case ServerError:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"message": "internal server error"})
	case Unavailable:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "service unavailable"})
	case RateLimited:
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "too many requests"})
	case Hang:
		select {
		case <-r.Context().Done():
		case <-time.After(s.hangFor):
		}
		writeJSON(w, http.StatusGatewayTimeout, map[string]any{"message": "gateway timeout"})
	case HTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Down for maintenance</h1></body></html>"))
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("\x00\x01garbage\xff{{"))
	case Truncated:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"data":{"status":1,"response_code":"0`))
	case Huge:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat(" ", 64<<10))
		_, _ = w.Write([]byte(`{"pad":"`))
		for range 64 {
			if _, err := w.Write(chunk); err != nil {
				return true
			}
		}
		_, _ = w.Write([]byte(`"}`))
	case Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // aborts the response without an answer
	default:
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fact derives a stable pseudo-random number from a reference, so the same
// reference always shows the same amounts and ids.
func fact(reference, salt string, lo, hi uint64) uint64 {
	h := sha256.Sum256([]byte(salt + "\x00" + reference))
	return lo + binary.BigEndian.Uint64(h[:8])%(hi-lo+1)
}

func (s *Server) putScript(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Steps []Outcome `json:"steps"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil || len(body.Steps) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": `body must be {"steps":[...]} with at least one step`})
		return
	}
	for _, o := range body.Steps {
		if !o.valid() {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unknown outcome " + strconv.Quote(string(o))})
			return
		}
	}
	s.Script(r.PathValue("provider"), r.PathValue("reference"), body.Steps...)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"calls": s.Calls(r.PathValue("provider"), r.PathValue("reference"))})
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	stats := map[string]int{}
	for _, p := range Names() {
		stats[p] = s.totals[p]
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, stats)
}

func (s *Server) reset(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.refs = map[refKey]*refState{}
	s.totals = map[string]int{}
	for _, c := range s.capacity {
		*c = capacity{profile: c.profile}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
