package subscriber

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	encjson "encoding/json"
	"errors"
	"sync"
	"time"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
)

// checkState is what the bridge keeps of a request in the checks bucket,
// from its first park until its event is out and for as long as events are
// kept after: JetStream's delivery count also counts refusals and waits,
// which must not advance the schedule, and `bridge inspect` and `bridge
// cancel` read and settle requests that JetStream holds parked. A record
// belongs to one publish of the request (Seq); a record of another one is
// no state of this request's.
type checkState struct {
	Attempts    int    `json:"attempts"`              // answered checks that served the request
	LastCheck   int64  `json:"last_check,omitzero"`   // unix ns of the last answered check
	LastOutcome string `json:"last_outcome,omitzero"` // as the checks metric names it
	// TraceParent and TraceState are the request's trace context, so that
	// an event published outside its delivery stays in its trace.
	TraceParent string `json:"traceparent,omitzero"`
	TraceState  string `json:"tracestate,omitzero"`

	RequestID   string            `json:"request_id,omitzero"`
	Provider    string            `json:"provider,omitzero"`
	Reference   string            `json:"reference,omitzero"`
	Seq         uint64            `json:"stream_seq,omitzero"` // the request's sequence in the requests stream
	RequestedAt time.Time         `json:"requested_at,omitzero"`
	Deadline    time.Time         `json:"deadline,omitzero"`
	Metadata    map[string]string `json:"metadata,omitzero"`
	// NextCheck is when the parked request is delivered again, as of its
	// last write; once it has passed, the request is being checked or
	// waits for its provider's capacity.
	NextCheck time.Time `json:"next_check,omitzero"`
	// Event is the request's event, once the request is settled: written
	// before the event is published, so that a delivery and a cancel cannot
	// both settle it, and whoever finds it settled publishes this event.
	Event *publisher.Data `json:"event,omitzero"`
	// Published records the event's PubAck when it was published outside
	// a delivery (a cancel): the parked delivery then only acks. A delivery
	// acks its request after the PubAck instead of recording it.
	Published bool `json:"published,omitzero"`
}

// settled reports whether the request's event is decided.
func (st checkState) settled() bool { return st.Event != nil }

// checkKey is the request's key in the checks bucket. Request ids may hold
// characters a key may not (':'), and are the requester's choice: hashed.
func checkKey(provider, requestID string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + requestID))
	return "req." + hex.EncodeToString(sum[:20])
}

// refKey is a reference's key in the capacity bucket.
func refKey(provider, reference string) string {
	sum := sha256.Sum256([]byte(reference))
	return "ref." + provider + "." + hex.EncodeToString(sum[:20])
}

// sharedAnswer is the latest answer about one reference, for every open
// request with that reference on any replica, or a claim that a check of it
// is under way.
type sharedAnswer struct {
	AnsweredAt    int64         `json:"answered_at,omitzero"`    // unix ns
	CheckingUntil int64         `json:"checking_until,omitzero"` // unix ns: a replica is checking until then
	Result        *storedResult `json:"result,omitzero"`
	// Trace is the traceparent of the check's span, when it was traced.
	Trace string `json:"trace,omitzero"`
}

// storedResult is providers.Result as stored.
type storedResult struct {
	State         string         `json:"state"`
	Status        string         `json:"status,omitzero"`
	Code          string         `json:"code,omitzero"`
	Message       string         `json:"message,omitzero"`
	TransactionID string         `json:"transaction_id,omitzero"`
	Amount        string         `json:"amount,omitzero"`
	Currency      string         `json:"currency,omitzero"`
	Details       jsontext.Value `json:"details,omitzero"`
}

func storeResult(r providers.Result) *storedResult {
	return &storedResult{
		State: r.State.String(), Status: r.Status, Code: r.Code, Message: r.Message,
		TransactionID: r.TransactionID, Amount: string(r.Amount), Currency: r.Currency, Details: jsontext.Value(r.Details),
	}
}

