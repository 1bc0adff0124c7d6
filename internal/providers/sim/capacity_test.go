package sim

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var capacityBase = time.Date(2026, 11, 22, 3, 4, 12, 0, time.UTC)

// fakeClock is a server clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// at sets the clock to capacityBase + d.
func (c *fakeClock) at(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = capacityBase.Add(d)
}

func clockedServer(t *testing.T) (*Server, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: capacityBase}
	return New(SandboxCredentials(), WithClock(clock.now)), clock
}

// iakRequest is an authenticated IAK checkstatus of ref.
func iakRequest(ctx context.Context, ref string) *http.Request {
	c := SandboxCredentials()
	sum := md5.Sum([]byte(c.IAKUsername + c.IAKAPIKey + "cs"))
	body, _ := json.Marshal(map[string]string{
		"commands": "checkstatus", "username": c.IAKUsername, "ref_id": ref, "sign": hex.EncodeToString(sum[:]),
	})
	return httptest.NewRequestWithContext(ctx, http.MethodPost, "/iak/api/v1/bill/check", bytes.NewReader(body))
}

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return rec
}

// iakCheck calls IAK about ref and returns the HTTP status and the
// response_code of an answer (empty for other bodies).
func iakCheck(t *testing.T, s *Server, ref string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	rec := serve(s, iakRequest(context.Background(), ref))
	var body struct {
		Data struct {
			ResponseCode string `json:"response_code"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer is not JSON: %q", rec.Body)
	}
	return rec, body.Data.ResponseCode
}

func TestRateLimitAdmitsExactlyTheLimit(t *testing.T) {
	tests := []struct {
		limit      int
		retryAfter time.Duration
		header     string
	}{
		{1, 0, "1"},
		{3, 1500 * time.Millisecond, "2"},
		{10, 7 * time.Second, "7"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.limit), func(t *testing.T) {
			s, clock := clockedServer(t)
			if err := s.SetProfile(IAK, Profile{RateLimit: tc.limit, RetryAfter: tc.retryAfter}); err != nil {
				t.Fatal(err)
			}
			const ref = "rl"
			// limit pending steps, then success: the first call admitted
			// after the refusals shows whether they consumed steps.
			steps := append(make([]Outcome, 0, tc.limit+1), Success)
			for range tc.limit {
				steps = append([]Outcome{Pending}, steps...)
			}
			s.Script(IAK, ref, steps...)

			burst := func(n int) (answered, refused int) {
				for range n {
					rec, _ := iakCheck(t, s, ref)
					switch rec.Code {
					case http.StatusOK:
						answered++
					case http.StatusTooManyRequests:
						refused++
						if got := rec.Header().Get("Retry-After"); got != tc.header {
							t.Errorf("Retry-After %q, want %q", got, tc.header)
						}
						if !strings.Contains(rec.Body.String(), `"message"`) {
							t.Errorf("429 body %q", rec.Body)
						}
					default:
						t.Fatalf("HTTP %d", rec.Code)
					}
				}
				return answered, refused
			}
			if a, r := burst(2 * tc.limit); a != tc.limit || r != tc.limit {
				t.Errorf("burst of %d: %d answered, %d refused; want %d each", 2*tc.limit, a, r, tc.limit)
			}
			clock.at(999 * time.Millisecond) // still the same second
			if a, _ := burst(1); a != 0 {
				t.Error("a call 999 ms after a full second was admitted")
			}
			if got := s.Calls(IAK, ref); got != tc.limit {
				t.Errorf("%d script steps used, want %d: refusals must not advance the script", got, tc.limit)
			}
			clock.at(time.Second) // the first burst left the window
			if _, rc := iakCheck(t, s, ref); rc != "00" {
				t.Errorf("first call of the next second answered %q, want the success step 00", rc)
			}
			if a, r := burst(tc.limit); a != tc.limit-1 || r != 1 {
				t.Errorf("next second: %d answered, %d refused, want %d and 1", a, r, tc.limit-1)
			}
			want := ProviderStats{
				Calls: 3*tc.limit + 2, Answered: 2 * tc.limit, Refused: tc.limit + 2,
				MaxCallsPerSecond: 2*tc.limit + 1, References: 1, MaxCallsPerReference: 3*tc.limit + 2,
			}
			if got := s.Stats(IAK); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		header     string
	}{
		{"without Retry-After", 0, ""},
		{"with Retry-After", 30 * time.Second, "30"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := clockedServer(t)
			err := s.SetProfile(IAK, Profile{
				RateLimit:        1, // outage calls must not use the budget either
				OutageStart:      capacityBase.Add(10 * time.Second),
				OutageEnd:        capacityBase.Add(70 * time.Second),
				OutageRetryAfter: tc.retryAfter,
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Script(IAK, "o", Pending, Success)
			for _, step := range []struct {
				at     time.Duration
				status int
				rc     string
			}{
				{0, 200, "39"},
				{10 * time.Second, 503, ""},
				{69*time.Second + 999*time.Millisecond, 503, ""},
				{70 * time.Second, 200, "00"}, // recovered, at the script's next step
			} {
				clock.at(step.at)
				rec, rc := iakCheck(t, s, "o")
				if rec.Code != step.status || rc != step.rc {
					t.Errorf("at %s: HTTP %d %q, want %d %q", step.at, rec.Code, rc, step.status, step.rc)
				}
				if rec.Code == 503 && rec.Header().Get("Retry-After") != tc.header {
					t.Errorf("at %s: Retry-After %q, want %q", step.at, rec.Header().Get("Retry-After"), tc.header)
				}
			}
			want := ProviderStats{Calls: 4, Answered: 2, DuringOutage: 2, MaxCallsPerSecond: 2, References: 1, MaxCallsPerReference: 4}
			if got := s.Stats(IAK); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
		})
	}
}

// TestEveryProviderPassesTheGate shows each status route wired to the
// capacity gate, after authentication.
func TestEveryProviderPassesTheGate(t *testing.T) {
	creds := SandboxCredentials()
	creds.AyopopKey, creds.AyopopSecret = ayopopCreds().AyopopKey, ayopopCreds().AyopopSecret
	s := New(creds, WithDefaultScript(Success))
	calls := map[string]func() *http.Request{
		IAK: func() *http.Request { return iakRequest(context.Background(), "gate") },
		Ayopop: func() *http.Request {
			c := validAyopopCall(t, "gate")
			r := httptest.NewRequest(http.MethodPost, "/ayopop/api/v2/bill/status", strings.NewReader(c.body))
			r.Header.Set("VERSION", c.version)
			r.Header.Set("KEY", c.key)
			r.Header.Set("TOKEN", c.token)
			return r
		},
		AppotaPay: func() *http.Request {
			now := time.Now()
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"iss":     creds.AppotaPayPartnerCode,
				"jti":     creds.AppotaPayAPIKey + "-" + strconv.FormatInt(now.Unix(), 10),
				"api_key": creds.AppotaPayAPIKey,
				"exp":     now.Add(5 * time.Minute).Unix(),
			})
			tok.Header["cty"] = "appotapay-api;v=1"
			signed, err := tok.SignedString([]byte(creds.AppotaPaySecretKey))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, appotaPayStatusPath+"gate", nil)
			r.Header.Set("X-APPOTAPAY-AUTH", "Bearer "+signed)
			return r
		},
	}
	for provider, call := range calls {
		t.Run(provider, func(t *testing.T) {
			if err := s.SetProfile(provider, Profile{OutageEnd: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if rec := serve(s, call()); rec.Code != http.StatusServiceUnavailable {
				t.Errorf("during the outage: HTTP %d %s", rec.Code, rec.Body)
			}
			if err := s.SetProfile(provider, Profile{}); err != nil {
				t.Fatal(err)
			}
			if rec := serve(s, call()); rec.Code != http.StatusOK {
				t.Errorf("after the outage: HTTP %d %s", rec.Code, rec.Body)
			}
			if st := s.Stats(provider); st.Calls != 2 || st.DuringOutage != 1 || st.Answered != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	p := Profile{Latency: 30 * time.Millisecond, Jitter: 10 * time.Millisecond}
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := p.delay()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 20*time.Millisecond || hi > 40*time.Millisecond || lo > 25*time.Millisecond || hi < 35*time.Millisecond {
		t.Errorf("1000 delays of 30ms±10ms span %s..%s", lo, hi)
	}

	s := New(SandboxCredentials(), WithDefaultScript(Success))
	if err := s.SetProfile(IAK, p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if rec, _ := iakCheck(t, s, "slow"); rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d", rec.Code)
	}
	if elapsed := time.Since(start); elapsed < 20*time.Millisecond {
		t.Errorf("answered in %s, want at least 20ms", elapsed)
	}
}

// TestLatencyEndsWithTheClient shows a call waiting out its latency
// holding no lock, and returning, without a script step, once its client
// gives up.
func TestLatencyEndsWithTheClient(t *testing.T) {
	arrived := make(chan struct{}, 1)
	clock := func() time.Time {
		select {
		case arrived <- struct{}{}:
		default:
		}
		return capacityBase
	}
	s := New(SandboxCredentials(), WithClock(clock))
	if err := s.SetProfile(IAK, Profile{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve(s, iakRequest(ctx, "gone")) }()
	<-arrived

	stats := make(chan ProviderStats)
	go func() { stats <- s.Stats(IAK) }()
	select {
	case st := <-stats:
		if st.Calls != 1 {
			t.Errorf("stats during the latency %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the admin API waited for a call sleeping out its latency")
	}

	cancel()
	select {
	case rec := <-done:
		if rec.Body.Len() != 0 {
			t.Errorf("a gone client was answered %q", rec.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call still sleeps after its client gave up")
	}
	if st := s.Stats(IAK); st.Abandoned != 1 || st.Answered != 0 || s.Calls(IAK, "gone") != 0 {
		t.Errorf("stats %+v, %d script steps; want 1 abandoned, no step", st, s.Calls(IAK, "gone"))
	}
}

func TestMaxCallsPerSecond(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, n := range v {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	// A pseudo-random walk, checked against counting every window.
	rng := rand.New(rand.NewPCG(1, 2))
	var walk []time.Duration
	for t := time.Duration(0); len(walk) < 500; t += time.Duration(rng.IntN(40)) * time.Millisecond {
		walk = append(walk, t)
	}
	brute := 0
	for i, end := range walk {
		n := 0
		for _, t := range walk[:i+1] {
			if t > end-time.Second {
				n++
			}
		}
		brute = max(brute, n)
	}

	tests := []struct {
		name  string
		limit int
		calls []time.Duration
		want  int
	}{
		{"none", 0, nil, 0},
		{"one", 0, ms(0), 1},
		{"burst", 0, ms(0, 0, 0, 0, 0), 5},
		{"a second apart", 0, ms(0, 1000, 2000, 3000), 1},
		{"just inside", 0, ms(0, 999), 2},
		{"edges", 0, ms(0, 100, 900, 999, 1000, 1500, 1999, 2000), 4},
		{"refused calls count", 1, ms(0, 0, 0, 500), 4},
		{"random walk", 0, walk, brute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := clockedServer(t)
			if err := s.SetProfile(IAK, Profile{RateLimit: tc.limit}); err != nil {
				t.Fatal(err)
			}
			for i, at := range tc.calls {
				clock.at(at)
				iakCheck(t, s, "success#"+strconv.Itoa(i%7))
			}
			if got := s.Stats(IAK).MaxCallsPerSecond; got != tc.want {
				t.Errorf("max_calls_per_second %d, want %d", got, tc.want)
			}
		})
	}
}

func TestReferenceStats(t *testing.T) {
	s, _ := clockedServer(t)
	if err := s.SetProfile(IAK, Profile{RateLimit: 2}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"a", "b", "a", "c", "a", "b"} {
		iakCheck(t, s, "success#"+ref)
	}
	st := s.Stats(IAK)
	if st.References != 3 || st.MaxCallsPerReference != 3 || st.Refused != 4 {
		t.Errorf("stats %+v, want 3 references, at most 3 calls each, 4 refused", st)
	}
}

func TestProfileAdminAPI(t *testing.T) {
	s, _ := clockedServer(t)
	do := func(method, path, body string) *httptest.ResponseRecorder {
		return serve(s, httptest.NewRequest(method, path, strings.NewReader(body)))
	}
	good := `{"latency":"250ms","jitter":"50ms","rate_limit":50,"retry_after":"2s","outage_after":"10s","outage_for":"60s","outage_retry_after":"5s"}`
	goodGET := `{"latency":"250ms","jitter":"50ms","rate_limit":50,"retry_after":"2s",` +
		`"outage_from":"2026-11-22T03:04:22Z","outage_until":"2026-11-22T03:05:22Z","outage_retry_after":"5s"}`

	tests := []struct {
		name, path, body string
		status           int
		get              string // the GET answer afterwards
	}{
		{"relative outage", "/_sim/profiles/iak", good, 204, goodGET},
		{"unknown member", "/_sim/profiles/iak", `{"latncy":"1s"}`, 400, goodGET},
		{"bad duration", "/_sim/profiles/iak", `{"latency":"fast"}`, 400, goodGET},
		{"negative latency", "/_sim/profiles/iak", `{"latency":"-1s"}`, 400, goodGET},
		{"jitter over latency", "/_sim/profiles/iak", `{"latency":"10ms","jitter":"20ms"}`, 400, goodGET},
		{"negative rate limit", "/_sim/profiles/iak", `{"rate_limit":-1}`, 400, goodGET},
		{"rate limit as text", "/_sim/profiles/iak", `{"rate_limit":"50"}`, 400, goodGET},
		{"fractional rate limit", "/_sim/profiles/iak", `{"rate_limit":1.5}`, 400, goodGET},
		{"outage without end", "/_sim/profiles/iak", `{"outage_after":"10s"}`, 400, goodGET},
		{"two ends", "/_sim/profiles/iak", `{"outage_for":"1m","outage_until":"2026-11-22T04:00:00Z"}`, 400, goodGET},
		{"two starts", "/_sim/profiles/iak", `{"outage_after":"1s","outage_from":"2026-11-22T04:00:00Z","outage_for":"1m"}`, 400, goodGET},
		{"ends before it starts", "/_sim/profiles/iak", `{"outage_from":"2026-11-22T04:00:00Z","outage_until":"2026-11-22T03:00:00Z"}`, 400, goodGET},
		{"negative outage", "/_sim/profiles/iak", `{"outage_for":"-1m"}`, 400, goodGET},
		{"bad time", "/_sim/profiles/iak", `{"outage_until":"tomorrow"}`, 400, goodGET},
		{"two objects", "/_sim/profiles/iak", `{} {}`, 400, goodGET},
		{"not JSON", "/_sim/profiles/iak", `latency=1s`, 400, goodGET},
		{"unknown provider", "/_sim/profiles/paypal", `{}`, 404, goodGET},
		{"absolute outage", "/_sim/profiles/iak", `{"outage_until":"2026-11-22T04:00:00Z"}`, 204,
			`{"latency":"0s","jitter":"0s","rate_limit":0,"retry_after":"1s",` +
				`"outage_from":"2026-11-22T03:04:12Z","outage_until":"2026-11-22T04:00:00Z","outage_retry_after":"0s"}`},
		{"empty resets", "/_sim/profiles/iak", `{}`, 204,
			`{"latency":"0s","jitter":"0s","rate_limit":0,"retry_after":"1s","outage_retry_after":"0s"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(http.MethodPut, tc.path, tc.body)
			if rec.Code != tc.status {
				t.Errorf("PUT: HTTP %d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("refusal without an error: %s", rec.Body)
			}
			if got := strings.TrimSpace(do(http.MethodGet, "/_sim/profiles/iak", "").Body.String()); got != tc.get {
				t.Errorf("GET:\n %s\nwant\n %s", got, tc.get)
			}
		})
	}

	t.Run("a profile read back is accepted", func(t *testing.T) {
		do(http.MethodPut, "/_sim/profiles/ayopop", good)
		back := do(http.MethodGet, "/_sim/profiles/ayopop", "").Body.String()
		if rec := do(http.MethodPut, "/_sim/profiles/ayopop", back); rec.Code != 204 {
			t.Fatalf("PUT of %s: HTTP %d %s", back, rec.Code, rec.Body)
		}
		if again := do(http.MethodGet, "/_sim/profiles/ayopop", "").Body.String(); again != back {
			t.Errorf("read back %s, then %s", back, again)
		}
	})
	for _, path := range []string{"/_sim/profiles/paypal", "/_sim/stats/paypal"} {
		if rec := do(http.MethodGet, path, ""); rec.Code != 404 {
			t.Errorf("GET %s: HTTP %d", path, rec.Code)
		}
	}
}

func TestStatsAdminAPI(t *testing.T) {
	s, _ := clockedServer(t)
	if err := s.SetProfile(IAK, Profile{RateLimit: 1}); err != nil {
		t.Fatal(err)
	}
	iakCheck(t, s, "success#1")
	iakCheck(t, s, "success#1")

	var got map[string]any
	if err := json.Unmarshal(serve(s, httptest.NewRequest(http.MethodGet, "/_sim/stats/iak", nil)).Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"calls": 2.0, "answered": 1.0, "refused": 1.0, "during_outage": 0.0, "abandoned": 0.0,
		"max_calls_per_second": 2.0, "references": 1.0, "max_calls_per_reference": 2.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /_sim/stats/iak %v, want %v", got, want)
	}
	if body := serve(s, httptest.NewRequest(http.MethodGet, "/_sim/stats", nil)).Body.String(); strings.TrimSpace(body) != `{"appotapay":0,"ayopop":0,"iak":1}` {
		t.Errorf("GET /_sim/stats changed: %s", body)
	}

	serve(s, httptest.NewRequest(http.MethodDelete, "/_sim/scripts", nil))
	if st := s.Stats(IAK); st != (ProviderStats{}) {
		t.Errorf("stats after DELETE /_sim/scripts: %+v", st)
	}
	if s.Profile(IAK).RateLimit != 1 {
		t.Error("DELETE /_sim/scripts forgot the profile")
	}
}

func TestWithProfiles(t *testing.T) {
	s := New(SandboxCredentials(), WithProfiles(map[string]Profile{Ayopop: {Latency: time.Second}}))
	if got := s.Profile(Ayopop); got != (Profile{Latency: time.Second, RetryAfter: time.Second}) {
		t.Errorf("profile %+v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown provider did not panic")
		}
	}()
	New(SandboxCredentials(), WithProfiles(map[string]Profile{"paypal": {}}))
}
