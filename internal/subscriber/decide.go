package subscriber

import (
	"errors"
	"time"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// action is what a delivery ends with.
type action uint8

const (
	// actPublish: publish the event, wait for its PubAck, then ack.
	actPublish action = iota + 1
	// actRetry: park the request until the next check (NakWithDelay).
	actRetry
)

// decision is decide's answer.
type decision struct {
	Action action
	Status string        // with actPublish
	Reason string        // with actPublish, for every status but success
	Delay  time.Duration // with actRetry
}

// timing is what decide needs to know besides the check's outcome.
type timing struct {
	Attempt       int       // checks made so far, this one included
	Now           time.Time // after the check
	RequestedAt   time.Time // the request's publish time (stream timestamp)
	Deadline      time.Time
	NotFoundGrace time.Duration
	Schedule      Schedule
	Rand          func() float64 // jitter source; nil for none
}

// decide turns one check's outcome into the delivery's end. It is pure.
//
//   - The provider's authenticated verdict is published as is.
//   - "Not found" is kept checking for NotFoundGrace after the request was
//     published (the provider may not know a fresh payment yet), then it is
//     a failed payment with reason not_found.
//   - A provider refusing the query for good makes the request rejected.
//   - Anything else (pending, transport, auth, signature, unreadable) is
//     checked again on the schedule, Retry-After honoured up to the
//     schedule's maximum, and the last check falls on the deadline. At or
//     after the deadline it is published as expired, with the reason the
//     last check gives.
func decide(res providers.Result, err error, t timing) decision {
	if err == nil {
		switch res.State {
		case providers.StateSuccess:
			return decision{Action: actPublish, Status: publisher.StatusSuccess}
		case providers.StateFailed:
			return decision{Action: actPublish, Status: publisher.StatusFailed, Reason: publisher.ReasonProviderFailed}
		case providers.StateNotFound:
			if !t.Now.Before(t.RequestedAt.Add(t.NotFoundGrace)) {
				return decision{Action: actPublish, Status: publisher.StatusFailed, Reason: publisher.ReasonNotFound}
			}
		}
	} else if providers.KindOf(err) == providers.BadRequest {
		return decision{Action: actPublish, Status: publisher.StatusRejected, Reason: publisher.ReasonInvalidRequest}
	}

	if !t.Now.Before(t.Deadline) {
		return decision{Action: actPublish, Status: publisher.StatusExpired, Reason: expiredReason(res, err)}
	}
	delay := t.Schedule.Delay(t.Attempt, t.Rand)
	var pe *providers.Error
	if errors.As(err, &pe) && pe.RetryAfter > delay {
		delay = min(pe.RetryAfter, t.Schedule.Max)
	}
	delay = min(delay, t.Deadline.Sub(t.Now))
	if err == nil && res.State == providers.StateNotFound {
		// Check again right when the grace ends, so "not found" becomes a
		// verdict without waiting out a long backoff step.
		delay = min(delay, t.RequestedAt.Add(t.NotFoundGrace).Sub(t.Now))
	}
	return decision{Action: actRetry, Delay: max(delay, time.Millisecond)}
}

// expiredReason names why the last check before the deadline was not a
// verdict.
func expiredReason(res providers.Result, err error) string {
	switch {
	case err == nil && res.State == providers.StateNotFound:
		return publisher.ReasonNotFound
	case errors.Is(err, providers.ErrAuth):
		return publisher.ReasonAuthRejected
	case errors.Is(err, providers.ErrSignature):
		return publisher.ReasonBadSignature
	}
	return publisher.ReasonDeadline
}
