package main

// These tests hold README.md and docs/ to the code: the Go example runs,
// the configuration table is `bridge config`, the metrics tables are what
// /metrics exports, the contract page names what the code publishes, every
// command line shown uses real flags, every link resolves, and nothing the
// bridge does not do is documented.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/publisher"
	"github.com/statusbridge/statusbridge/internal/subscriber"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// repoRoot is the repository seen from this package.
const repoRoot = "../.."

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func between(t *testing.T, s, begin, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, begin)
	if !ok {
		t.Fatalf("marker %q missing", begin)
	}
	inside, _, ok := strings.Cut(after, end)
	if !ok {
		t.Fatalf("marker %q missing", end)
	}
	return inside
}

// docFiles are the pages a reader of the repository sees, by path from
// the repository root: README.md, docs/*.md and deploy/README.md.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 5 {
		t.Fatalf("docs/ has %d pages, want at least contract, configuration, providers, operating and performance", len(pages))
	}
	files := map[string]string{}
	for _, p := range append(pages, filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "deploy", "README.md")) {
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.ToSlash(rel)] = readFile(t, p)
	}
	return files
}

func TestReadmeLength(t *testing.T) {
	t.Parallel()
	if n := strings.Count(readFile(t, repoRoot+"/README.md"), "\n"); n > 250 {
		t.Errorf("README.md has %d lines; keep it at most 250 and move detail to docs/", n)
	}
}

func TestReadmeGoExampleIsThisFile(t *testing.T) {
	t.Parallel()
	readme := between(t, readFile(t, repoRoot+"/README.md"), "<!-- readme-example:begin -->\n```go\n", "```\n<!-- readme-example:end -->")
	code := between(t, readFile(t, "readme_example_test.go"), "// readme-example:begin\n", "\n// readme-example:end\n")
	if readme != code {
		t.Error("the README's Go example differs from readme_example_test.go: copy one to the other")
	}
}

// TestReadmeGoExample runs the README's requester and notifier against a
// bridge: each request's event reaches the notifier once.
func TestReadmeGoExample(t *testing.T) {
	t.Parallel()
	w := daemontest.NewWorld(t)
	w.StartBridge()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, r := range []struct{ id, provider, reference string }{
		{"readme-1", "iak", "pending,success#readme-1"},
		{"readme-2", "ayopop", "failed#readme-2"},
		{"readme-1", "iak", "pending,success#readme-1"}, // re-sent: deduplicated
	} {
		if err := requestStatus(ctx, w.JS, r.id, r.provider, r.reference); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	seenIDs := map[string]bool{}
	got := map[string]resolvedEvent{}
	done := make(chan struct{})
	seen := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		was := seenIDs[id]
		seenIDs[id] = true
		return was
	}
	handle := func(e resolvedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[e.Data.RequestID]; dup {
			t.Errorf("event for %s handled twice", e.Data.RequestID)
		}
		got[e.Data.RequestID] = e
		if len(got) == 2 {
			close(done)
		}
		return nil
	}
	notifyDone := make(chan error, 1)
	go func() { notifyDone <- notify(ctx, w.JS, seen, handle) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("events handled: %v", got)
	}
	cancel()
	if err := <-notifyDone; err != nil {
		t.Fatal(err)
	}
	if e := got["readme-1"]; e.Data.Status != publisher.StatusSuccess || e.Data.Metadata["order_id"] != "7781" || e.ID != publisher.EventID("iak", "readme-1") {
		t.Errorf("readme-1: %+v", e)
	}
	if e := got["readme-2"]; e.Data.Status != publisher.StatusFailed || e.Data.Reason != publisher.ReasonProviderFailed {
		t.Errorf("readme-2: %+v", e)
	}
}

