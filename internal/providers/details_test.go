package providers_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/providers/providertest"
)

func text(raw string) providers.Text {
	var t providers.Text
	t.SetJSON(raw)
	return t
}

func TestDetailsWritesWhatWasRead(t *testing.T) {
	type pair struct{ k, v string }
	pairs := []pair{{"", ""}, {"K1", "V1"}, {"", ""}, {"K2", "</x>\u2028"}}
	var d providers.Details
	d.Amount("amount", text(`"-12.50"`))
	d.Amount("bad_amount", text(`"1e3"`))
	d.Text("absent", text(`null`))
	d.Bool("flag", false)
	d.Objects("nested", 2, func(i int) {
		d.Objects("inner", 2, func(j int) {
			if i == 1 && j == 1 {
				d.Bool("last", true)
			}
		})
	})
	d.Objects("none", 2, func(int) {})
	d.Objects("pairs", len(pairs), func(i int) {
		if pairs[i].k != "" {
			d.String("key", pairs[i].k)
			d.String("value", pairs[i].v)
		}
	})
	d.Text("text", text(`7`))
	got := d.JSON()
	want := providertest.DetailsJSON(map[string]any{
		"amount": json.Number("-12.50"), "flag": false, "text": "7",
		"nested": []any{map[string]any{"inner": []any{map[string]any{"last": true}}}},
		"pairs":  []any{map[string]any{"key": "K1", "value": "V1"}, map[string]any{"key": "K2", "value": "</x>\u2028"}},
	})
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
	providertest.CheckDetails(t, got)
}

func TestDetailsWithoutMembersAreNil(t *testing.T) {
	var d providers.Details
	d.Text("absent", text(`{}`))
	d.Objects("empty", 3, func(int) {})
	if got := d.JSON(); got != nil {
		t.Errorf("JSON() = %q, want nil", got)
	}
}

// FuzzDetailsString checks that any text comes out as the JSON string
// encoding/json writes of it.
func FuzzDetailsString(f *testing.F) {
	for _, s := range []string{"JAORAH", `"quoted"\`, "</script>&", "\u2028\u2029", "bad\xffutf8", "\x00\x1f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d providers.Details
		d.String("k", s)
		var got, want map[string]string
		if err := json.Unmarshal(d.JSON(), &got); err != nil {
			t.Fatalf("details %q: %v", d.JSON(), err)
		}
		b, _ := json.Marshal(map[string]string{"k": s})
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if got["k"] != want["k"] {
			t.Fatalf("String(%q) read back as %q, encoding/json's as %q", s, got["k"], want["k"])
		}
		providertest.CheckDetails(t, d.JSON())
	})
}
