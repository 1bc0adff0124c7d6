package subscriber

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// TestResolvedLogLine pins the INFO line every settled request writes.
func TestResolvedLogLine(t *testing.T) {
	tests := []struct {
		name   string
		answer providers.Result
		status string
		reason any // nil: no reason attribute
	}{
		{"success", providers.Result{State: providers.StateSuccess, Status: "1", Code: "00"}, "success", nil},
		{"failed", providers.Result{State: providers.StateFailed, Status: "2", Code: "01"}, "failed", "provider_failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := subscriberWithLog(t, tc.answer, slog.New(slog.NewJSONHandler(&out, nil)))
			msg := &benchMsg{data: []byte(benchBody), meta: jetstream.MsgMetadata{
				NumDelivered: 2, Sequence: jetstream.SequencePair{Stream: 42, Consumer: 43}, Timestamp: time.Now().Add(-1500 * time.Millisecond),
			}}
			s.handle(context.Background(), msg)

			var line map[string]any
			if err := json.Unmarshal(out.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON line, got %q: %v", out.String(), err)
			}
			want := map[string]any{
				"level": "INFO", "msg": "request resolved", "provider": "iak", "request_id": "ord-7781-status",
				"status": tc.status, "delivery": 2.0, "event_id": publisher.EventID("iak", "ord-7781-status"),
				"reason": tc.reason, "duplicate": nil,
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v in %s", k, line[k], v, out.String())
				}
			}
			if age, ok := line["age"].(float64); !ok || age < float64(time.Second) {
				t.Errorf("age = %v, want the request's age in nanoseconds", line["age"])
			}
		})
	}
}
