// Package rerequest re-submits the requests behind chosen events: for
// example every request that expired with reason auth_rejected in the last
// six hours, once the credentials are fixed. It reads the events stream,
// which echoes each request's id, provider, reference and metadata, and
// publishes new requests under new ids derived from the old ones.
package rerequest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// Metadata keys a re-request adds to the original's metadata.
const (
	// MetaOf is the id of the request first published, that the re-request
	// stands for (SPEC §8).
	MetaOf = "rerequest_of"
	// MetaN is the re-request's number among the re-requests of that
	// original: 1, then 2 when the first one ends the same way again.
	MetaN = "rerequest_n"
)

// maxMetadataKeys is request v1's limit (SPEC §2).
const maxMetadataKeys = 32

// Filter chooses events.
type Filter struct {
	Status string    // required
	Reason string    // empty: any
	Since  time.Time // events stored at or after
}

// Request is one request to re-submit.
type Request struct {
	Subject string `json:"subject"`
	// Body is the request v1; its request_id is also the Nats-Msg-Id.
	Body Body `json:"request"`
	// EventID is the event the request is re-submitted for.
	EventID string `json:"event_id"`
}

// Body is a request v1 as re-submitted.
type Body struct {
	RequestID string            `json:"request_id"`
	Provider  string            `json:"provider"`
	Reference string            `json:"reference"`
	Metadata  map[string]string `json:"metadata"`
}

// Skipped is an event that matched but cannot be re-submitted.
type Skipped struct {
	EventID string `json:"event_id"`
	Why     string `json:"why"`
}

// NewID is the request_id of the n-th re-request of original: "rr-" and
// the first 16 hex digits of sha256(original + ":" + n) (SPEC §8).
func NewID(original string, n int) string {
	sum := sha256.Sum256([]byte(original + ":" + strconv.Itoa(n)))
	return "rr-" + hex.EncodeToString(sum[:8])
}

// Plan reads the events stream from f.Since and returns the requests to
// re-submit for the events that match f. An event of a re-request is
// re-submitted as the next re-request of its original; an event whose
// request was already re-submitted (a later re-request of the same
// original shows among the events read) is passed over, so that only the
// latest of each original counts. Running Plan again before the new
// requests resolve gives the same ids, which JetStream's duplicate window
// drops.
func Plan(ctx context.Context, js jetstream.JetStream, stream string, f Filter) ([]Request, []Skipped, error) {
	if f.Status == "" {
		return nil, nil, errors.New("a status is required")
	}
	start := f.Since
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.ResolvedPrefix + "*.*"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read the events in %s: %w", stream, err)
	}
	type candidate struct {
		ev   publisher.Event
		root string
		n    int // the event's own re-request number, 0 for an original
	}
	var matches []candidate
	latest := map[string]int{} // root id → highest re-request number seen
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, nil, fmt.Errorf("read the events in %s: %w", stream, err)
		}
		got := 0
		pending := uint64(0)
		for m := range batch.Messages() {
			got++
			if meta, err := m.Metadata(); err == nil {
				pending = meta.NumPending
			}
			var ev publisher.Event
			if json.Unmarshal(m.Data(), &ev) != nil || ev.Data.RequestID == "" {
				continue // not an event of ours
			}
			root, n := ev.Data.RequestID, 0
			if of := ev.Data.Metadata[MetaOf]; of != "" {
				root = of
				n, _ = strconv.Atoi(ev.Data.Metadata[MetaN])
			}
			latest[root] = max(latest[root], n)
			if ev.Data.Status == f.Status && (f.Reason == "" || ev.Data.Reason == f.Reason) {
				matches = append(matches, candidate{ev, root, n})
			}
		}
		if err := batch.Error(); err != nil {
			return nil, nil, fmt.Errorf("read the events in %s: %w", stream, err)
		}
		if got == 0 || pending == 0 {
			break
		}
	}

	var out []Request
	var skipped []Skipped
	planned := map[string]bool{}
	for _, c := range matches {
		d := c.ev.Data
		switch {
		case latest[c.root] > c.n || planned[c.root]:
			continue // re-submitted already: a later one shows
		case d.Reference == "":
			skipped = append(skipped, Skipped{c.ev.ID, "the event has no reference"})
			continue
		}
		md := maps.Clone(d.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		md[MetaOf] = c.root
		md[MetaN] = strconv.Itoa(c.n + 1)
		if len(md) > maxMetadataKeys {
			skipped = append(skipped, Skipped{c.ev.ID, fmt.Sprintf("its metadata and %s, %s would be over %d keys", MetaOf, MetaN, maxMetadataKeys)})
			continue
		}
		planned[c.root] = true
		out = append(out, Request{
			Subject: topology.RequestSubject(d.Provider),
			Body:    Body{RequestID: NewID(c.root, c.n+1), Provider: d.Provider, Reference: d.Reference, Metadata: md},
			EventID: c.ev.ID,
		})
	}
	return out, skipped, nil
}

// Send publishes each request with its request_id as Nats-Msg-Id and
// returns once JetStream stored them, or at the first failure with how many
// were stored.
func Send(ctx context.Context, js jetstream.JetStream, reqs []Request) (sent int, err error) {
	for _, r := range reqs {
		body, err := json.Marshal(r.Body, json.Deterministic(true))
		if err != nil {
			return sent, err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.PublishMsg(pctx, &nats.Msg{Subject: r.Subject, Data: body}, jetstream.WithMsgID(r.Body.RequestID))
		cancel()
		if err != nil {
			return sent, fmt.Errorf("publish %s: %w", r.Body.RequestID, err)
		}
		sent++
	}
	return sent, nil
}
