package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestChildrenAreTheVectorsChildren(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total", Help: "test"}, []string{"provider", "status"})
	c := NewChildren(vec.WithLabelValues)
	c.With("iak", "success").Inc()
	c.With("iak", "success").Inc()
	c.With("iak", "failed").Inc()
	if got := testutil.ToFloat64(vec.WithLabelValues("iak", "success")); got != 2 {
		t.Errorf("iak/success = %v, want 2", got)
	}
	if got := testutil.ToFloat64(vec.WithLabelValues("iak", "failed")); got != 1 {
		t.Errorf("iak/failed = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(vec); n != 2 {
		t.Errorf("%d series, want 2: a cached lookup must not create others", n)
	}
}

func TestChildrenLookupDoesNotAllocate(t *testing.T) {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t_seconds", Help: "test"}, []string{"provider"})
	c := NewChildren(vec.WithLabelValues)
	provider := "ayopop"
	c.With(provider).Observe(1)
	if n := testing.AllocsPerRun(100, func() { c.With(provider).Observe(1) }); n != 0 {
		t.Errorf("a cached lookup allocates %v times", n)
	}
}

func BenchmarkChildren(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total", Help: "test"}, []string{"provider", "status", "reason"})
	c := NewChildren(vec.WithLabelValues)
	b.Run("vector", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			vec.WithLabelValues("appotapay", "success", ReasonNone).Inc()
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.With("appotapay", "success", ReasonNone).Inc()
		}
	})
}

func TestInFlightGaugeReadsTheCounter(t *testing.T) {
	m := New("test")
	m.InFlight.Add(3)
	m.InFlight.Add(-1)
	const want = `
# HELP statusbridge_inflight Requests being handled by this replica right now.
# TYPE statusbridge_inflight gauge
statusbridge_inflight 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "statusbridge_inflight"); err != nil {
		t.Error(err)
	}
}

// TestCountersStartAtZero: the series an alert or a rate would look for
// exist before anything happened.
func TestCountersStartAtZero(t *testing.T) {
	m := New("test")
	m.AddProviders("iak", "ayopop", "appotapay")
	m.AddProviders("iak") // again: nothing changes
	const want = `
# HELP statusbridge_consume_restarts_total Times the pull consumer's subscription was re-created, by reason (no_heartbeat, consumer_gone).
# TYPE statusbridge_consume_restarts_total counter
statusbridge_consume_restarts_total{reason="consumer_gone"} 0
statusbridge_consume_restarts_total{reason="no_heartbeat"} 0
# HELP statusbridge_deadletters_total Requests too broken to answer, moved to status.deadletter.<provider>, by reason.
# TYPE statusbridge_deadletters_total counter
statusbridge_deadletters_total{reason="invalid_json"} 0
statusbridge_deadletters_total{reason="invalid_request_id"} 0
statusbridge_deadletters_total{reason="missing_request_id"} 0
statusbridge_deadletters_total{reason="too_large"} 0
# HELP statusbridge_event_duplicates_total Event publishes JetStream reported as duplicates of an earlier publish (a redelivery re-published the same event id).
# TYPE statusbridge_event_duplicates_total counter
statusbridge_event_duplicates_total{provider="appotapay"} 0
statusbridge_event_duplicates_total{provider="ayopop"} 0
statusbridge_event_duplicates_total{provider="iak"} 0
statusbridge_event_duplicates_total{provider="unknown"} 0
# HELP statusbridge_publish_errors_total Publishes that JetStream did not acknowledge (the request is retried), by what was published: event or deadletter.
# TYPE statusbridge_publish_errors_total counter
statusbridge_publish_errors_total{what="deadletter"} 0
statusbridge_publish_errors_total{what="event"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"statusbridge_consume_restarts_total", "statusbridge_deadletters_total",
		"statusbridge_event_duplicates_total", "statusbridge_publish_errors_total"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		vec  *prometheus.CounterVec
		want int
	}{
		{m.Deliveries, 4},             // three providers and unknown
		{m.Checks, 3 * len(Outcomes)}, // unknown is never checked
		{m.Events, 3*10 + 2},          // every status with its reasons; unknown is only rejected
	} {
		if n := testutil.CollectAndCount(c.vec); n != c.want {
			t.Errorf("%d series, want %d", n, c.want)
		}
	}
	events := map[string]bool{}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "statusbridge_events_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var values []string
			for _, l := range s.GetLabel() {
				values = append(values, l.GetName()+"="+l.GetValue())
			}
			events[strings.Join(values, ",")] = true
		}
	}
	for _, want := range []string{
		"provider=iak,reason=none,status=success", "provider=ayopop,reason=bad_signature,status=expired",
		"provider=appotapay,reason=provider_not_configured,status=rejected", "provider=unknown,reason=unknown_provider,status=rejected",
	} {
		if !events[want] {
			t.Errorf("no events series {%s}", want)
		}
	}
}

// TestEveryCounterIsExportedWithoutEmptyLabels: after New and
// AddProviders, every counter of the catalogue has a series, and no label
// of any series is empty.
func TestEveryCounterIsExportedWithoutEmptyLabels(t *testing.T) {
	m := New("test")
	m.AddProviders("iak")
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counters := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "statusbridge_") {
			continue
		}
		if mf.GetType() == dto.MetricType_COUNTER {
			counters++
			if len(mf.GetMetric()) == 0 {
				t.Errorf("%s has no series", mf.GetName())
			}
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetValue() == "" {
					t.Errorf("%s has a series with label %s empty", mf.GetName(), l.GetName())
				}
			}
		}
	}
	if counters < 10 {
		t.Errorf("only %d counters gathered", counters)
	}
}

func TestReasonLabel(t *testing.T) {
	for reason, want := range map[string]string{"": "none", "deadline": "deadline"} {
		if got := ReasonLabel(reason); got != want {
			t.Errorf("ReasonLabel(%q) = %q, want %q", reason, got, want)
		}
	}
}

// TestREADMEDocumentsEveryMetric: each metric of the catalogue is in the
// table of metrics of docs/operating.md.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `statusbridge_") {
			for _, name := range regexp.MustCompile("`(statusbridge_[a-z_]+)`").FindAllStringSubmatch(line, -1) {
				documented[name[1]] = true
			}
		}
	}
	m := New("test")
	m.AddProviders("iak")
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, "statusbridge_") && !documented[name] {
			t.Errorf("%s is not in the table of metrics of docs/operating.md", name)
		}
	}
}
