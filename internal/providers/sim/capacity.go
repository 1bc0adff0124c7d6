package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Profile is the capacity of one provider's simulator, what real
// aggregators show: slow answers, a rate limit, outages. The zero Profile
// answers at once and never refuses.
//
// The profile applies to status calls that authenticated and name a
// reference, the calls a script counts. A refusal (429 or an outage's 503)
// comes back at once, as a provider's gateway sends it, and consumes no
// script step; the latency delays the calls admitted past both.
type Profile struct {
	// Latency delays every admitted answer; Jitter, at most Latency, adds
	// a uniform offset in [-Jitter, +Jitter]. The delay is real time
	// whatever the server's clock, and ends early when the client gives up.
	Latency, Jitter time.Duration

	// RateLimit is the most calls admitted in any sliding second (0: no
	// limit). Others are answered HTTP 429 with Retry-After: RetryAfter
	// in whole seconds, rounded up (0: 1s).
	RateLimit  int
	RetryAfter time.Duration

	// Every status call from OutageStart (zero: any time before) until
	// OutageEnd (zero: no outage) is answered HTTP 503, with Retry-After
	// when OutageRetryAfter is positive.
	OutageStart, OutageEnd time.Time
	OutageRetryAfter       time.Duration
}

func (p Profile) validate() error {
	switch {
	case p.Latency < 0 || p.Jitter < 0 || p.RetryAfter < 0 || p.OutageRetryAfter < 0:
		return errors.New("durations must not be negative")
	case p.Jitter > p.Latency:
		return fmt.Errorf("jitter %s exceeds latency %s", p.Jitter, p.Latency)
	case p.RateLimit < 0:
		return errors.New("rate limit must not be negative")
	case !p.OutageStart.IsZero() && p.OutageEnd.IsZero():
		return errors.New("an outage needs an end")
	case p.OutageEnd.Before(p.OutageStart):
		return errors.New("the outage ends before it starts")
	}
	return nil
}

// delay draws the latency of one answer.
func (p Profile) delay() time.Duration {
	if p.Jitter <= 0 {
		return p.Latency
	}
	return p.Latency - p.Jitter + rand.N(2*p.Jitter+1)
}

func (p Profile) inOutage(t time.Time) bool {
	return !p.OutageEnd.IsZero() && !t.Before(p.OutageStart) && t.Before(p.OutageEnd)
}

// ProviderStats count one provider's status calls since the server started
// or DELETE /_sim/scripts. Calls = Answered + Refused + DuringOutage +
// Abandoned + the calls still waiting out their latency.
type ProviderStats struct {
	Calls        int `json:"calls"`         // authenticated status calls
	Answered     int `json:"answered"`      // calls that consumed a script step (TotalCalls)
	Refused      int `json:"refused"`       // HTTP 429 for the rate limit
	DuringOutage int `json:"during_outage"` // HTTP 503 for an outage
	Abandoned    int `json:"abandoned"`     // the client gave up during the latency
	// MaxCallsPerSecond is the most calls, refused ones included, in any
	// sliding second: what the provider saw, not what it admitted.
	MaxCallsPerSecond int `json:"max_calls_per_second"`
	// References is how many distinct references were asked about, and
	// MaxCallsPerReference the most calls, refused ones included, about one.
	References           int `json:"references"`
	MaxCallsPerReference int `json:"max_calls_per_reference"`
}

// capacity is one provider's profile and the record of its calls.
type capacity struct {
	profile  Profile
	stats    ProviderStats // Answered is read from Server.totals
	admitted window        // calls admitted in the last second: the rate limit
	recent   window        // all calls in the last second: MaxCallsPerSecond
}

// window holds the times of the calls of the last second, oldest first.
type window []time.Time

// trim drops the times outside the second (t-1s, t].
func (w *window) trim(t time.Time) {
	i := 0
	for i < len(*w) && !(*w)[i].After(t.Add(-time.Second)) {
		i++
	}
	// Appends reallocate once the front is cut off often enough, so the
	// backing array stays proportional to one second of calls.
	*w = (*w)[i:]
}

// SetProfile sets provider's capacity from now on. It fails for an unknown
// provider or an invalid profile.
func (s *Server) SetProfile(provider string, p Profile) error {
	if err := p.validate(); err != nil {
		return err
	}
	if p.RetryAfter == 0 {
		p.RetryAfter = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.capacity[provider]
	if !ok {
		return fmt.Errorf("unknown provider %q", provider)
	}
	c.profile = p
	return nil
}

// Profile returns provider's capacity profile.
func (s *Server) Profile(provider string) Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.capacity[provider]; ok {
		return c.profile
	}
	return Profile{}
}

// Stats returns provider's call counts.
func (s *Server) Stats(provider string) ProviderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.capacity[provider]
	if !ok {
		return ProviderStats{}
	}
	st := c.stats
	st.Answered = s.totals[provider]
	return st
}

// WithProfiles sets the profiles of the providers named. New panics on an
// invalid one; CapacityFlags.Profiles returns only valid ones, and
// SetProfile returns the error instead.
func WithProfiles(profiles map[string]Profile) Option {
	return func(s *Server) {
		for provider, p := range profiles {
			if err := s.SetProfile(provider, p); err != nil {
				panic(fmt.Sprintf("sim.WithProfiles: %s: %v", provider, err))
			}
		}
	}
}