func (s *storedResult) result() (providers.Result, bool) {
	var st providers.State
	for _, c := range []providers.State{providers.StatePending, providers.StateSuccess, providers.StateFailed, providers.StateNotFound} {
		if c.String() == s.State {
			st = c
		}
	}
	if st == 0 {
		return providers.Result{}, false
	}
	return providers.Result{
		State: st, Status: s.Status, Code: s.Code, Message: s.Message, TransactionID: s.TransactionID,
		Amount: encjson.Number(s.Amount), Currency: s.Currency, Details: encjson.RawMessage(s.Details),
	}, true
}

// checkOutcome is what a due check came to.
type checkOutcome struct {
	res providers.Result
	err error
	// answered: the provider answered, for this request or another with the
	// same reference, so the check counts as one of its attempts. A refusal
	// (429, 5xx, timeout, connection error) is not an answer.
	answered bool
	// hold, when positive, says no check was made: the request waits that
	// long (the rate limit, an open breaker, or another replica's check of
	// the same reference).
	hold time.Duration
	at   time.Time // when the answer was given
	// span is the recorded span of the check that made the call, and via
	// says where a shared answer came from (see trace.go).
	span trace.SpanContext
	via  string
}

// refused reports whether err says the provider did not answer: it was
// over its rate, down or unreachable. Such a check does not consume a step
// of the schedule.
func refused(err error) bool {
	return errors.Is(err, providers.ErrRateLimited) || errors.Is(err, providers.ErrUnavailable) || errors.Is(err, providers.ErrTransport)
}

// gateOutcome classifies a call for the provider's gate.
func gateOutcome(err error) capacity.Outcome {
	switch {
	case errors.Is(err, providers.ErrRateLimited):
		return capacity.Refused
	case errors.Is(err, providers.ErrUnavailable), errors.Is(err, providers.ErrTransport):
		return capacity.Failed
	}
	return capacity.Answered
}

// flight is one check of a reference in this replica, which other
// deliveries of the same reference join instead of calling themselves.
// An answer stays usable for fresh after it was given.
type flight struct {
	done    chan struct{}
	out     checkOutcome
	waiters int
	// span is the leader's call span while it runs, and links the traces
	// of requests that joined before it started (see trace.go).
	span  trace.Span
	links []trace.Link
}

type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// join returns the flight of key that can serve a request whose last
// answered check was at lastCheck: one under way, or one that answered
// after lastCheck and less than fresh ago. Otherwise it starts a flight
// that the caller leads and must finish.
func (fs *flights) join(key string, now, lastCheck time.Time, fresh time.Duration) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[key]; f != nil {
		select {
		case <-f.done:
			if f.out.at.After(lastCheck) && now.Sub(f.out.at) < fresh {
				return f, false
			}
		default:
			f.waiters++
			return f, false
		}
	}
	f = &flight{done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// finish hands the leader's outcome to the flight's waiters. Only an
// answer stays for later requests; a refusal or a hold is not kept.
func (fs *flights) finish(key string, f *flight, o checkOutcome) (waiters int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f.out = o
	close(f.done)
	if !(o.answered && o.err == nil) && fs.m[key] == f {
		delete(fs.m, key)
	}
	return f.waiters
}

// sweep forgets answers older than fresh.
func (fs *flights) sweep(now time.Time, fresh time.Duration) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for k, f := range fs.m {
		select {
		case <-f.done:
			if now.Sub(f.out.at) >= fresh {
				delete(fs.m, k)
			}
		default:
		}
	}
}

// fresh is how long an answer about a reference serves a request whose
// answered checks are attempts: half the wait its schedule makes after
// them, at least a second. Using an answer that old checks the request no
// more often than its schedule does, and the answer is newer than its last
// check by construction.
func (s *Subscriber) fresh(provider string, attempts int) time.Duration {
	return max(time.Second, s.cfg.Schedules[provider].Delay(max(attempts, 1), nil)/2)
}

// localFresh bounds how long this replica keeps an answer for requests
// that join it: requests that arrive together; the parked ones read the
// shared answers.
const localFresh = 2 * time.Second

