package sim

import (
	"flag"
	"fmt"
	"time"
)

// CapacityFlags are the capacity flags of the commands that serve the
// simulators. Each --X applies to every provider without its own
// --<provider>-X: --latency 250ms --iak-latency 1s slows IAK to 1 s and
// the others to 250 ms.
type CapacityFlags struct {
	fs        *flag.FlagSet
	durations map[string]*time.Duration
	limits    map[string]*int
}

// RegisterCapacityFlags registers on fs --latency, --jitter, --rate-limit,
// --retry-after, --outage-after, --outage-for and --outage-retry-after, and
// each again prefixed with iak-, ayopop- and appotapay-. Read them with
// Profiles once fs is parsed.
func RegisterCapacityFlags(fs *flag.FlagSet) *CapacityFlags {
	f := &CapacityFlags{fs: fs, durations: map[string]*time.Duration{}, limits: map[string]*int{}}
	duration := func(name, usage string) { f.durations[name] = fs.Duration(name, 0, usage) }
	duration("latency", "simulators: fixed latency of every answer")
	duration("jitter", "simulators: uniform jitter around --latency, at most the latency")
	f.limits["rate-limit"] = fs.Int("rate-limit", 0, "simulators: calls per second admitted (sliding window), others get HTTP 429 (0: no limit)")
	duration("retry-after", "simulators: Retry-After of a 429, rounded up to whole seconds (0: 1s)")
	duration("outage-after", "simulators: start of an outage, after the simulators start")
	duration("outage-for", "simulators: length of an outage, in which every status call gets HTTP 503 (0: none)")
	duration("outage-retry-after", "simulators: Retry-After of an outage's 503 (0: none)")
	for _, p := range Names() {
		duration(p+"-latency", "--latency of "+p+" alone")
		duration(p+"-jitter", "--jitter of "+p+" alone")
		f.limits[p+"-rate-limit"] = fs.Int(p+"-rate-limit", 0, "--rate-limit of "+p+" alone")
		duration(p+"-retry-after", "--retry-after of "+p+" alone")
		duration(p+"-outage-after", "--outage-after of "+p+" alone")
		duration(p+"-outage-for", "--outage-for of "+p+" alone")
		duration(p+"-outage-retry-after", "--outage-retry-after of "+p+" alone")
	}
	return f
}

// Profiles returns every provider's profile, with outages placed from
// start, or the first error in the flags. Pass them to WithProfiles.
func (f *CapacityFlags) Profiles(start time.Time) (map[string]Profile, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	profiles := map[string]Profile{}
	for _, provider := range Names() {
		name := func(knob string) string {
			if set[provider+"-"+knob] {
				return provider + "-" + knob
			}
			return knob
		}
		d := func(knob string) time.Duration { return *f.durations[name(knob)] }
		p := Profile{
			Latency:          d("latency"),
			Jitter:           d("jitter"),
			RateLimit:        *f.limits[name("rate-limit")],
			RetryAfter:       d("retry-after"),
			OutageRetryAfter: d("outage-retry-after"),
		}
		switch after, length := d("outage-after"), d("outage-for"); {
		case after < 0 || length < 0:
			return nil, fmt.Errorf("--%s and --%s must not be negative", name("outage-after"), name("outage-for"))
		case length > 0:
			p.OutageStart = start.Add(after)
			p.OutageEnd = p.OutageStart.Add(length)
		case after > 0:
			return nil, fmt.Errorf("--%s needs --%s", name("outage-after"), name("outage-for"))
		}
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("%s simulator: %w", provider, err)
		}
		profiles[provider] = p
	}
	return profiles, nil
}
