package service

import (
	"strings"
	"testing"
)

func TestSemver(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "1.2.3", "1.2.3-rc.1": "1.2.3-rc.1", "dev": "0.0.0-dev", "test": "0.0.0-test", "": "0.0.0-dev", "a b/c": "0.0.0-abc"} {
		if got := semver(in); got != want {
			t.Errorf("semver(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestIDNeverEchoesTheBody(t *testing.T) {
	for _, body := range []string{"", " ", strings.Repeat("x", 2000), "ord\x00", "ord-\xff", "ord 1", strings.Repeat("y", 129)} {
		id, problem := requestID([]byte(body))
		if id != "" || problem == "" {
			t.Errorf("%q accepted as %q", body, id)
		}
		if len(body) > 3 && strings.Contains(problem, body[:4]) {
			t.Errorf("%q: the problem %q repeats the body", body, problem)
		}
	}
	if id, problem := requestID([]byte(" ord-7781-status\n")); id != "ord-7781-status" || problem != "" {
		t.Errorf("a request id with white space around: %q, %q", id, problem)
	}
}