// check makes the request's due check: from an answer about the same
// reference that is fresh for it, by joining a check of the reference under
// way in this replica, or by calling the provider when its gate admits it.
func (s *Subscriber) check(ctx context.Context, d *delivery, req Request, client providers.Provider, st checkState) checkOutcome {
	key := d.provider + "\x00" + req.Reference
	var start time.Time
	if d.parent.IsValid() {
		start = time.Now()
	}
	f, leader := s.flights.join(key, s.now(), time.Unix(0, st.LastCheck), min(localFresh, s.fresh(d.provider, st.Attempts)))
	if !leader {
		s.flights.link(f, d)
		wctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout+s.cfg.PublishTimeout)
		defer cancel()
		select {
		case <-f.done:
		case <-wctx.Done():
			return checkOutcome{hold: time.Second}
		}
		if f.out.answered {
			s.capm.Coalesced.WithLabelValues(d.provider).Inc()
		}
		s.traceShared(ctx, d, start, f.out, viaFlight)
		return f.out
	}
	o := s.checkShared(ctx, d, req, client, st, key, f)
	s.flights.finish(key, f, o)
	if o.via == viaBucket {
		s.traceShared(ctx, d, start, o, viaBucket)
	}
	return o
}

// checkShared looks for an answer about the reference that another
// request shared, on any replica, then calls the provider within its gate,
// and shares the answer when other requests want it. An answer serves a
// request when it is newer than the request's last answered check (or,
// for a first check, than its publish, less fresh) and, unless final, at
// most fresh old. A reference asked about once is read once and never
// written: it is claimed and shared only once other requests showed up.
func (s *Subscriber) checkShared(ctx context.Context, d *delivery, req Request, client providers.Provider, st checkState, key string, f *flight) checkOutcome {
	kv := s.capacityKV
	rk := refKey(d.provider, req.Reference)
	var shared sharedAnswer
	var rev uint64
	readShared := false
	if kv != nil {
		shared, rev = s.loadShared(ctx, d.provider, rk)
		now := s.now()
		fresh := s.fresh(d.provider, st.Attempts)
		after := max(st.LastCheck, d.requestedAt.Add(-fresh).UnixNano())
		if r := shared.Result; r != nil && shared.AnsweredAt > after {
			if res, ok := r.result(); ok && (res.State.Final() || now.Sub(time.Unix(0, shared.AnsweredAt)) < fresh) {
				s.capm.Coalesced.WithLabelValues(d.provider).Inc()
				return checkOutcome{res: res, answered: true, at: time.Unix(0, shared.AnsweredAt), span: spanOf(shared.Trace), via: viaBucket}
			}
		}
		if until := time.Unix(0, shared.CheckingUntil); until.After(now) {
			// Back soon: the check under way answers within its latency.
			return checkOutcome{hold: min(until.Sub(now), 250*time.Millisecond)}
		}
		// A request checked before, or a reference others asked about.
		readShared = st.Attempts > 0 || rev > 0
	}

	if readShared {
		// Claim the reference's check before asking the gate, so that a
		// probe the gate grants is always made.
		claim := shared
		claim.CheckingUntil = s.now().Add(s.cfg.RequestTimeout + s.cfg.PublishTimeout).UnixNano()
		r, err := s.swapShared(ctx, rk, claim, rev)
		if err != nil {
			// Another replica claimed it first; its answer will serve.
			return checkOutcome{hold: 250 * time.Millisecond}
		}
		shared, rev = claim, r
	}
	release := func() {
		if readShared {
			shared.CheckingUntil = 0
			_, _ = s.swapShared(ctx, rk, shared, rev)
		}
	}
	var ticket capacity.Ticket
	gate := s.gates[d.provider]
	if gate != nil {
		t, wait, err := gate.Admit(ctx)
		if err != nil {
			release()
			d.log().Warn("provider capacity state unavailable; the check waits", "err", err)
			return checkOutcome{hold: time.Second}
		}
		if wait > 0 {
			release()
			return checkOutcome{hold: wait}
		}
		ticket = t
	}

	start := time.Now()
	cctx, span := s.startCall(ctx, d, f)
	cctx, cancel := context.WithTimeout(cctx, s.cfg.RequestTimeout)
	res, err := client.Status(cctx, providers.Query{Reference: req.Reference})
	cancel()
	if gate != nil {
		gate.Done(ctx, ticket, gateOutcome(err))
	}
	s.perReq.checkDuration.With(d.provider).Observe(time.Since(start).Seconds())
	s.perReq.checks.With(d.provider, outcomeLabel(res, err)).Inc()
	s.logCheck(ctx, d, res, err)
	o := checkOutcome{res: res, err: err, answered: !refused(err), at: s.now()}

	s.flights.mu.Lock()
	wanted := f.waiters > 0
	waiters := f.waiters
	s.flights.mu.Unlock()
	o.span = endCall(span, res, err, waiters)
	switch {
	case kv == nil:
	case o.answered && err == nil && (readShared || wanted):
		_, _ = s.putShared(ctx, d.provider, rk, sharedAnswer{AnsweredAt: o.at.UnixNano(), Result: storeResult(res), Trace: traceparent(o.span)})
	default:
		release()
	}
	return o
}

