package deadletters

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestWriteLetterEscapesWhatIsNotText: a body or header that could move a
// terminal's cursor, or is not UTF-8, is printed quoted.
func TestWriteLetterEscapesWhatIsNotText(t *testing.T) {
	for _, tc := range []struct {
		body   string
		quoted bool
	}{
		{`{"request_id":"has spaces"}`, false},
		{"line one\n\tline two", false},
		{"\x1b[2Jcleared", true},
		{"over\rwritten", true},
		{"not utf-8 \xff", true},
		{"bidi \u202etxt.exe", true},
	} {
		var out bytes.Buffer
		l := Letter{Sequence: 7, Time: time.Unix(0, 0), Subject: "status.deadletter.iak", Header: map[string][]string{"X-Evil": {"a\x1b[1mb"}}, Body: []byte(tc.body)}
		if err := WriteLetter(&out, l, 1024); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if strings.ContainsAny(s, "\x1b\r\u202e") || strings.Contains(s, "\xff") {
			t.Errorf("%q printed raw: %q", tc.body, s)
		}
		if got := strings.Contains(s, "(not printable text"); got != tc.quoted {
			t.Errorf("%q: quoted %v, want %v: %q", tc.body, got, tc.quoted, s)
		}
	}
	var out bytes.Buffer
	_ = WriteLetter(&out, Letter{Body: bytes.Repeat([]byte("a"), 100)}, 10)
	if !strings.Contains(out.String(), "\naaaaaaaaaa\n(90 more bytes not shown") {
		t.Errorf("a cut body: %q", out.String())
	}
}
