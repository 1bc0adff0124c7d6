package sim

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCapacityFlags(t *testing.T) {
	start := capacityBase
	all := func(p Profile) map[string]Profile {
		return map[string]Profile{IAK: p, Ayopop: p, AppotaPay: p}
	}
	with := func(m map[string]Profile, provider string, p Profile) map[string]Profile {
		m[provider] = p
		return m
	}
	tests := []struct {
		args string
		want map[string]Profile
		err  string
	}{
		{"", all(Profile{}), ""},
		{"--latency 250ms --jitter 50ms --rate-limit 50 --iak-latency 1s",
			with(all(Profile{Latency: 250 * time.Millisecond, Jitter: 50 * time.Millisecond, RateLimit: 50}),
				IAK, Profile{Latency: time.Second, Jitter: 50 * time.Millisecond, RateLimit: 50}), ""},
		{"--rate-limit 10 --iak-rate-limit 0 --retry-after 3s",
			with(all(Profile{RateLimit: 10, RetryAfter: 3 * time.Second}), IAK, Profile{RetryAfter: 3 * time.Second}), ""},
		{"--ayopop-outage-after 10s --ayopop-outage-for 60s --outage-retry-after 5s",
			with(all(Profile{OutageRetryAfter: 5 * time.Second}), Ayopop, Profile{
				OutageStart: start.Add(10 * time.Second), OutageEnd: start.Add(70 * time.Second), OutageRetryAfter: 5 * time.Second,
			}), ""},
		{"--outage-for 30s", all(Profile{OutageStart: start, OutageEnd: start.Add(30 * time.Second)}), ""},
		{"--outage-after 10s", nil, "--outage-after needs --outage-for"},
		{"--outage-for 1m --iak-outage-after 5s", // each knob falls back on its own
			with(all(Profile{OutageStart: start, OutageEnd: start.Add(time.Minute)}),
				IAK, Profile{OutageStart: start.Add(5 * time.Second), OutageEnd: start.Add(65 * time.Second)}), ""},
		{"--outage-for 1m --iak-outage-for 0s --iak-outage-after 5s", nil, "--iak-outage-after needs --iak-outage-for"},
		{"--iak-outage-for -1s", nil, "must not be negative"},
		{"--jitter 100ms", nil, "jitter 100ms exceeds latency 0s"},
		{"--rate-limit -1", nil, "rate limit must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := RegisterCapacityFlags(fs)
			if err := fs.Parse(strings.Fields(tc.args)); err != nil {
				t.Fatal(err)
			}
			got, err := f.Profiles(start)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("profiles %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}