// TestReadmeSandboxOutput: the sandbox output the README shows is the demo
// of this build, line by line.
func TestReadmeSandboxOutput(t *testing.T) {
	t.Parallel()
	readme := readFile(t, repoRoot+"/README.md")
	block := between(t, readme, "```\nsandbox ready:", "```\n")
	abouts := map[string]bool{}
	for _, d := range demoRequests(time.Now()) {
		abouts[d.about] = true
	}
	n := 0
	for line := range strings.Lines(block) {
		m := regexp.MustCompile(`^\s+[0-9.]+s\s+(\S+)\s+(\S+)\s.*\((.+)\)$`).FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			continue
		}
		n++
		if !abouts[m[3]] {
			t.Errorf("README sandbox output shows %q, which is no demo request of cmd/bridge/sandbox.go", m[3])
		}
	}
	if publishing := regexp.MustCompile(`publishing (\d+) demo requests`).FindStringSubmatch(readme); publishing == nil || publishing[1] != strconv.Itoa(len(abouts)) {
		t.Errorf("README says %v demo requests; the sandbox publishes %d", publishing, len(abouts))
	}
	if n < 5 {
		t.Errorf("README sandbox output shows %d events", n)
	}
}

// configDefaults is `bridge config` (config.PrintVariables): every variable
// the code reads and its default, read by the columns of its header.
func configDefaults(t *testing.T) map[string]string {
	t.Helper()
	var out bytes.Buffer
	if err := config.PrintVariables(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	defCol, meanCol := strings.Index(lines[0], "DEFAULT"), strings.Index(lines[0], "MEANING")
	if defCol < 0 || meanCol < defCol {
		t.Fatalf("bridge config header %q", lines[0])
	}
	vars := map[string]string{}
	for _, line := range lines[1:] {
		name := strings.Fields(line)[0]
		def := ""
		if len(line) > defCol {
			def = strings.TrimSpace(line[defCol:min(meanCol, len(line))])
		}
		vars[name] = def
	}
	if len(vars) < 40 {
		t.Fatalf("bridge config printed %d variables", len(vars))
	}
	return vars
}

// providerTokens are the implemented providers as variable names spell them.
func providerTokens(t *testing.T) []string {
	t.Helper()
	clients, _ := config.Default().Providers(nil)
	var out []string
	for name := range clients {
		out = append(out, strings.ToUpper(name))
	}
	slices.Sort(out)
	if len(out) == 0 {
		t.Fatal("config.Providers lists no provider")
	}
	return out
}

// sameDefault compares a default as documented with the code's.
func sameDefault(doc, code string) bool {
	if doc == code {
		return true
	}
	if a, err := time.ParseDuration(doc); err == nil {
		b, err := time.ParseDuration(code)
		return err == nil && a == b
	}
	if a, err := strconv.ParseFloat(doc, 64); err == nil {
		b, err := strconv.ParseFloat(code, 64)
		return err == nil && a == b
	}
	return false
}

var (
	tableRowRE   = regexp.MustCompile("^\\| (`BRIDGE_[^|]*)\\|([^|]*)\\|")
	rowNameRE    = regexp.MustCompile("`(BRIDGE_[A-Z0-9_<>]*[A-Z0-9>])`( \\(`_FILE`\\))?")
	backtickedRE = regexp.MustCompile("`([^`]*)`")
	docVarRE     = regexp.MustCompile(`\bBRIDGE_(?:<PROVIDER>_)?[A-Z0-9_]*[A-Z0-9](_\*)?`)
)

// TestReadmeConfiguration keeps docs/configuration.md and the code in step:
// the table has one row for every variable `bridge config` prints, with the
// same default (per-provider variables as BRIDGE_<PROVIDER>_..., secrets
// with their `_FILE` twin), and no row for anything else. Every BRIDGE_
// name any page mentions exists.
func TestReadmeConfiguration(t *testing.T) {
	t.Parallel()
	vars := configDefaults(t)
	tokens := providerTokens(t)
	doc := readFile(t, repoRoot+"/docs/configuration.md")

	type row struct {
		def  string
		file bool
	}
	rows := map[string]row{}
	for line := range strings.Lines(doc) {
		m := tableRowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		names := rowNameRE.FindAllStringSubmatch(m[1], -1)
		if len(names) != 1 {
			t.Errorf("docs/configuration.md: a row names %d variables, want one per row: %s", len(names), line)
			continue
		}
		name := names[0][1]
		if _, dup := rows[name]; dup {
			t.Errorf("docs/configuration.md: %s has two rows", name)
		}
		rows[name] = row{def: strings.TrimSpace(m[2]), file: names[0][2] != ""}
	}

	// Each variable of the code has its row, with its default.
	template := func(name string) (string, bool) {
		for _, p := range tokens {
			if rest, ok := strings.CutPrefix(name, "BRIDGE_"+p+"_"); ok && (strings.HasPrefix(rest, "BACKOFF_") || strings.HasPrefix(rest, "RATE_")) {
				return "BRIDGE_<PROVIDER>_" + rest, true
			}
		}
		return "", false
	}
	covered := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		def := vars[name]
		if base, ok := strings.CutSuffix(name, "_FILE"); ok {
			if _, secret := vars[base]; secret {
				if r, ok := rows[base]; !ok || !r.file {
					t.Errorf("docs/configuration.md: %s is not in the table as \"`%s` (`_FILE`)\"", name, base)
				}
				continue
			}
		}
		key := name
		if tmpl, ok := template(name); ok {
			key = tmpl
		}
		covered[key] = true
		r, ok := rows[key]
		if !ok {
			t.Errorf("docs/configuration.md: %s has no row", key)
			continue
		}
		var literals []string
		for _, b := range backtickedRE.FindAllStringSubmatch(r.def, -1) {
			if !strings.HasPrefix(b[1], "BRIDGE_") {
				literals = append(literals, b[1])
			}
		}
		switch {
		case def == "" && len(literals) > 0:
			t.Errorf("docs/configuration.md: %s documents default %q; the code has none", key, r.def)
		case def != "" && (len(literals) != 1 || !sameDefault(literals[0], def)):
			t.Errorf("docs/configuration.md: %s documents default %q; the code's is `%s`", key, r.def, def)
		}
	}
	for name := range rows {
		if !covered[name] {
			t.Errorf("docs/configuration.md has a row for %s, which the code does not read", name)
		}
	}
	for _, p := range tokens {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/configuration.md does not say that <PROVIDER> may be `%s`", p)
		}
	}

	// Every BRIDGE_ name on any page is a variable (a <PROVIDER> name is
	// one for every provider; NAME_* is the prefix of some), but for the
	// example of a misspelt one.
	misspelt := map[string]bool{"BRIDGE_NATSURL": true}
	for file, text := range docFiles(t) {
		for _, name := range docVarRE.FindAllString(text, -1) {
			if misspelt[name] {
				continue
			}
			names := []string{name}
			if strings.Contains(name, "<PROVIDER>") {
				names = nil
				for _, p := range tokens {
					names = append(names, strings.Replace(name, "<PROVIDER>", p, 1))
				}
			}
			for _, n := range names {
				if prefix, ok := strings.CutSuffix(n, "*"); ok {
					if !slices.ContainsFunc(slices.Collect(maps.Keys(vars)), func(v string) bool { return strings.HasPrefix(v, prefix) }) {
						t.Errorf("%s names %s, the prefix of no variable", file, name)
					}
					continue
				}
				if _, ok := vars[n]; !ok {
					t.Errorf("%s names %s, which the code does not read", file, n)
				}
			}
		}
	}
}