func (s *Subscriber) loadShared(ctx context.Context, provider, key string) (sharedAnswer, uint64) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	var a sharedAnswer
	e, err := s.capacityKV.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			s.capm.StateErrors.WithLabelValues(provider).Inc()
		}
		return a, 0
	}
	if json.Unmarshal(e.Value(), &a) != nil {
		return sharedAnswer{}, e.Revision()
	}
	return a, e.Revision()
}

func (s *Subscriber) swapShared(ctx context.Context, key string, a sharedAnswer, rev uint64) (uint64, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if rev == 0 {
		return s.capacityKV.Create(ctx, key, b)
	}
	return s.capacityKV.Update(ctx, key, b, rev)
}

func (s *Subscriber) putShared(ctx context.Context, provider, key string, a sharedAnswer) (uint64, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	rev, err := s.capacityKV.Put(ctx, key, b)
	if err != nil {
		s.capm.StateErrors.WithLabelValues(provider).Inc()
	}
	return rev, err
}

// loadState reads what the checks bucket holds for the request, and the
// entry's revision (0: none), which a write must follow. A first delivery
// has nothing there and reads nothing; an entry of another publish of the
// same request_id counts as none.
func (s *Subscriber) loadState(ctx context.Context, d *delivery) (checkState, uint64) {
	if s.checksKV == nil || d.attempt <= 1 {
		return checkState{}, 0
	}
	st, rev, err := s.readState(ctx, d.provider, d.requestID)
	if err != nil {
		s.capm.StateErrors.WithLabelValues(d.provider).Inc()
		d.log().Warn("could not read the request's checks; counting from none", "err", err)
		return checkState{}, 0
	}
	if st.Seq != d.seq && st.Seq != 0 {
		return checkState{}, rev
	}
	// (An entry without a sequence was written by an earlier version,
	// which kept only the checks of the request parked now.)
	return st, rev
}

// readState reads one request's entry; a missing one is the zero state
// and revision 0, and one that does not decode is the zero state at its
// revision (the next write replaces it).
func (s *Subscriber) readState(ctx context.Context, provider, requestID string) (checkState, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	var st checkState
	e, err := s.checksKV.Get(ctx, checkKey(provider, requestID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	if json.Unmarshal(e.Value(), &st) != nil {
		return checkState{}, e.Revision(), nil
	}
	return st, e.Revision(), nil
}

// saveState writes the request's state over revision rev, the one the
// delivery read (0: none), so that nothing written since, such as a
// cancel, is overwritten. When another writer settled the request first,
// it returns that state as won; an entry of another publish of the
// request_id is replaced. A bucket that cannot be written is logged and
// counted, and the delivery goes on as if it had been.
func (s *Subscriber) saveState(ctx context.Context, d *delivery, st checkState, rev uint64) (newRev uint64, won *checkState) {
	if s.checksKV == nil {
		return 0, nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return 0, nil
	}
	key := checkKey(d.provider, d.requestID)
	for range 3 {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		if rev == 0 {
			newRev, err = s.checksKV.Create(wctx, key, b)
		} else {
			newRev, err = s.checksKV.Update(wctx, key, b, rev)
		}
		cancel()
		if err == nil {
			return newRev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			break
		}
		cur, r, rerr := s.readState(ctx, d.provider, d.requestID)
		if rerr != nil {
			err = rerr
			break
		}
		if cur.Seq == d.seq && cur.settled() {
			return 0, &cur
		}
		rev = r
	}
	s.capm.StateErrors.WithLabelValues(d.provider).Inc()
	d.log().Warn("could not record the request's state; its next check may come early", "err", err)
	return 0, nil
}
