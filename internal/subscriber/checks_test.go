package subscriber

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/providers"
)

func TestRefusalsAreNotAnswers(t *testing.T) {
	for _, tc := range []struct {
		cause    error
		refused  bool
		breaker  capacity.Outcome
		scenario string
	}{
		{providers.ErrRateLimited, true, capacity.Refused, "429"},
		{providers.ErrUnavailable, true, capacity.Failed, "5xx or 408"},
		{providers.ErrTransport, true, capacity.Failed, "timeout or connection error"},
		{providers.ErrAuth, false, capacity.Answered, "credentials refused: the provider is up"},
		{providers.ErrSignature, false, capacity.Answered, "bad signature"},
		{providers.ErrBadResponse, false, capacity.Answered, "HTML or garbage"},
		{providers.ErrUnknownCode, false, capacity.Answered, "unknown code"},
		{providers.ErrHTTPStatus, false, capacity.Answered, "another HTTP status"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			err := fmt.Errorf("iak: %w", &providers.Error{Provider: "iak", Err: tc.cause})
			if got := refused(err); got != tc.refused {
				t.Errorf("refused = %v, want %v", got, tc.refused)
			}
			if got := gateOutcome(err); got != tc.breaker {
				t.Errorf("gate outcome = %v, want %v", got, tc.breaker)
			}
		})
	}
	if refused(nil) || gateOutcome(nil) != capacity.Answered {
		t.Error("an answer is neither refused nor a failure")
	}
}

func TestFlightsShareOnlyAFreshAnswerNewerThanTheRequestsLastCheck(t *testing.T) {
	fs := flights{m: map[string]*flight{}}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	never := time.Unix(0, 0)

	lead, leader := fs.join("k", now, never, time.Second)
	if !leader {
		t.Fatal("the first check of a reference must lead")
	}
	if f, leader := fs.join("k", now, never, time.Second); leader || f != lead {
		t.Fatal("a second check while the first is under way must join it")
	}
	answer := checkOutcome{res: providers.Result{State: providers.StatePending}, answered: true, at: now}
	if waiters := fs.finish("k", lead, answer); waiters != 1 {
		t.Errorf("%d waiters, want 1", waiters)
	}

	for _, tc := range []struct {
		name      string
		at        time.Time
		lastCheck time.Time
		shares    bool
	}{
		{"fresh, newer than the request's last check", now.Add(500 * time.Millisecond), never, true},
		{"too old", now.Add(time.Second), never, false},
		{"not newer than the request's own last check", now.Add(100 * time.Millisecond), now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flights{m: map[string]*flight{"k": lead}}
			f, leader := fs.join("k", tc.at, tc.lastCheck, time.Second)
			if shares := !leader && f == lead; shares != tc.shares {
				t.Errorf("shares the answer: %v, want %v", shares, tc.shares)
			}
		})
	}

	refusal := checkOutcome{err: &providers.Error{Err: providers.ErrRateLimited}}
	f, _ := fs.join("r", now, never, time.Second)
	fs.finish("r", f, refusal)
	if _, leader := fs.join("r", now, never, time.Second); !leader {
		t.Error("a refusal was kept for later requests; only answers are")
	}
}

func TestSharedAnswersKeepTheProvidersWords(t *testing.T) {
	want := providers.Result{
		State: providers.StateSuccess, Status: "1", Code: "00", Message: "PAYMENT SUCCESS",
		TransactionID: "9732795", Amount: json.Number("137110"), Currency: "IDR",
		Details: json.RawMessage(`{"admin":7500,"tr_name":"JAORAH"}`),
	}
	got, ok := storeResult(want).result()
	if !ok {
		t.Fatal("a stored success does not read back")
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if _, ok := (&storedResult{State: "maybe"}).result(); ok {
		t.Error("a stored state the bridge does not know was read as an answer")
	}
}

func TestKeysHideWhatRequestersChose(t *testing.T) {
	for _, k := range []string{checkKey("iak", "ord:7781/../x"), refKey("iak", "a b.c>*")} {
		for _, c := range k {
			if !(c == '.' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				t.Errorf("key %q has %q: requesters' text must not shape keys", k, c)
			}
		}
	}
	if checkKey("iak", "r1") == checkKey("ayopop", "r1") {
		t.Error("the same request id at two providers shares one checks entry")
	}
}
