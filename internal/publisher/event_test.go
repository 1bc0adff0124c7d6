package publisher

import (
	stdjson "encoding/json"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

func TestMarshalRefusesWhatIsNotANumber(t *testing.T) {
	for _, n := range []Amount{`1}`, `{"a":1}`, `"1"`, `1,"x":2`, `NaN`, `01`, `-`, `1 2`} {
		ev := NewEvent(Data{RequestID: "r", Provider: "iak", Status: StatusSuccess, Amount: n})
		if b, err := marshal(ev); err == nil {
			t.Errorf("amount %q encoded as %s, want an error", n, b)
		}
	}
}

func TestMarshalRefusesDetailsThatAreNotOneObject(t *testing.T) {
	for _, d := range []string{`{"a":1}}`, `{"a":1},{"b":2}`, `{"a":1`, `[1]`, `"x"`, `1`, `null`, ` `} {
		ev := NewEvent(Data{RequestID: "r", Provider: "iak", Status: StatusSuccess, Details: stdjson.RawMessage(d)})
		if b, err := marshal(ev); err == nil {
			t.Errorf("details %q encoded as %s, want an error", d, b)
		}
	}
}

// TestMarshalKeepsHostileTextInsideItsStrings encodes an event whose
// request and provider text tries to break out of its strings: the event
// is valid JSON, with the members it should have, and every string reads
// back as given (invalid UTF-8 as U+FFFD, as encoding/json writes it).
func TestMarshalKeepsHostileTextInsideItsStrings(t *testing.T) {
	hostile := "</script>\u2028\"\\\x01}\xff,\"x\":{"
	ev := NewEvent(Data{
		RequestID: "r2", Provider: "ayopop", Reference: hostile, Status: StatusFailed, Reason: ReasonProviderFailed,
		ProviderMessage: hostile, Amount: "-1.5e3", Metadata: map[string]string{"": "", hostile: hostile},
		Details: stdjson.RawMessage("{\"text\":\"" + "\xff\\u003c/b\\u003e" + "\",\"n\":[1,{}], \"a\":1,\"a\":2}"),
	})
	b, err := marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !jsontext.Value(b).IsValid(jsontext.AllowDuplicateNames(true)) {
		t.Fatalf("invalid JSON: %s", b)
	}
	var got struct {
		Subject string `json:"subject"`
		Data    struct {
			Reference       string            `json:"reference"`
			ProviderMessage string            `json:"provider_message"`
			Amount          jsontext.Value    `json:"amount"`
			Metadata        map[string]string `json:"metadata"`
			Details         map[string]any    `json:"details"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &got, jsontext.AllowDuplicateNames(true)); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	want := strings.ToValidUTF8(hostile, "\uFFFD")
	if got.Subject != want || got.Data.Reference != want || got.Data.ProviderMessage != want || got.Data.Metadata[want] != want || len(got.Data.Metadata) != 2 {
		t.Errorf("strings changed on the way:\n%s", b)
	}
	if string(got.Data.Amount) != "-1.5e3" {
		t.Errorf("amount = %s, want the provider's literal -1.5e3", got.Data.Amount)
	}
	if diff := cmp.Diff(map[string]any{"text": "\uFFFD</b>", "n": []any{1.0, map[string]any{}}, "a": 2.0}, got.Data.Details); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
}

// TestEventDecodesWithEitherJSONPackage reads a published event back with
// encoding/json and with json/v2, as subscribers and tools do: both get
// the event that was published.
func TestEventDecodesWithEitherJSONPackage(t *testing.T) {
	ev := fullEvent()
	b, err := marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 Event
	if err := stdjson.Unmarshal(b, &v1); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if err := json.Unmarshal(b, &v2); err != nil {
		t.Fatalf("json/v2: %v", err)
	}
	if diff := cmp.Diff(ev, v1); diff != "" {
		t.Errorf("encoding/json read (-published +read):\n%s", diff)
	}
	if diff := cmp.Diff(ev, v2); diff != "" {
		t.Errorf("json/v2 read (-published +read):\n%s", diff)
	}
	again, err := stdjson.Marshal(v1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(generic(t, b), generic(t, again)); diff != "" {
		t.Errorf("encoding/json writes another event (-published +encoding/json):\n%s", diff)
	}
}