// admit passes an authenticated status call about reference through
// provider's capacity and returns its scripted outcome. When it returns
// false the call got its answer already (a refusal) or its client is gone.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, provider, reference string) (Outcome, bool) {
	s.mu.Lock()
	at := s.now()
	c := s.capacity[provider]
	p := c.profile
	c.stats.Calls++
	c.recent.trim(at)
	c.recent = append(c.recent, at)
	c.stats.MaxCallsPerSecond = max(c.stats.MaxCallsPerSecond, len(c.recent))
	st := s.state(provider, reference)
	st.asked++
	if st.asked == 1 {
		c.stats.References++
	}
	c.stats.MaxCallsPerReference = max(c.stats.MaxCallsPerReference, st.asked)
	outage := p.inOutage(at)
	c.admitted.trim(at)
	limited := !outage && p.RateLimit > 0 && len(c.admitted) >= p.RateLimit
	switch {
	case outage:
		c.stats.DuringOutage++
	case limited:
		c.stats.Refused++
	default:
		c.admitted = append(c.admitted, at)
	}
	s.mu.Unlock()

	switch {
	case outage:
		if p.OutageRetryAfter > 0 {
			w.Header().Set("Retry-After", seconds(p.OutageRetryAfter))
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "service unavailable"})
		return "", false
	case limited:
		w.Header().Set("Retry-After", seconds(p.RetryAfter))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "too many requests"})
		return "", false
	}
	// Sleep without the lock, so that other calls and the admin API go on.
	if !sleep(r.Context(), p.delay()) {
		s.mu.Lock()
		c.stats.Abandoned++
		s.mu.Unlock()
		return "", false
	}
	return s.next(provider, reference, at), true
}

// sleep waits d and reports whether ctx was still live at the end.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// seconds formats d as a Retry-After value: whole seconds, rounded up.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// profileJSON is a Profile on the admin API. A PUT places the outage
// either absolutely (outage_from, outage_until) or from now (outage_after,
// outage_for), or mixes them; a GET answers the absolute form.
type profileJSON struct {
	Latency          string     `json:"latency"`
	Jitter           string     `json:"jitter"`
	RateLimit        int        `json:"rate_limit"`
	RetryAfter       string     `json:"retry_after"`
	OutageAfter      string     `json:"outage_after,omitempty"`
	OutageFor        string     `json:"outage_for,omitempty"`
	OutageFrom       *time.Time `json:"outage_from,omitempty"`
	OutageUntil      *time.Time `json:"outage_until,omitempty"`
	OutageRetryAfter string     `json:"outage_retry_after"`
}

// profile reads j, placing relative outage times from now.
func (j profileJSON) profile(now time.Time) (Profile, error) {
	var p Profile
	var after, length time.Duration
	for _, d := range []struct {
		name string
		text string
		into *time.Duration
	}{
		{"latency", j.Latency, &p.Latency},
		{"jitter", j.Jitter, &p.Jitter},
		{"retry_after", j.RetryAfter, &p.RetryAfter},
		{"outage_retry_after", j.OutageRetryAfter, &p.OutageRetryAfter},
		{"outage_after", j.OutageAfter, &after},
		{"outage_for", j.OutageFor, &length},
	} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return Profile{}, fmt.Errorf("%s: %w", d.name, err)
		}
		*d.into = v
	}
	p.RateLimit = j.RateLimit
	switch {
	case j.OutageAfter != "" && j.OutageFrom != nil:
		return Profile{}, errors.New("give outage_after or outage_from, not both")
	case j.OutageFor != "" && j.OutageUntil != nil:
		return Profile{}, errors.New("give outage_for or outage_until, not both")
	case (j.OutageAfter != "" || j.OutageFrom != nil) && j.OutageFor == "" && j.OutageUntil == nil:
		return Profile{}, errors.New("an outage needs outage_for or outage_until")
	case after < 0 || length < 0:
		return Profile{}, errors.New("durations must not be negative")
	}
	if j.OutageFor != "" || j.OutageUntil != nil {
		p.OutageStart = now.Add(after)
		if j.OutageFrom != nil {
			p.OutageStart = *j.OutageFrom
		}
		p.OutageEnd = p.OutageStart.Add(length)
		if j.OutageUntil != nil {
			p.OutageEnd = *j.OutageUntil
		}
	}
	return p, nil
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if !slices.Contains(Names(), provider) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown provider " + strconv.Quote(provider)})
		return
	}
	var j profileJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(&j)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("one JSON object expected")
	}
	var p Profile
	if err == nil {
		p, err = j.profile(s.now())
	}
	if err == nil {
		err = s.SetProfile(provider, p)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if !slices.Contains(Names(), provider) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown provider " + strconv.Quote(provider)})
		return
	}
	p := s.Profile(provider)
	j := profileJSON{
		Latency:          p.Latency.String(),
		Jitter:           p.Jitter.String(),
		RateLimit:        p.RateLimit,
		RetryAfter:       p.RetryAfter.String(),
		OutageRetryAfter: p.OutageRetryAfter.String(),
	}
	if !p.OutageEnd.IsZero() {
		j.OutageFrom, j.OutageUntil = &p.OutageStart, &p.OutageEnd
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) getProviderStats(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if !slices.Contains(Names(), provider) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown provider " + strconv.Quote(provider)})
		return
	}
	writeJSON(w, http.StatusOK, s.Stats(provider))
}
