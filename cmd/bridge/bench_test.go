package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runBenchCmd runs `bridge bench args...` in this process; its workers are
// this test binary acting as the bridge (see TestMain).
func runBenchCmd(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process test")
	}
	clearBridgeEnv(t)
	t.Setenv("STATUSBRIDGE_TEST_AS_BRIDGE", "1")
	var stdout, stderr syncBuffer
	if err := run(context.Background(), append([]string{"bench"}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("bench output:\n%s", stdout.String())
	return stdout.String()
}

// medianRow returns the columns of the table's median row of mode.
func medianRow(t *testing.T, table, mode string) map[string]string {
	t.Helper()
	var header []string
	for line := range strings.SplitSeq(table, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "round":
			header = f
		case len(f) > 1 && f[0] == "median" && f[1] == mode:
			// "CPU µs/req", "CPU s", "start CPU" and "peak RSS MiB" are
			// two or three words in the header: match from the right.
			row := map[string]string{}
			for i := 1; i <= min(len(f), 4); i++ {
				row[header[len(header)-i]] = f[len(f)-i]
			}
			row["req/s"], row["calls/req"] = f[2], f[6]
			return row
		}
	}
	t.Fatalf("no median %s row in:\n%s", mode, table)
	return nil
}

func TestBenchSmoke(t *testing.T) {
	out := runBenchCmd(t, "--requests", "200", "--rounds", "1", "--startup-runs", "1")
	for _, mode := range []string{"bridge", "ceiling"} {
		row := medianRow(t, out, mode)
		if row["events"] != "200" || row["calls/req"] != "1.00" || row["warn+err"] != "0" {
			t.Errorf("%s: events %s, calls/req %s, warn+err %s; want 200, 1.00, 0", mode, row["events"], row["calls/req"], row["warn+err"])
		}
		if row["req/s"] == "0" || strings.HasPrefix(row["req/s"], "-") {
			t.Errorf("%s: throughput %s", mode, row["req/s"])
		}
	}
	for _, want := range []string{
		`bridge / ceiling \(medians\): throughput [0-9.]+ .*CPU per request [0-9.]+`,
		`start-up to ready .*: median [0-9.]+m?s`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestBenchPendingScriptCallsPerSchedule(t *testing.T) {
	out := runBenchCmd(t, "--requests", "60", "--rounds", "1", "--mode", "bridge", "--startup-runs", "0",
		"--script", "pending*3,success", "--providers", "iak=1,ayopop=1,appotapay=1")
	row := medianRow(t, out, "bridge")
	if row["events"] != "60" || row["calls/req"] != "4.00" {
		t.Errorf("events %s, calls/req %s; want 60 and 4.00", row["events"], row["calls/req"])
	}
}

func TestBenchParked(t *testing.T) {
	out := runBenchCmd(t, "--parked", "300", "--fresh", "5", "--startup-runs", "0")
	for _, want := range []string{
		`parked requests \(script "pending"\)\s+300, all checked once \(300 simulator calls\), 300 unacknowledged`,
		`fresh success requests\s+5, one every 10ms: p50 [0-9.]+m?s`,
		`bridge RSS after the fresh ones\s+[0-9.]+ MiB now`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestRoundOrderAlternatesPairs(t *testing.T) {
	got := strings.Join(roundOrder([]string{"bridge", "ceiling"}, 3), " ")
	if want := "bridge ceiling ceiling bridge bridge ceiling"; got != want {
		t.Errorf("roundOrder = %s, want %s", got, want)
	}
	if got := strings.Join(roundOrder([]string{"bridge"}, 2), " "); got != "bridge bridge" {
		t.Errorf("roundOrder of one mode = %s", got)
	}
}

func TestPairRatiosComparePairsWhateverTheirOrder(t *testing.T) {
	r := func(mode string, rate float64, cpu time.Duration) roundResult {
		return roundResult{mode: mode, rate: rate, cpu: cpu, requests: 1}
	}
	thr, cpu := pairRatios([]roundResult{
		r("bridge", 90, 120*time.Microsecond), r("ceiling", 100, 100*time.Microsecond),
		r("ceiling", 200, 100*time.Microsecond), r("bridge", 100, 150*time.Microsecond),
	}, "ceiling")
	if fmt.Sprintf("%.2f %.2f", thr, cpu) != "[0.90 0.50] [1.20 1.50]" {
		t.Errorf("pairRatios = %.2f, %.2f; want [0.90 0.50], [1.20 1.50]", thr, cpu)
	}
	thr, cpu = pairRatios([]roundResult{
		r("baseline", 100, 100*time.Microsecond), r("bridge", 110, 90*time.Microsecond),
		r("bridge", 90, 120*time.Microsecond), r("ceiling", 100, 100*time.Microsecond),
	}, "baseline")
	if fmt.Sprintf("%.2f %.2f", thr, cpu) != "[1.10] [0.90]" {
		t.Errorf("pairRatios against the baseline = %.2f, %.2f; want [1.10], [0.90]", thr, cpu)
	}
}