// scrape returns the statusbridge_ metric families of a /metrics page
// with their type, label names and number of series.
type family struct {
	typ    string
	labels map[string]bool
	series int
}

func scrape(t *testing.T, b *daemontest.Bridge) map[string]*family {
	t.Helper()
	code, body := b.Get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	out := map[string]*family{}
	get := func(name string) *family {
		f := out[name]
		if f == nil {
			f = &family{labels: map[string]bool{}}
			out[name] = f
		}
		return f
	}
	labelRE := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); strings.HasPrefix(f[0], "statusbridge_") {
				get(f[0]).typ = f[1]
			}
			continue
		}
		if !strings.HasPrefix(line, "statusbridge_") {
			continue
		}
		name, labels, _ := strings.Cut(strings.Fields(line)[0], "{")
		f := out[name]
		if f == nil {
			// A histogram's or summary's _bucket, _sum or _count series.
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, s); ok && out[base] != nil {
					f = out[base]
				}
			}
		}
		if f == nil {
			t.Fatalf("/metrics: series %s has no TYPE line", name)
		}
		f.series++
		for _, l := range labelRE.FindAllStringSubmatch(labels, -1) {
			if l[1] != "le" && l[1] != "quantile" {
				f.labels[l[1]] = true
			}
		}
	}
	return out
}

