package daemon_test

// The NATS roles of deploy/nats/nats.conf, proven on a server started from
// exactly that file: the provisioner creates what the bridge binds to, the
// bridge does all its work with its role alone, and each role is refused
// wherever it does not belong.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/providers"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// natsConf is the shipped server configuration, seen from this package.
const natsConf = "../../deploy/nats/nats.conf"

// roleConn is one role's connection, with the permission violations the
// server reported to it.
type roleConn struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu         sync.Mutex
	violations []string
	changed    chan struct{}
}

func connectAs(t *testing.T, url, user, password string) *roleConn {
	t.Helper()
	r := &roleConn{user: user, changed: make(chan struct{}, 1)}
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.Name("test "+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				r.mu.Lock()
				r.violations = append(r.violations, err.Error())
				r.mu.Unlock()
				select {
				case r.changed <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	r.nc = nc
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitViolation waits until the server reported a permissions violation
// naming subject to this connection.
func (r *roleConn) waitViolation(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for _, v := range r.violations {
			if strings.Contains(v, `"`+subject+`"`) {
				r.mu.Unlock()
				return
			}
		}
		seen := r.violations
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("%s: no permissions violation for %s reported (saw %q)", r.user, subject, seen)
		}
	}
}

// refusalWait is how long a refused call waits for the answer that never
// comes: the server refuses silently and reports the violation to the
// connection, which is what the checks below wait for. An allowed call
// answered later than this still fails them, for want of a violation.
const refusalWait = 150 * time.Millisecond

// refusedPublish asserts that a JetStream publish on subject as r gets no
// PubAck and that the server reports the violation.
func (r *roleConn) refusedPublish(t *testing.T, subject string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), refusalWait)
	defer cancel()
	if ack, err := r.js.Publish(ctx, subject, body, jetstream.WithMsgID("forged-"+subject)); err == nil {
		t.Errorf("%s published on %s: stored as %s #%d", r.user, subject, ack.Stream, ack.Sequence)
		return
	}
	r.waitViolation(t, subject)
}

// refusedRequest asserts that a core request on subject as r is refused.
func (r *roleConn) refusedRequest(t *testing.T, subject string) {
	t.Helper()
	if m, err := r.nc.Request(subject, []byte("x"), refusalWait); err == nil {
		t.Errorf("%s: request on %s answered: %s", r.user, subject, m.Data)
		return
	}
	r.waitViolation(t, subject)
}

// rolesConfig lets a limiter, a breaker, coalescing and the deadline all
// happen within seconds.
func rolesConfig(c *config.Config) {
	c.LogLevel = "info"
	c.IAK.Rate.Limit = 50
	c.Breaker.Failures, c.Breaker.Cooldown, c.Breaker.MaxCooldown = 2, 200*time.Millisecond, 500*time.Millisecond
}

