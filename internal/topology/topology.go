// Package topology owns the bridge's JetStream layout: subject names, the
// three streams and the durable pull consumer, how the bridge provisions
// them, and how it checks definitions an operator made instead. deploy/nats
// holds the same definitions as JSON; a test keeps the two in step.
package topology

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subject prefixes of the public contract (SPEC §1).
const (
	RequestPrefix    = "status.requested."
	ResolvedPrefix   = "status.resolved."
	DeadLetterPrefix = "status.deadletter."
)

// Default names (SPEC §1).
const (
	DefaultRequestsStream   = "STATUS_REQUESTS"
	DefaultEventsStream     = "STATUS_EVENTS"
	DefaultDeadLetterStream = "STATUS_DEADLETTER"
	DefaultConsumer         = "bridge"
	DefaultCapacityBucket   = "STATUS_CAPACITY"
	DefaultChecksBucket     = "STATUS_CHECKS"
)

// MaxMessageBytes bounds request and dead-letter messages in the streams.
// The bridge itself refuses request bodies over 64 KiB; the streams accept
// more so that an oversized request published with core NATS is still
// stored, dead-lettered and visible instead of silently dropped.
const MaxMessageBytes = 1 << 20

// Config names the streams and sets what the bridge's defaults leave open.
type Config struct {
	RequestsStream   string
	EventsStream     string
	DeadLetterStream string
	Consumer         string

	// Replicas of every stream (1 standalone, 3 for a cluster).
	Replicas int
	// EventsMaxAge is how long events are kept (SPEC default 7 days).
	EventsMaxAge time.Duration
	// DeadLetterMaxAge is how long dead letters are kept.
	DeadLetterMaxAge time.Duration
	// DuplicateWindow is the events stream's Nats-Msg-Id window; a
	// redelivered request re-publishes its event within it and JetStream
	// drops the copy. At least 10 minutes (SPEC §1).
	DuplicateWindow time.Duration
	// AckWait is the consumer's crash-detection window: a delivery neither
	// acknowledged nor parked within it goes to another replica. It must
	// exceed the longest a delivery can take (a queued wait plus one
	// provider call plus the publish).
	AckWait time.Duration
	// MaxAckPending caps deliveries not yet acknowledged, parked requests
	// included, consumer-wide.
	MaxAckPending int

	// CapacityBucket is the key-value bucket of the providers' shared
	// call budgets, circuit breakers and recent answers per reference.
	CapacityBucket string
	// ChecksBucket is the key-value bucket of each request's state (its
	// answered checks, next check and outcome); ChecksMaxAge bounds how
	// long an entry outlives its last update: at least the furthest
	// deadline a request may set, and at least EventsMaxAge, so that a
	// request can be inspected as long as its event is kept.
	ChecksBucket string
	ChecksMaxAge time.Duration
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	for what, name := range map[string]string{
		"requests stream": c.RequestsStream, "events stream": c.EventsStream,
		"dead-letter stream": c.DeadLetterStream, "consumer": c.Consumer,
		"capacity bucket": c.CapacityBucket, "checks bucket": c.ChecksBucket,
	} {
		if !nameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s name %q must be 1-64 of A-Z a-z 0-9 _ -", what, name))
		}
	}
	if c.RequestsStream == c.EventsStream || c.RequestsStream == c.DeadLetterStream || c.EventsStream == c.DeadLetterStream {
		errs = append(errs, errors.New("the three streams need distinct names"))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream replicas %d must be 1 to 5", c.Replicas))
	}
	if c.DuplicateWindow < 10*time.Minute {
		errs = append(errs, fmt.Errorf("duplicate window %v must be at least 10m", c.DuplicateWindow))
	}
	if c.EventsMaxAge < c.DuplicateWindow {
		errs = append(errs, fmt.Errorf("events max age %v must be at least the duplicate window %v", c.EventsMaxAge, c.DuplicateWindow))
	}
	if c.DeadLetterMaxAge <= 0 {
		errs = append(errs, errors.New("dead-letter max age must be positive"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ack wait %v must be at least 1s", c.AckWait))
	}
	if c.MaxAckPending < 1 {
		errs = append(errs, errors.New("max ack pending must be positive"))
	}
	if c.CapacityBucket == c.ChecksBucket {
		errs = append(errs, errors.New("the capacity and checks buckets need distinct names"))
	}
	if c.ChecksMaxAge <= 0 {
		errs = append(errs, errors.New("checks max age must be positive"))
	}
	return errors.Join(errs...)
}

// RequestsStreamConfig is the work queue of status.requested.<provider>.
// One token after the prefix only: a subject with more tokens is not a
// request and is not stored.
func (c Config) RequestsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        c.RequestsStream,
		Description: "statusbridge: status checks requested, one message per request until it is resolved",
		Subjects:    []string{RequestPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
		MaxMsgSize:  MaxMessageBytes,
		// Requesters set Nats-Msg-Id to their request_id: a re-sent
		// request inside this window is stored once.
		Duplicates: c.DuplicateWindow,
	}
}