// documentedMetrics reads a table of metrics: rows starting with
// | `statusbridge_x` |, and the label names of the next cell.
func documentedMetrics(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	rowRE := regexp.MustCompile("^\\| `(statusbridge_[a-z_]+)` \\|([^|]*)\\|")
	for line := range strings.Lines(text) {
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("%s has two rows", m[1])
		}
		labels := []string{}
		for _, b := range backtickedRE.FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, b[1])
		}
		slices.Sort(labels)
		out[m[1]] = labels
	}
	return out
}

// TestReadmeMetrics: the metrics table of docs/operating.md is exactly what
// a bridge exports, with the same labels; every counter has its series on
// a fresh bridge already; every statusbridge_ name any page mentions exists.
func TestReadmeMetrics(t *testing.T) {
	t.Parallel()
	w := daemontest.NewWorld(t)
	b := w.StartBridge()

	fresh := scrape(t, b)
	for name, f := range fresh {
		if f.typ == "counter" && f.series == 0 {
			t.Errorf("/metrics of a fresh bridge: counter %s has no series; documented counters start at 0", name)
		}
	}
	// A resolved request gives the histograms their series.
	id := w.Request("iak", "readme-metrics-1", "pending,success#readme-metrics", "")
	w.WaitEvents(20*time.Second, id)
	var exported map[string]*family
	daemontest.WaitFor(t, 10*time.Second, "the resolution histogram", func() bool {
		exported = scrape(t, b)
		f := exported["statusbridge_resolution_seconds"]
		return f != nil && f.series > 0
	})

	operating := readFile(t, repoRoot+"/docs/operating.md")
	table := between(t, operating, "\n## Metrics\n", "\n## ")
	documented := documentedMetrics(t, table)
	for name, f := range exported {
		labels, ok := documented[name]
		if !ok {
			t.Errorf("docs/operating.md: %s is not in the table of metrics", name)
			continue
		}
		if f.series == 0 {
			t.Errorf("/metrics: %s has no series after a resolved request", name)
			continue
		}
		if got := slices.Sorted(maps.Keys(f.labels)); !slices.Equal(got, labels) {
			t.Errorf("docs/operating.md: %s has labels %v; /metrics has %v", name, labels, got)
		}
	}
	for name := range documented {
		if _, ok := exported[name]; !ok {
			t.Errorf("docs/operating.md documents %s, which the bridge does not export", name)
		}
	}

	mentioned := regexp.MustCompile(`statusbridge_[a-z_]*[a-z]`)
	for file, text := range docFiles(t) {
		for _, name := range mentioned.FindAllString(text, -1) {
			base := name
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, s); ok && exported[b] != nil {
					base = b
				}
			}
			if exported[base] == nil {
				t.Errorf("%s names the metric %s, which the bridge does not export", file, name)
			}
		}
	}
}

// schemaProperties returns the property names of the object at pointer
// in a JSON Schema file.
func schemaProperties(t *testing.T, file string, pointer ...string) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(readFile(t, file)), &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pointer, "properties") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %v", file, pointer)
		}
		v = m[p]
	}
	props, ok := v.(map[string]any)
	if !ok || len(props) == 0 {
		t.Fatalf("%s: no properties at %v", file, pointer)
	}
	return slices.Sorted(maps.Keys(props))
}

