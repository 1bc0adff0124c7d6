// Package deadletters reads the dead-letter stream for operators: the
// requests too broken to answer, with the reason the bridge gave. It only
// reads stored messages by sequence, so it creates no consumer and changes
// nothing. Everything in a dead letter came from whoever published the
// request: it is printed escaped, never as it is.
package deadletters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/publisher"
)

// Letter is one stored dead letter.
type Letter struct {
	Sequence uint64
	Time     time.Time
	Subject  string
	Reason   string
	Size     int
	Header   map[string][]string
	Body     []byte
}

// List returns the dead letters stored in stream, oldest first, at most
// limit of them (the newest), and how many are stored.
func List(ctx context.Context, js jetstream.JetStream, stream string, limit int) ([]Letter, uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	st := info.State
	var out []Letter
	for seq := st.LastSeq; st.Msgs > 0 && seq >= st.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted or aged out
		}
		if err != nil {
			return nil, 0, fmt.Errorf("stream %s, message %d: %w", stream, seq, err)
		}
		out = append(out, letter(m))
	}
	slices.Reverse(out)
	return out, st.Msgs, nil
}

// Show returns the dead letter at sequence seq.
func Show(ctx context.Context, js jetstream.JetStream, stream string, seq uint64) (Letter, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return Letter{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return Letter{}, fmt.Errorf("stream %s, message %d: %w", stream, seq, err)
	}
	return letter(m), nil
}

func letter(m *jetstream.RawStreamMsg) Letter {
	return Letter{
		Sequence: m.Sequence, Time: m.Time, Subject: m.Subject,
		Reason: m.Header.Get(publisher.HeaderDeadLetterReason), Size: len(m.Data),
		Header: m.Header, Body: m.Data,
	}
}

// WriteList writes letters as a table: sequence, time, subject, reason,
// size in bytes.
func WriteList(w io.Writer, letters []Letter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tTIME\tSUBJECT\tREASON\tBYTES")
	for _, l := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", l.Sequence, l.Time.UTC().Format(time.RFC3339), Safe(l.Subject), Safe(l.Reason), l.Size)
	}
	return tw.Flush()
}

// WriteLetter writes one dead letter: its place, its headers, then its
// body, at most maxBody bytes of it.
func WriteLetter(w io.Writer, l Letter, maxBody int) error {
	fmt.Fprintf(w, "sequence: %d\ntime: %s\nsubject: %s\nbytes: %d\n", l.Sequence, l.Time.UTC().Format(time.RFC3339Nano), Safe(l.Subject), l.Size)
	keys := make([]string, 0, len(l.Header))
	for k := range l.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		fmt.Fprintln(w, "headers:")
	}
	for _, k := range keys {
		for _, v := range l.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", Safe(k), Safe(v))
		}
	}
	body, cut := l.Body, false
	if len(body) > maxBody {
		body, cut = body[:maxBody], true
	}
	fmt.Fprintln(w, "body:")
	if printable(body) {
		fmt.Fprintln(w, string(body))
	} else {
		fmt.Fprintln(w, "(not printable text; as a quoted string)")
		fmt.Fprintln(w, strconv.Quote(string(body)))
	}
	var err error
	if cut {
		_, err = fmt.Fprintf(w, "(%d more bytes not shown; see --max-bytes)\n", len(l.Body)-maxBody)
	}
	return err
}

// Safe returns s as it may be written to a terminal: unchanged when it is
// printable text on one line, else quoted with escapes.
func Safe(s string) string {
	if s != "" && utf8.ValidString(s) {
		ok := true
		for _, c := range s {
			if !unicode.IsPrint(c) {
				ok = false
				break
			}
		}
		if ok {
			return s
		}
	}
	return strconv.Quote(s)
}

// printable reports whether b is UTF-8 text of printable characters, tabs
// and newlines: nothing that moves a terminal's cursor or changes its
// state (a carriage return or an escape sequence could hide what precedes
// it).
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range string(b) {
		if c != '\n' && c != '\t' && !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}
