package subscriber

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

func TestDecide(t *testing.T) {
	requested := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	base := timing{
		Attempt:       1,
		Now:           requested.Add(time.Second),
		RequestedAt:   requested,
		Deadline:      requested.Add(time.Hour),
		NotFoundGrace: 5 * time.Minute,
		Schedule:      Schedule{Initial: 2 * time.Second, Max: time.Minute, Multiplier: 2},
	}
	retryable := func(cause error) error { return providers.Errorf("iak", cause, "") }
	rateLimited := &providers.Error{Provider: "iak", Kind: providers.Retryable, Err: providers.ErrRateLimited, RetryAfter: 30 * time.Second}
	tooLongRetryAfter := &providers.Error{Provider: "iak", Kind: providers.Retryable, Err: providers.ErrRateLimited, RetryAfter: time.Hour}
	refused := &providers.Error{Provider: "iak", Kind: providers.BadRequest, Err: providers.ErrRejected}

	tests := []struct {
		name   string
		res    providers.Result
		err    error
		adjust func(*timing)
		want   decision
	}{
		{"success is published", providers.Result{State: providers.StateSuccess}, nil, nil,
			decision{Action: actPublish, Status: publisher.StatusSuccess}},
		{"failed is published", providers.Result{State: providers.StateFailed}, nil, nil,
			decision{Action: actPublish, Status: publisher.StatusFailed, Reason: publisher.ReasonProviderFailed}},
		{"success after the deadline is still success", providers.Result{State: providers.StateSuccess}, nil,
			func(t *timing) { t.Now = t.Deadline.Add(time.Minute) },
			decision{Action: actPublish, Status: publisher.StatusSuccess}},
		{"pending waits the first step", providers.Result{State: providers.StatePending}, nil, nil,
			decision{Action: actRetry, Delay: 2 * time.Second}},
		{"pending on the fourth check waits 16s", providers.Result{State: providers.StatePending}, nil,
			func(t *timing) { t.Attempt = 4 },
			decision{Action: actRetry, Delay: 16 * time.Second}},
		{"pending late waits the cap", providers.Result{State: providers.StatePending}, nil,
			func(t *timing) { t.Attempt = 30 },
			decision{Action: actRetry, Delay: time.Minute}},
		{"the last wait ends on the deadline", providers.Result{State: providers.StatePending}, nil,
			func(t *timing) { t.Attempt = 30; t.Now = t.Deadline.Add(-10 * time.Second) },
			decision{Action: actRetry, Delay: 10 * time.Second}},
		{"pending at the deadline expires", providers.Result{State: providers.StatePending}, nil,
			func(t *timing) { t.Now = t.Deadline },
			decision{Action: actPublish, Status: publisher.StatusExpired, Reason: publisher.ReasonDeadline}},
		{"transport error retries", providers.Result{}, retryable(providers.ErrTransport), nil,
			decision{Action: actRetry, Delay: 2 * time.Second}},
		{"unclassified error retries", providers.Result{}, errors.New("surprise"), nil,
			decision{Action: actRetry, Delay: 2 * time.Second}},
		{"Retry-After beyond the step is honoured", providers.Result{}, rateLimited, nil,
			decision{Action: actRetry, Delay: 30 * time.Second}},
		{"Retry-After is capped at the schedule's maximum", providers.Result{}, tooLongRetryAfter, nil,
			decision{Action: actRetry, Delay: time.Minute}},
		{"auth error at the deadline expires as auth_rejected", providers.Result{}, retryable(providers.ErrAuth),
			func(t *timing) { t.Now = t.Deadline.Add(time.Second) },
			decision{Action: actPublish, Status: publisher.StatusExpired, Reason: publisher.ReasonAuthRejected}},
		{"bad signature at the deadline expires as bad_signature", providers.Result{}, retryable(providers.ErrSignature),
			func(t *timing) { t.Now = t.Deadline },
			decision{Action: actPublish, Status: publisher.StatusExpired, Reason: publisher.ReasonBadSignature}},
		{"bad signature is never a verdict before the deadline", providers.Result{State: providers.StateSuccess}, retryable(providers.ErrSignature), nil,
			decision{Action: actRetry, Delay: 2 * time.Second}},
		{"not found within the grace retries", providers.Result{State: providers.StateNotFound}, nil, nil,
			decision{Action: actRetry, Delay: 2 * time.Second}},
		{"not found retries no later than the grace's end", providers.Result{State: providers.StateNotFound}, nil,
			func(t *timing) { t.Attempt = 10; t.Now = t.RequestedAt.Add(5*time.Minute - 3*time.Second) },
			decision{Action: actRetry, Delay: 3 * time.Second}},
		{"not found after the grace fails", providers.Result{State: providers.StateNotFound}, nil,
			func(t *timing) { t.Now = t.RequestedAt.Add(5 * time.Minute) },
			decision{Action: actPublish, Status: publisher.StatusFailed, Reason: publisher.ReasonNotFound}},
		{"not found at a deadline within the grace expires", providers.Result{State: providers.StateNotFound}, nil,
			func(t *timing) { t.Deadline = t.RequestedAt.Add(time.Minute); t.Now = t.Deadline },
			decision{Action: actPublish, Status: publisher.StatusExpired, Reason: publisher.ReasonNotFound}},
		{"a refused query is rejected at once", providers.Result{}, refused, nil,
			decision{Action: actPublish, Status: publisher.StatusRejected, Reason: publisher.ReasonInvalidRequest}},
		{"the delay is never zero", providers.Result{State: providers.StatePending}, nil,
			func(t *timing) { t.Now = t.Deadline.Add(-time.Nanosecond) },
			decision{Action: actRetry, Delay: time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := base
			if tc.adjust != nil {
				tc.adjust(&tm)
			}
			got := decide(tc.res, tc.err, tm)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}
