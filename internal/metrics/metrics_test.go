package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
			vec.WithLabelValues("appotapay", "success", "").Inc()
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.With("appotapay", "success", "").Inc()
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