// EventsStreamConfig keeps status.resolved.<provider>.<status>.
func (c Config) EventsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        c.EventsStream,
		Description: "statusbridge: status.resolved CloudEvents, one per request",
		Subjects:    []string{ResolvedPrefix + "*.*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.EventsMaxAge,
		Duplicates:  c.DuplicateWindow,
	}
}

// DeadLetterStreamConfig keeps status.deadletter.<provider>.
func (c Config) DeadLetterStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        c.DeadLetterStream,
		Description: "statusbridge: requests too broken to answer, kept for inspection and replay",
		Subjects:    []string{DeadLetterPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.DeadLetterMaxAge,
		MaxMsgSize:  MaxMessageBytes + 4096, // the request plus our headers
		Duplicates:  2 * time.Minute,
	}
}

// ConsumerConfig is the durable pull consumer every replica shares. There
// is no BackOff list: the bridge schedules each re-check with NakWithDelay,
// and a BackOff list would both replace AckWait and inflate those delays.
// MaxDeliver is unlimited because every scheduled re-check is a delivery;
// the request's deadline is the real budget, and the bridge always gets to
// publish "expired" itself. The filter is "status.requested.>", not ".*":
// a request published on the literal subject "status.requested.>" is
// stored by the stream, and JetStream matches a stored ">" as a wildcard,
// which ".*" never delivers; it would sit in the work queue unanswered.
func (c Config) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Consumer,
		Description:   "statusbridge: shared by every bridge replica",
		FilterSubject: RequestPrefix + ">",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// capacityStateMaxAge is how long an untouched budget, breaker or shared
// answer is kept: none of them means anything after an hour of silence.
const capacityStateMaxAge = time.Hour

// CapacityBucketConfig holds the shared budgets, breakers and recent
// answers. A limited provider's every call writes it; it is kept on file
// all the same, so that a restarted NATS server still has it (a bucket in
// memory would be gone, and with it every replica's watch).
func (c Config) CapacityBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      c.CapacityBucket,
		Description: "statusbridge: providers' shared call budgets, circuit breakers, recent answers per reference",
		History:     1,
		TTL:         capacityStateMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// ChecksBucketConfig holds each request's state: its answered checks,
// which set its schedule and its event's attempts, its next check, and its
// outcome once settled (what bridge inspect and bridge cancel read and
// write). It is written when a request is parked or checked and when it is
// settled, and survives restarts.
func (c Config) ChecksBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         c.ChecksBucket,
		Description:    "statusbridge: state of each request: answered checks, next check, outcome",
		History:        1,
		TTL:            c.ChecksMaxAge,
		Storage:        jetstream.FileStorage,
		Replicas:       c.Replicas,
		LimitMarkerTTL: time.Hour,
	}
}

// Buckets are the key-value buckets the bridge keeps its shared state in.
type Buckets struct {
	Capacity jetstream.KeyValue
	Checks   jetstream.KeyValue
}