// TestReadmeContract: docs/contract.md names what the code and the
// schemas define (subjects, streams, buckets, fields, statuses, reasons,
// dead-letter reasons and headers, the envelope's constants, exit codes,
// commands, endpoints), and the reasons it lists for each status are
// exactly the code's.
func TestReadmeContract(t *testing.T) {
	t.Parallel()
	doc := readFile(t, repoRoot+"/docs/contract.md")
	must := func(what string, names ...string) {
		t.Helper()
		for _, n := range names {
			if !strings.Contains(doc, n) {
				t.Errorf("docs/contract.md does not name %s %q", what, n)
			}
		}
	}
	must("subject", topology.RequestPrefix+"<provider>", topology.ResolvedPrefix+"<provider>.<status>", topology.DeadLetterPrefix+"<provider>")
	must("default name", "`"+topology.DefaultRequestsStream+"`", "`"+topology.DefaultEventsStream+"`", "`"+topology.DefaultDeadLetterStream+"`",
		"`"+topology.DefaultConsumer+"`", "`"+topology.DefaultCapacityBucket+"`", "`"+topology.DefaultChecksBucket+"`")
	must("event constant", "`"+publisher.SpecVersion+"`", "`"+publisher.EventType+"`", "`"+publisher.DataContentType+"`",
		"`"+publisher.DataSchema+"`", publisher.ContentType)
	must("dead-letter header", publisher.HeaderDeadLetterReason, publisher.HeaderOriginalSubject, publisher.HeaderOriginalSequence)
	must("trace context header", "`"+publisher.HeaderTraceParent+"`", "`"+publisher.HeaderTraceState+"`")
	must("dead-letter reason", "`"+subscriber.DeadLetterTooLarge+"`", "`"+subscriber.DeadLetterInvalidJSON+"`",
		"`"+subscriber.DeadLetterMissingRequestID+"`", "`"+subscriber.DeadLetterInvalidRequestID+"`")
	for _, p := range providerTokens(t) {
		must("provider", "`"+strings.ToLower(p)+"`")
	}

	// The dataschema is the schema's own $id.
	var schema struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal([]byte(readFile(t, repoRoot+"/schemas/status.resolved.v1.json")), &schema); err != nil || schema.ID != publisher.DataSchema {
		t.Errorf("schemas/status.resolved.v1.json $id %q (%v), the events' dataschema %q", schema.ID, err, publisher.DataSchema)
	}
	// Every field of the two schemas has a row.
	for _, f := range schemaProperties(t, repoRoot+"/schemas/status.requested.v1.json") {
		must("request field row", "| `"+f+"` |")
	}
	for _, f := range schemaProperties(t, repoRoot+"/schemas/status.resolved.v1.json") {
		must("envelope row", "| `"+f+"` |")
	}
	for _, f := range schemaProperties(t, repoRoot+"/schemas/status.resolved.v1.json", "$defs", "data") {
		must("data field", "`"+f+"`")
	}

	// The status table: each status with exactly the reasons it is
	// published with.
	reasons := map[string][]string{
		publisher.StatusSuccess:  nil,
		publisher.StatusFailed:   {publisher.ReasonNotFound, publisher.ReasonProviderFailed},
		publisher.StatusExpired:  {publisher.ReasonAuthRejected, publisher.ReasonBadSignature, publisher.ReasonCancelled, publisher.ReasonDeadline, publisher.ReasonNotFound},
		publisher.StatusRejected: {publisher.ReasonInvalidRequest, publisher.ReasonProviderNotConfigured, publisher.ReasonUnknownProvider},
	}
	documented := map[string][]string{}
	statusRowRE := regexp.MustCompile("^\\| `(success|failed|expired|rejected)` \\|[^|]*\\|([^|]*)\\|")
	for line := range strings.Lines(doc) {
		if m := statusRowRE.FindStringSubmatch(line); m != nil {
			if _, ok := documented[m[1]]; !ok {
				documented[m[1]] = []string{}
			}
			for _, b := range backtickedRE.FindAllStringSubmatch(m[2], -1) {
				documented[m[1]] = append(documented[m[1]], b[1])
			}
		}
	}
	for status, want := range reasons {
		got, ok := documented[status]
		if !ok {
			t.Errorf("docs/contract.md: status %s has no row in the status table", status)
			continue
		}
		slices.Sort(got)
		if !slices.Equal(slices.Compact(got), want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("docs/contract.md: status %s with reasons %v; the code publishes %v", status, got, want)
		}
	}

	// Exit codes: bridge request's by status, and its usage error.
	for status, code := range statusExitCodes {
		row := regexp.MustCompile(`(?m)^\| ` + strconv.Itoa(code) + ` \|(.*)$`).FindStringSubmatch(doc)
		if row == nil || !strings.Contains(row[1], "`"+status+"`") {
			t.Errorf("docs/contract.md: exit code %d (status %s) has no row naming the status", code, status)
		}
	}
	if !regexp.MustCompile(`(?m)^\| ` + strconv.Itoa(exitUsage) + ` \|.*usage`).MatchString(doc) {
		t.Errorf("docs/contract.md: exit code %d (usage error of bridge request) has no row", exitUsage)
	}

	// Commands: every one of `bridge help` is listed.
	for _, cmd := range commands(t) {
		must("command", "`bridge "+cmd)
	}

	// Endpoints: each documented one is served.
	h := daemon.Handler(metrics.New("test"), func() bool { return true })
	endpoints := regexp.MustCompile("`GET (/[a-z]+)`").FindAllStringSubmatch(doc, -1)
	if len(endpoints) < 3 {
		t.Errorf("docs/contract.md documents %d endpoints", len(endpoints))
	}
	for _, e := range endpoints {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, e[1], nil))
		if rec.Code != http.StatusOK {
			t.Errorf("docs/contract.md documents GET %s; the bridge answers %d", e[1], rec.Code)
		}
	}
}