func TestNATSRoles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, rolesConfig)
	s, passwords := daemontest.StartNATSFromConfig(t, natsConf, nil)
	url := s.ClientURL()
	roles := map[string]*roleConn{}
	for user, pw := range passwords {
		roles[user] = connectAs(t, url, user, pw)
	}
	prov, req, sub, bridge := roles["provisioner"], roles["requester"], roles["subscriber"], roles["bridge"]
	ctx := t.Context()
	topo := w.Config.Topology()

	// Nobody without a user gets in.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("an anonymous client connected to a server running deploy/nats/nats.conf")
	}

	// (a) The provisioner creates everything, as BRIDGE_PROVISION=true does.
	if _, err := topology.Provision(ctx, prov.js, topo); err != nil {
		t.Fatalf("provisioner: %v", err)
	}
	w.UseNATS(url, nats.UserInfo("provisioner", passwords["provisioner"])) // the World reads streams as the operator

	// (b) The bridge, binding with its role alone, resolves requests that end
	// in every way and keeps its shared state.
	w.Config.NatsUser, w.Config.NatsPassword, w.Config.Provision = "bridge", providers.Secret(passwords["bridge"]), false
	// It signs its events, which subscribers check below.
	signer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := signer.Seed()
	signerKey, _ := signer.PublicKey()
	w.Config.EventSigningSeedFile = writeSecret(t, "events.nk", string(seed)+"\n")
	w.Config.CallbackAddr = "127.0.0.1:0"
	b := w.StartBridge()
	w.Sim.SetCallbackURL("http://" + b.CallbackAddr + "/callbacks/ayopop")

	soon := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	cases := []struct{ id, provider, reference, extra, status, reason string }{
		{"roles-success", "iak", "pending,success#roles-1", "", publisher.StatusSuccess, ""},
		{"roles-failed", "iak", "failed#roles-2", "", publisher.StatusFailed, publisher.ReasonProviderFailed},
		{"roles-expired", "iak", "pending#roles-3", `,"deadline":"` + soon + `"`, publisher.StatusExpired, publisher.ReasonDeadline},
		{"roles-rejected", "paypal", "x", "", publisher.StatusRejected, publisher.ReasonUnknownProvider},
		// Two requests for one reference share their checks.
		{"roles-shared-a", "iak", "pending*2,success#roles-shared", "", publisher.StatusSuccess, ""},
		{"roles-shared-b", "iak", "pending*2,success#roles-shared", "", publisher.StatusSuccess, ""},
		// Failures that open Ayopop's breaker, then an answer.
		{"roles-breaker", "ayopop", "error500*3,success#roles-brk", "", publisher.StatusSuccess, ""},
	}
	var ids []string
	for _, c := range cases {
		body := fmt.Sprintf(`{"request_id":%q,"provider":%q,"reference":%q%s}`, c.id, c.provider, c.reference, c.extra)
		if _, err := req.js.Publish(ctx, topology.RequestSubject(c.provider), []byte(body), jetstream.WithMsgID(c.id)); err != nil {
			t.Fatalf("requester: publish %s: %v", c.id, err)
		}
		ids = append(ids, publisher.EventID(c.provider, c.id))
	}
	if _, err := req.js.Publish(ctx, topology.RequestSubject("iak"), []byte("not json")); err != nil {
		t.Fatalf("requester: publish: %v", err)
	}
	got := w.WaitEvents(20*time.Second, ids...)
	for i, c := range cases {
		e := got[ids[i]]
		if d := e.Event.Data; d.Status != c.status || d.Reason != c.reason {
			t.Errorf("%s: %s/%s, want %s/%s", c.id, d.Status, d.Reason, c.status, c.reason)
		}
		if want := topology.ResolvedSubject(c.provider, c.status); e.Subject != want {
			t.Errorf("%s: on %s, want %s", c.id, e.Subject, want)
		}
	}
	if a := got[ids[0]].Event.Data.Attempts; a != 2 {
		t.Errorf("attempts %d, want 2: the checks bucket was not kept", a)
	}
	w.WaitSettled(10*time.Second, uint64(len(cases)), 1)

	// The state the bridge keeps in its buckets.
	capKV, err := w.JS.KeyValue(ctx, topo.CapacityBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := capKV.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var refs int
	for _, k := range keys {
		if strings.HasPrefix(k, "ref.iak.") {
			refs++
		}
	}
	if !slices.Contains(keys, "rate.iak") || !slices.Contains(keys, "breaker.ayopop") || refs == 0 {
		t.Errorf("capacity bucket keys %v: want the limiter's rate.iak, Ayopop's breaker and shared answers (ref.iak.*)", keys)
	}
	if st := w.StreamInfo("KV_" + topo.ChecksBucket).State; st.LastSeq == 0 {
		t.Error("the checks bucket was never written")
	}
	if v := b.Metric(t, `statusbridge_breaker_opened_total{provider="ayopop"}`); v < 1 {
		t.Errorf("statusbridge_breaker_opened_total{provider=\"ayopop\"} = %v, want the breaker opened", v)
	}
	if v := b.Metric(t, `statusbridge_coalesced_checks_total{provider="iak"}`); v < 1 {
		t.Errorf("statusbridge_coalesced_checks_total{provider=\"iak\"} = %v, want shared checks", v)
	}
	for _, what := range []string{"event", "deadletter"} {
		if v := b.Metric(t, `statusbridge_publish_errors_total{what="`+what+`"}`); v != 0 {
			t.Errorf("%s publish errors: %v", what, v)
		}
	}
	if logs := b.Logs.String(); strings.Contains(logs, string(seed)) || !strings.Contains(logs, signerKey) {
		t.Errorf("the logs should name the signer %s and never hold its seed:\n%s", signerKey, logs)
	}
	if l := strings.ToLower(b.Logs.String()); strings.Contains(l, "permission") || strings.Contains(l, "authorization") {
		t.Errorf("the bridge met a refusal with its own role:\n%s", b.Logs)
	}

	// The `statusbridge` service, served by the bridge with its role: a
	// requester may inspect, only an operator cancel.
	for _, c := range []struct {
		who           *roleConn
		subject, body string
		want          string
	}{
		{req, "status.inspect", "roles-success", `"state":"resolved"`},
		{prov, "status.inspect", "roles-failed", `"state":"resolved"`},
		{prov, "$SRV.PING.statusbridge", "", `"name":"statusbridge"`},
	} {
		m, err := c.who.nc.Request(c.subject, []byte(c.body), 5*time.Second)
		if err != nil || !strings.Contains(string(m.Data), c.want) {
			t.Errorf("%s: request on %s: %v %s", c.who.user, c.subject, err, msgData(m))
		}
	}
	// Callbacks and cancel settle parked requests outside their deliveries:
	// the index of open requests, the checks bucket's watch and the publish
	// all run with the bridge's role.
	for _, id := range []string{"roles-callback", "roles-cancel"} {
		body := fmt.Sprintf(`{"request_id":%q,"provider":"ayopop","reference":"pending*1000,success#%s"}`, id, id)
		if _, err := req.js.Publish(ctx, topology.RequestSubject("ayopop"), []byte(body), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	daemontest.WaitFor(t, 10*time.Second, "both requests parked", func() bool {
		for _, id := range []string{"roles-callback", "roles-cancel"} {
			m, err := req.nc.Request("status.inspect", []byte(id), 5*time.Second)
			if err != nil || !strings.Contains(string(m.Data), `"state":"parked"`) {
				return false
			}
		}
		return true
	})
	if status, err := w.Sim.AyopopCallback(ctx, "pending*1000,success#roles-callback", false); err != nil || status != 200 {
		t.Errorf("callback: %d %v", status, err)
	}
	if m, err := prov.nc.Request("status.cancel", []byte("roles-cancel"), 5*time.Second); err != nil || !strings.Contains(string(m.Data), `"reason":"cancelled"`) {
		t.Errorf("provisioner: cancel: %v %s", err, msgData(m))
	}
	settled := w.WaitEvents(10*time.Second, publisher.EventID("ayopop", "roles-callback"), publisher.EventID("ayopop", "roles-cancel"))
	if d := settled[publisher.EventID("ayopop", "roles-callback")].Event.Data; d.Status != publisher.StatusSuccess {
		t.Errorf("the callback's request: %s/%s", d.Status, d.Reason)
	}
	if d := settled[publisher.EventID("ayopop", "roles-cancel")].Event.Data; d.Status != publisher.StatusExpired || d.Reason != publisher.ReasonCancelled {
		t.Errorf("the cancelled request: %s/%s", d.Status, d.Reason)
	}
	daemontest.WaitFor(t, 10*time.Second, "the callback's confirming check", func() bool {
		return b.Metric(t, `statusbridge_callback_checks_total{provider="ayopop",result="resolved"}`) == 1
	})
	if l := strings.ToLower(b.Logs.String()); strings.Contains(l, "permission") || strings.Contains(l, "authorization") {
		t.Errorf("the bridge met a refusal with its own role:\n%s", b.Logs)
	}
	req.refusedRequest(t, "status.cancel")
	sub.refusedRequest(t, "status.inspect")
	bridge.mu.Lock()
	if len(bridge.violations) > 0 {
		t.Errorf("the bridge's answers were refused: %q", bridge.violations)
	}
	bridge.mu.Unlock()

	// (c) Refusals, each on a connection of its own, all at once.
	events := w.StreamInfo(topo.EventsStream).State.Msgs
	forged := []byte(`{"specversion":"1.0","id":"forged","data":{"request_id":"roles-success","status":"success"}}`)
	type refusal struct {
		user, what string
		try        func(t *testing.T, r *roleConn)
	}
	var refusals []refusal
	add := func(user, what string, try func(t *testing.T, r *roleConn)) {
		refusals = append(refusals, refusal{user, what, try})
	}
	// Nobody but the bridge says how a payment ended.
	for _, user := range []string{"requester", "subscriber", "provisioner"} {
		for _, subject := range []string{"status.resolved.iak.success", "status.resolved.ayopop.failed", "status.deadletter.iak"} {
			add(user, "publish on "+subject, func(t *testing.T, r *roleConn) { r.refusedPublish(t, subject, forged) })
		}
	}
	// The bridge never publishes a request, and administers nothing.
	add("bridge", "publish a request", func(t *testing.T, r *roleConn) {
		r.refusedPublish(t, "status.requested.iak", []byte(`{"request_id":"from-bridge","provider":"iak","reference":"x"}`))
	})
	add("bridge", "create a stream", func(t *testing.T, r *roleConn) {
		refusedAPI(t, r, func(ctx context.Context) error {
			_, err := r.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ROGUE", Subjects: []string{"rogue.>"}})
			return err
		})
	})
	add("bridge", "update its consumer", func(t *testing.T, r *roleConn) {
		refusedAPI(t, r, func(ctx context.Context) error {
			cc := topo.ConsumerConfig()
			cc.MaxAckPending = 1
			_, err := r.js.UpdateConsumer(ctx, topo.RequestsStream, cc)
			return err
		})
	})
	add("bridge", "delete its consumer", func(t *testing.T, r *roleConn) {
		refusedAPI(t, r, func(ctx context.Context) error { return r.js.DeleteConsumer(ctx, topo.RequestsStream, topo.Consumer) })
	})
	// Requesters and subscribers touch neither the streams' configuration
	// nor the bridge's consumer and state.
	for _, user := range []string{"requester", "subscriber"} {
		add(user, "update the events stream", func(t *testing.T, r *roleConn) {
			refusedAPI(t, r, func(ctx context.Context) error {
				sc := topo.EventsStreamConfig()
				sc.MaxAge = time.Minute
				_, err := r.js.UpdateStream(ctx, sc)
				return err
			})
		})
		for _, name := range []string{topo.RequestsStream, topo.EventsStream, topo.DeadLetterStream, "KV_" + topo.CapacityBucket} {
			add(user, "delete stream "+name, func(t *testing.T, r *roleConn) {
				refusedAPI(t, r, func(ctx context.Context) error { return r.js.DeleteStream(ctx, name) })
			})
			add(user, "purge stream "+name, func(t *testing.T, r *roleConn) { r.refusedRequest(t, "$JS.API.STREAM.PURGE."+name) })
		}
		add(user, "delete the bridge's consumer", func(t *testing.T, r *roleConn) {
			refusedAPI(t, r, func(ctx context.Context) error { return r.js.DeleteConsumer(ctx, topo.RequestsStream, topo.Consumer) })
		})
		add(user, "update the bridge's consumer", func(t *testing.T, r *roleConn) {
			refusedAPI(t, r, func(ctx context.Context) error {
				_, err := r.js.UpdateConsumer(ctx, topo.RequestsStream, topo.ConsumerConfig())
				return err
			})
		})
		add(user, "take the bridge's requests", func(t *testing.T, r *roleConn) {
			refusedAPI(t, r, func(ctx context.Context) error {
				_, err := r.js.CreateOrUpdateConsumer(ctx, topo.RequestsStream, jetstream.ConsumerConfig{Durable: "thief", AckPolicy: jetstream.AckExplicitPolicy})
				return err
			})
		})
		for _, bucket := range []string{topo.CapacityBucket, topo.ChecksBucket} {
			add(user, "open bucket "+bucket, func(t *testing.T, r *roleConn) {
				refusedAPI(t, r, func(ctx context.Context) error {
					_, err := r.js.KeyValue(ctx, bucket)
					return err
				})
			})
			add(user, "write bucket "+bucket, func(t *testing.T, r *roleConn) { r.refusedPublish(t, "$KV."+bucket+".rate.iak", []byte(`{}`)) })
			add(user, "read bucket "+bucket, func(t *testing.T, r *roleConn) {
				r.refusedRequest(t, "$JS.API.DIRECT.GET.KV_"+bucket+".$KV."+bucket+".rate.iak")
			})
		}
	}
	t.Run("refused", func(t *testing.T) {
		for _, rf := range refusals {
			t.Run(rf.user+" may not "+rf.what, func(t *testing.T) {
				t.Parallel()
				rf.try(t, connectAs(t, url, rf.user, passwords[rf.user]))
			})
		}
	})
	if n := w.StreamInfo(topo.EventsStream).State.Msgs; n != events {
		t.Errorf("the events stream went from %d to %d messages", events, n)
	}
	if n := w.StreamInfo(topo.DeadLetterStream).State.Msgs; n != 1 {
		t.Errorf("the dead-letter stream holds %d messages, want the bridge's one", n)
	}
	if _, err := capKV.Get(ctx, "rate.iak"); err != nil {
		t.Errorf("rate.iak after the refused writes: %v", err)
	}
	if info := w.ConsumerInfo(); info.Config.MaxAckPending != topo.MaxAckPending {
		t.Errorf("the bridge's consumer changed: max_ack_pending %d", info.Config.MaxAckPending)
	}

	// What subscribers may do: a durable consumer of their own on the
	// events stream, reading and acknowledging every event.
	cons, err := sub.js.CreateOrUpdateConsumer(ctx, topo.EventsStream, jetstream.ConsumerConfig{
		Durable: "notifier", FilterSubject: "status.resolved.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("subscriber: create its consumer: %v", err)
	}
	batch, err := cons.Fetch(len(cases), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for m := range batch.Messages() {
		var ev publisher.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil || !slices.Contains(ids, ev.ID) {
			t.Errorf("subscriber read %s: %v", m.Data(), err)
		}
		if err := publisher.VerifyEvent(m.Data(), m.Headers(), signerKey); err != nil {
			t.Errorf("event %s: %v", ev.ID, err)
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("subscriber: ack: %v", err)
		}
		read++
	}
	if read != len(cases) {
		t.Errorf("subscriber read %d events, want %d (%v)", read, len(cases), batch.Error())
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 || info.AckFloor.Stream == 0 {
		t.Errorf("subscriber's consumer after acks: %+v, %v", info, err)
	}
	if err := sub.js.DeleteConsumer(ctx, topo.EventsStream, "notifier"); err != nil {
		t.Errorf("subscriber: delete its consumer: %v", err)
	}
	// Requesters and subscribers may also see events live, through core
	// NATS.
	var live []*nats.Subscription
	for _, r := range []*roleConn{req, sub} {
		s, err := r.nc.SubscribeSync("status.resolved.>")
		if err != nil {
			t.Fatalf("%s: subscribe to events: %v", r.user, err)
		}
		live = append(live, s)
	}
	if _, err := req.js.Publish(ctx, topology.RequestSubject("iak"), []byte(`{"request_id":"roles-live","provider":"iak","reference":"success#roles-live"}`)); err != nil {
		t.Fatal(err)
	}
	for i, s := range live {
		m, err := s.NextMsg(10 * time.Second)
		if err != nil || !strings.Contains(string(m.Data), `"roles-live"`) {
			t.Errorf("%s: live event: %v", []string{"requester", "subscriber"}[i], err)
		}
	}

	// The bridge stops within its role too (its bucket watch deletes its
	// consumer).
	if err := b.Stop(); err != nil {
		t.Fatalf("bridge stopped with %v", err)
	}
	if l := strings.ToLower(b.Logs.String()); strings.Contains(l, "permission") || strings.Contains(l, "authorization") {
		t.Errorf("the bridge met a refusal while it stopped:\n%s", b.Logs)
	}
}

// refusedAPI asserts that a JetStream API call as r fails and leaves a
// permissions violation behind.
func refusedAPI(t *testing.T, r *roleConn, call func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), refusalWait)
	defer cancel()
	if err := call(ctx); err == nil {
		t.Fatalf("%s: allowed", r.user)
	}
	daemontest.WaitFor(t, 5*time.Second, r.user+": a permissions violation", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.violations) > 0
	})
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}
