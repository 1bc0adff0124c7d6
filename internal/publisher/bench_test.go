package publisher

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchData is a success as an IAK check fills it, with the request's
// metadata echoed.
func benchData() Data {
	requested := time.Date(2026, 11, 22, 10, 3, 40, 123456789, time.UTC)
	return Data{
		RequestID: "ord-7781-status", Provider: "iak", Reference: "091283746520", Status: StatusSuccess,
		ProviderStatus: "1", ProviderCode: "00", ProviderMessage: "PAYMENT SUCCESS",
		ProviderTransactionID: "9732795", Amount: "137110", Currency: "IDR", Attempts: 1,
		RequestedAt: requested, ResolvedAt: requested.Add(32 * time.Second),
		Metadata: map[string]string{"order_id": "7781", "tenant": "shop-a"},
		Details: json.RawMessage(`{"admin":7500,"datetime":"20180803171608","hp":"6391601202","nominal":129610,` +
			`"noref":"1609626","period":"201405,201407","product_code":"TELKOMPSTN","tr_name":"JAORAH"}`),
	}
}

// BenchmarkEventEncode is NewEvent and the encoding Publish sends.
func BenchmarkEventEncode(b *testing.B) {
	d := benchData()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		ev := NewEvent(d)
		body, err := marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		n = len(body)
	}
	b.ReportMetric(float64(n), "bytes/event")
}

// BenchmarkEventID is the deterministic id (UUIDv5) of every event.
func BenchmarkEventID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		EventID("iak", "ord-7781-status")
	}
}

// acker is a JetStream that acknowledges every publish at once.
type acker struct{}

func (acker) PublishMsg(_ context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return &jetstream.PubAck{Stream: "STATUS_EVENTS"}, nil
}

// BenchmarkPublish is Publish without the network: encoding, the message
// and its headers, the publish options.
func BenchmarkPublish(b *testing.B) {
	p := New(acker{}, "STATUS_EVENTS", "STATUS_DEADLETTER")
	ev := NewEvent(benchData())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Publish(ctx, "status.resolved.iak.success", ev); err != nil {
			b.Fatal(err)
		}
	}
}
