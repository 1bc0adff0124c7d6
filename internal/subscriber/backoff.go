package subscriber

import (
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Schedule is the exponential wait between checks of one provider.
type Schedule struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of itself (0 to 1),
	// so requests published together do not check together forever.
	Jitter float64
}

// Validate reports every problem with s.
func (s Schedule) Validate() error {
	var errs []error
	if s.Initial <= 0 {
		errs = append(errs, fmt.Errorf("initial delay %v must be positive", s.Initial))
	}
	if s.Max < s.Initial {
		errs = append(errs, fmt.Errorf("max delay %v must be at least the initial delay %v", s.Max, s.Initial))
	}
	if s.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("multiplier %v must be at least 1", s.Multiplier))
	}
	if s.Jitter < 0 || s.Jitter > 1 {
		errs = append(errs, fmt.Errorf("jitter %v must be between 0 and 1", s.Jitter))
	}
	return errors.Join(errs...)
}

// Delay is the wait after check number attempt (1 is the first check):
// Initial × Multiplier^(attempt-1), capped at Max, then jittered with rnd,
// a source of uniform values in [0, 1). A nil rnd means no jitter.
//
// It depends only on the attempt number, which JetStream keeps with the
// message (the delivery count), so the schedule survives restarts and
// moves between replicas.
func (s Schedule) Delay(attempt int, rnd func() float64) time.Duration {
	// backoff/v4 supplies the formula; its own randomisation uses a global
	// source and its elapsed-time clock does not survive redeliveries, so
	// both are off and jitter is applied here.
	b := &backoff.ExponentialBackOff{
		InitialInterval:     s.Initial,
		RandomizationFactor: 0,
		Multiplier:          s.Multiplier,
		MaxInterval:         s.Max,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := s.Initial
	for i := 0; i < attempt; i++ {
		next := b.NextBackOff()
		if next == d && i > 0 {
			break // capped, or a multiplier of 1: it will not change again
		}
		d = next
	}
	if rnd != nil && s.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + s.Jitter*(2*rnd()-1)))
	}
	return d
}
