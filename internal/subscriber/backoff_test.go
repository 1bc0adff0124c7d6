package subscriber

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func ExampleSchedule_Delay() {
	s := Schedule{Initial: 5 * time.Second, Max: time.Minute, Multiplier: 2}
	for attempt := 1; attempt <= 6; attempt++ {
		fmt.Print(s.Delay(attempt, nil), " ")
	}
	// Output: 5s 10s 20s 40s 1m0s 1m0s
}

func TestScheduleDelay(t *testing.T) {
	s := Schedule{Initial: 5 * time.Second, Max: 10 * time.Minute, Multiplier: 2, Jitter: 0.2}
	tests := []struct {
		name    string
		attempt int
		rnd     func() float64
		want    time.Duration
	}{
		{"first check, no jitter", 1, nil, 5 * time.Second},
		{"zero attempt is treated as the first", 0, nil, 5 * time.Second},
		{"fourth check", 4, nil, 40 * time.Second},
		{"capped", 12, nil, 10 * time.Minute},
		{"huge attempt stays capped and fast", 1 << 30, nil, 10 * time.Minute},
		{"lowest jitter", 1, func() float64 { return 0 }, 4 * time.Second},
		{"middle jitter", 1, func() float64 { return 0.5 }, 5 * time.Second},
		{"highest jitter", 1, func() float64 { return 0.999999 }, 5999999 * time.Microsecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Delay(tc.attempt, tc.rnd)
			if diff := got - tc.want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("Delay(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}

func TestScheduleMultiplierOne(t *testing.T) {
	s := Schedule{Initial: 3 * time.Second, Max: time.Minute, Multiplier: 1}
	for _, attempt := range []int{1, 2, 50} {
		if got := s.Delay(attempt, nil); got != 3*time.Second {
			t.Errorf("Delay(%d) = %v, want 3s", attempt, got)
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	bad := Schedule{Initial: 0, Max: -1, Multiplier: 0.5, Jitter: 2}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken schedule")
	}
	for _, want := range []string{"initial", "max", "multiplier", "jitter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
