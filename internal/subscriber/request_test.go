package subscriber

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/statusbridge/statusbridge/internal/metrics"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		want       Request
		deadLetter string // when the body has no usable request_id
		problem    string // part of the rejection's detail
		partial    Request
	}{
		{name: "minimal",
			body: `{"request_id":"r-1","provider":"iak","reference":"091283746520"}`,
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "091283746520"}},
		{name: "every field",
			body: `{"request_id":"ord-7781:status.v1_x","provider":"iak","reference":"ref with spaces/ü","deadline":"2026-11-23T10:00:00+07:00","metadata":{"order_id":"7781"}}`,
			want: Request{RequestID: "ord-7781:status.v1_x", Provider: "iak", Reference: "ref with spaces/ü",
				Deadline: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), Metadata: map[string]string{"order_id": "7781"}}},
		{name: "unknown fields are ignored",
			body: `{"request_id":"r-1","provider":"iak","reference":"x","future":{"a":[1,2]},"v":2}`,
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "null optional fields are absent",
			body: `{"request_id":"r-1","provider":"iak","reference":"x","deadline":null,"metadata":null}`,
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "surrounding whitespace",
			body: " \n{\"request_id\":\"r-1\",\"provider\":\"iak\",\"reference\":\"x\"}\n",
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "escaped member names are the names",
			body: `{"request\u005fid":"r-1","provider":"iak","reference":"x"}`,
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "a metadata key given twice counts once, with its last value",
			body: `{"request_id":"r-1","provider":"iak","reference":"x","metadata":{"k":"1","k":"2"}}`,
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "x", Metadata: map[string]string{"k": "2"}}},
		{name: "invalid UTF-8 in a string reads as U+FFFD",
			body: "{\"request_id\":\"r-1\",\"provider\":\"iak\",\"reference\":\"x\",\"metadata\":{\"k\":\"a\xffb\"}}",
			want: Request{RequestID: "r-1", Provider: "iak", Reference: "x", Metadata: map[string]string{"k": "a\uFFFDb"}}},

		{name: "too large", body: `{"request_id":"r","pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, deadLetter: DeadLetterTooLarge},
		{name: "empty", body: ``, deadLetter: DeadLetterInvalidJSON},
		{name: "not an object", body: `["r-1"]`, deadLetter: DeadLetterInvalidJSON},
		{name: "null", body: `null`, deadLetter: DeadLetterInvalidJSON},
		{name: "whitespace JSON does not allow", body: "\f{\"request_id\":\"r-1\",\"provider\":\"iak\",\"reference\":\"x\"}", deadLetter: DeadLetterInvalidJSON},
		{name: "broken JSON", body: `{"request_id":"r-1",`, deadLetter: DeadLetterInvalidJSON},
		{name: "data after the object", body: `{"request_id":"r-1","provider":"iak","reference":"x"} {}`, deadLetter: DeadLetterInvalidJSON},
		{name: "missing request_id", body: `{"provider":"iak","reference":"x"}`, deadLetter: DeadLetterMissingRequestID},
		{name: "null request_id", body: `{"request_id":null}`, deadLetter: DeadLetterMissingRequestID},
		{name: "request_id names are exact", body: `{"Request_ID":"r-1","provider":"iak","reference":"x"}`, deadLetter: DeadLetterMissingRequestID},
		{name: "request_id not a string", body: `{"request_id":17}`, deadLetter: DeadLetterInvalidRequestID},
		{name: "request_id with a space", body: `{"request_id":"r 1"}`, deadLetter: DeadLetterInvalidRequestID},
		{name: "request_id with a subject wildcard", body: `{"request_id":"r.>"}`, deadLetter: DeadLetterInvalidRequestID},
		{name: "request_id too long", body: `{"request_id":"` + strings.Repeat("r", MaxRequestIDLen+1) + `"}`, deadLetter: DeadLetterInvalidRequestID},
		{name: "request_id twice", body: `{"request_id":"r-1","request_id":"r-2","provider":"iak","reference":"x"}`, deadLetter: DeadLetterInvalidRequestID},

		{name: "missing reference", body: `{"request_id":"r-1","provider":"iak","metadata":{"k":"v"}}`,
			problem: "reference is missing", partial: Request{RequestID: "r-1", Provider: "iak", Metadata: map[string]string{"k": "v"}}},
		{name: "empty reference", body: `{"request_id":"r-1","provider":"iak","reference":""}`,
			problem: "reference must be", partial: Request{RequestID: "r-1", Provider: "iak"}},
		{name: "reference too long", body: `{"request_id":"r-1","provider":"iak","reference":"` + strings.Repeat("é", MaxReferenceLen+1) + `"}`,
			problem: "reference must be", partial: Request{RequestID: "r-1", Provider: "iak"}},
		{name: "reference with a control character", body: `{"request_id":"r-1","provider":"iak","reference":"a\nb"}`,
			problem: "reference must be", partial: Request{RequestID: "r-1", Provider: "iak"}},
		{name: "reference not a string", body: `{"request_id":"r-1","provider":"iak","reference":42}`,
			problem: "reference must be", partial: Request{RequestID: "r-1", Provider: "iak"}},
		{name: "reference twice", body: `{"request_id":"r-1","provider":"iak","reference":"a","reference":"b"}`,
			problem: "reference appears more than once", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "b"}},
		{name: "provider twice", body: `{"request_id":"r-1","provider":"iak","reference":"x","provider":"iak"}`,
			problem: "provider appears more than once", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "provider differs from the subject", body: `{"request_id":"r-1","provider":"ayopop","reference":"x"}`,
			problem: "provider does not match the subject", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "provider missing", body: `{"request_id":"r-1","reference":"x"}`,
			problem: "provider must be a string", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "deadline not RFC 3339", body: `{"request_id":"r-1","provider":"iak","reference":"x","deadline":"tomorrow"}`,
			problem: "deadline must be", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "deadline without an offset", body: `{"request_id":"r-1","provider":"iak","reference":"x","deadline":"2026-11-23T10:00:00"}`,
			problem: "deadline must be", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "metadata not strings", body: `{"request_id":"r-1","provider":"iak","reference":"x","metadata":{"a":1}}`,
			problem: "metadata values must be strings", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "metadata value null", body: `{"request_id":"r-1","provider":"iak","reference":"x","metadata":{"a":null}}`,
			problem: "metadata values must be strings", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "metadata not an object", body: `{"request_id":"r-1","provider":"iak","reference":"x","metadata":["a"]}`,
			problem: "metadata must be an object of strings", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "metadata too many keys", body: `{"request_id":"r-1","provider":"iak","reference":"x","metadata":{` + manyKeys(MaxMetadataKeys+1) + `}}`,
			problem: "metadata has 33 keys", partial: Request{RequestID: "r-1", Provider: "iak", Reference: "x"}},
		{name: "every problem is reported", body: `{"request_id":"r-1","provider":"x","reference":"","deadline":"soon"}`,
			problem: "reference must be a string of 1-64 printable characters; provider does not match the subject; deadline must be an RFC 3339 time",
			partial: Request{RequestID: "r-1", Provider: "iak"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, derr := decodeRequest([]byte(tc.body), "iak")
			switch {
			case tc.deadLetter != "":
				if derr == nil || derr.DeadLetter != tc.deadLetter {
					t.Fatalf("got %+v, %v; want dead letter %s", got, derr, tc.deadLetter)
				}
			case tc.problem != "":
				if derr == nil || derr.DeadLetter != "" || !strings.Contains(derr.Detail, tc.problem) {
					t.Fatalf("got %+v, %v; want a rejection containing %q", got, derr, tc.problem)
				}
				if diff := cmp.Diff(tc.partial, derr.Partial); diff != "" {
					t.Errorf("echoed part (-want +got):\n%s", diff)
				}
			default:
				if derr != nil {
					t.Fatalf("refused: %v", derr)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestDecodeDeadLetterReasonsAreMetricLabels: the dead-letters metric
// starts a series at 0 for every reason decodeRequest gives.
func TestDecodeDeadLetterReasonsAreMetricLabels(t *testing.T) {
	want := []string{DeadLetterTooLarge, DeadLetterInvalidJSON, DeadLetterMissingRequestID, DeadLetterInvalidRequestID}
	if diff := cmp.Diff(want, metrics.DeadLetterReasons); diff != "" {
		t.Errorf("metrics.DeadLetterReasons (-decodeRequest's +metrics'):\n%s", diff)
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i) + `":"v"`)
	}
	return b.String()
}

func TestProviderOf(t *testing.T) {
	tests := []struct{ subject, token, name string }{
		{"status.requested.iak", "iak", "iak"},
		{"status.requested.Pay_Pal-2", "Pay_Pal-2", "Pay_Pal-2"},
		{"status.requested.a.b", "a.b", "unknown"},
		{"status.requested.>", ">", "unknown"},
		{"status.requested.*", "*", "unknown"},
		{"status.requested.é", "é", "unknown"},
		{"status.requested." + strings.Repeat("x", 32), strings.Repeat("x", 32), strings.Repeat("x", 32)},
		{"status.requested." + strings.Repeat("x", 33), strings.Repeat("x", 33), "unknown"},
		{"status.requested.", "", "unknown"},
	}
	for _, tc := range tests {
		if token, name := providerOf(tc.subject); token != tc.token || name != tc.name {
			t.Errorf("providerOf(%q) = %q, %q; want %q, %q", tc.subject, token, name, tc.token, tc.name)
		}
	}
}