// commands are the subcommands `bridge help` lists.
func commands(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^  bridge (\[?[a-z]+)`).FindAllStringSubmatch(usage, -1) {
		out = append(out, strings.Trim(m[1], "["))
	}
	if len(out) < 6 {
		t.Fatalf("bridge help lists %v", out)
	}
	return out
}

// flagCommands are the commands that parse flags; the others (run, config,
// version, help) take none, and `bridge run -h` would start the daemon.
var flagCommands = []string{"sandbox", "request", "simulate", "bench", "inspect", "cancel", "rerequest", "deadletters", "verify", "provision"}

// commandFlags returns the flags `bridge <cmd> -h` prints; none for a
// command that takes no flags.
func commandFlags(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	if !slices.Contains(flagCommands, cmd) {
		return map[string]bool{}
	}
	var stderr bytes.Buffer
	_ = run(context.Background(), []string{cmd, "-h"}, io.Discard, &stderr)
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9-]*)`).FindAllStringSubmatch(stderr.String(), -1) {
		flags[m[1]] = true
	}
	return flags
}

// TestReadmeCommandLines: every bridge command line the pages show (in
// code blocks and inline code) names a real command and only its flags.
func TestReadmeCommandLines(t *testing.T) {
	t.Parallel()
	known := map[string]map[string]bool{}
	for _, c := range commands(t) {
		known[c] = nil
	}
	// An invocation starts a snippet or follows a shell separator (or
	// compose's `run --rm`): go run ./cmd/bridge X, ./bridge X, bridge X.
	invocationRE := regexp.MustCompile(`(?:^\s*|[;&|]\s*|--rm\s+)(?:go run \./cmd/bridge|"?\S*/bridge"?|bridge) ([a-z]+)\b`)
	flagRE := regexp.MustCompile(`(?:^|\s)--?([a-z][a-z0-9-]*)`)
	checked := 0
	for file, text := range docFiles(t) {
		var snippets []string
		inBlock := false
		sc := bufio.NewScanner(strings.NewReader(text))
		var joined string
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "```") {
				inBlock = !inBlock
				continue
			}
			if inBlock {
				if s, ok := strings.CutSuffix(line, "\\"); ok {
					joined += s + " "
					continue
				}
				snippets = append(snippets, joined+line)
				joined = ""
				continue
			}
			spans := backtickedRE.FindAllStringSubmatch(line, -1)
			if row := regexp.MustCompile("^\\| `bridge ([a-z]+)").FindStringSubmatch(line); row != nil {
				// A table row about a command: its flags are that command's.
				for _, m := range spans {
					if strings.HasPrefix(m[1], "-") {
						snippets = append(snippets, "bridge "+row[1]+" "+m[1])
					}
				}
			}
			for _, m := range spans {
				snippets = append(snippets, m[1])
			}
		}
		for _, s := range snippets {
			for _, loc := range invocationRE.FindAllStringSubmatchIndex(s, -1) {
				cmd := s[loc[2]:loc[3]]
				flags, ok := known[cmd]
				if !ok {
					t.Errorf("%s shows `bridge %s`, which is no command: %s", file, cmd, s)
					continue
				}
				if flags == nil {
					flags = commandFlags(t, cmd)
					known[cmd] = flags
				}
				rest := s[loc[1]:]
				if i := strings.IndexAny(rest, "#;|&"); i >= 0 {
					rest = rest[:i]
				}
				if i := invocationRE.FindStringIndex(rest); i != nil {
					rest = rest[:i[0]]
				}
				for _, f := range flagRE.FindAllStringSubmatch(rest, -1) {
					name, _, _ := strings.Cut(f[1], "=")
					checked++
					if !flags[name] && name != "h" {
						t.Errorf("%s shows `bridge %s --%s`, a flag it does not have: %s", file, cmd, name, s)
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d flags of shown command lines", checked)
	}
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// anchor is GitHub's id of a heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestReadmeLinks: every relative link of the pages resolves inside the
// repository, to a heading where it names one, and no page points at
// documents a clone does not have.
func TestReadmeLinks(t *testing.T) {
	t.Parallel()
	files := docFiles(t)
	for file, text := range files {
		for _, bad := range []string{"../shared", "SPEC.md", "JETSTREAM.md", "CAPACITY.md", "research/"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s refers to %s, which is not in the repository", file, bad)
			}
		}
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p, frag, _ := strings.Cut(target, "#")
			resolved := file
			if p != "" {
				resolved = path.Clean(path.Join(path.Dir(file), p))
			}
			if strings.HasPrefix(resolved, "..") {
				t.Errorf("%s links %s, outside the repository", file, target)
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(resolved))); err != nil {
				t.Errorf("%s links %s, which does not exist", file, target)
				continue
			}
			if frag == "" {
				continue
			}
			body, ok := files[resolved]
			if !ok {
				t.Errorf("%s links %s: an anchor in a file that is not a checked page", file, target)
				continue
			}
			found := false
			for _, h := range headingRE.FindAllStringSubmatch(body, -1) {
				found = found || anchor(h[1]) == frag
			}
			if !found {
				t.Errorf("%s links %s: %s has no heading with that anchor", file, target, resolved)
			}
		}
	}
}

// TestReadmeProviders: every provider the bridge implements has its
// section in docs/providers.md, which names its default base URL.
func TestReadmeProviders(t *testing.T) {
	t.Parallel()
	doc := readFile(t, repoRoot+"/docs/providers.md")
	vars := configDefaults(t)
	var headings []string
	for _, h := range headingRE.FindAllStringSubmatch(doc, -1) {
		headings = append(headings, strings.ToLower(h[1]))
	}
	for _, p := range providerTokens(t) {
		name := strings.ToLower(p)
		if !slices.ContainsFunc(headings, func(h string) bool { return strings.HasPrefix(h, name) }) {
			t.Errorf("docs/providers.md has no section for %s", name)
		}
		if u := vars["BRIDGE_"+p+"_URL"]; u == "" || !strings.Contains(doc, "`"+u+"`") {
			t.Errorf("docs/providers.md does not name %s's default base URL %q", name, u)
		}
	}
}