// OpenBuckets binds to the key-value buckets (made by Provision, or by an
// operator from deploy/nats).
func OpenBuckets(ctx context.Context, js jetstream.JetStream, c Config) (Buckets, error) {
	var b Buckets
	var errs []error
	for _, kc := range []struct {
		name string
		kv   *jetstream.KeyValue
	}{{c.CapacityBucket, &b.Capacity}, {c.ChecksBucket, &b.Checks}} {
		var err error
		if *kc.kv, err = js.KeyValue(ctx, kc.name); err != nil {
			errs = append(errs, fmt.Errorf("key-value bucket %s: %w", kc.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return b, fmt.Errorf("the bridge's key-value buckets are missing (BRIDGE_PROVISION=false needs the operator's definitions, see deploy/nats): %w", err)
	}
	return b, nil
}

// Provision creates or updates the three streams, the two key-value
// buckets and the consumer, and returns the consumer. Running it again with
// the same Config changes nothing.
func Provision(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Consumer, error) {
	for _, sc := range []jetstream.StreamConfig{c.RequestsStreamConfig(), c.EventsStreamConfig(), c.DeadLetterStreamConfig()} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range []jetstream.KeyValueConfig{c.CapacityBucketConfig(), c.ChecksBucketConfig()} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return nil, fmt.Errorf("provision key-value bucket %s: %w", kc.Bucket, err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, c.RequestsStream, c.ConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("provision consumer %s on %s: %w", c.Consumer, c.RequestsStream, err)
	}
	return cons, nil
}

// Bind finds streams and a consumer an operator made (BRIDGE_PROVISION=false)
// and checks that they can carry the bridge's guarantees. Every problem is
// reported at once.
func Bind(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Consumer, error) {
	var errs []error
	check := func(want jetstream.StreamConfig) {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", want.Name, err))
			return
		}
		got := s.CachedInfo().Config
		if got.Retention != want.Retention {
			errs = append(errs, fmt.Errorf("stream %s: retention is %v, want %v", want.Name, got.Retention, want.Retention))
		}
		if !covers(got.Subjects, want.Subjects[0]) {
			errs = append(errs, fmt.Errorf("stream %s: subjects %v do not include %s", want.Name, got.Subjects, want.Subjects[0]))
		}
		if want.Name == c.EventsStream && got.Duplicates < 10*time.Minute {
			errs = append(errs, fmt.Errorf("stream %s: duplicate window %v is under 10m", want.Name, got.Duplicates))
		}
	}
	check(c.RequestsStreamConfig())
	check(c.EventsStreamConfig())
	check(c.DeadLetterStreamConfig())

	unusable := func() error {
		return fmt.Errorf("BRIDGE_PROVISION=false, but the operator's definitions are not usable (see deploy/nats): %w", errors.Join(errs...))
	}
	cons, err := js.Consumer(ctx, c.RequestsStream, c.Consumer)
	if err != nil {
		errs = append(errs, fmt.Errorf("consumer %s on %s: %w", c.Consumer, c.RequestsStream, err))
		return nil, unusable()
	}
	got := cons.CachedInfo().Config
	switch {
	case got.Durable == "":
		errs = append(errs, fmt.Errorf("consumer %s: must be durable", c.Consumer))
	case got.AckPolicy != jetstream.AckExplicitPolicy:
		errs = append(errs, fmt.Errorf("consumer %s: ack policy is %v, want explicit", c.Consumer, got.AckPolicy))
	}
	if len(got.BackOff) > 0 {
		errs = append(errs, fmt.Errorf("consumer %s: has a BackOff list; remove it (it replaces AckWait and inflates scheduled re-checks)", c.Consumer))
	}
	if got.MaxDeliver != -1 && got.MaxDeliver < 1000 {
		errs = append(errs, fmt.Errorf("consumer %s: MaxDeliver %d would drop requests before their deadline; use -1", c.Consumer, got.MaxDeliver))
	}
	if got.FilterSubject != "" && got.FilterSubject != RequestPrefix+"*" && got.FilterSubject != RequestPrefix+">" {
		errs = append(errs, fmt.Errorf("consumer %s: filter %q does not take every request", c.Consumer, got.FilterSubject))
	}
	if len(errs) > 0 {
		return nil, unusable()
	}
	return cons, nil
}

// covers reports whether one of subjects includes every subject matching
// want ("status.requested.*" is covered by itself, "status.requested.>" or
// "status.>").
func covers(subjects []string, want string) bool {
	for _, s := range subjects {
		if s == want || s == ">" {
			return true
		}
		if n := len(s); n > 1 && s[n-1] == '>' && len(want) >= n-1 && want[:n-1] == s[:n-1] {
			return true
		}
	}
	return false
}

// RequestSubject is where requests for provider are published.
func RequestSubject(provider string) string { return RequestPrefix + provider }

// ResolvedSubject is where provider's events with status are published.
func ResolvedSubject(provider, status string) string {
	return ResolvedPrefix + provider + "." + status
}

// DeadLetterSubject is where provider's undecodable requests go.
func DeadLetterSubject(provider string) string { return DeadLetterPrefix + provider }
