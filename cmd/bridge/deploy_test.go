package main

// The deployment files in deploy/ repeat names, ports, variables and
// JetStream definitions that the code owns. These tests read every file
// there and check it against the code, so that neither can drift: a file
// no test knows how to check fails TestDeployEveryFileIsChecked.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/statusbridge/statusbridge/internal/callback"
	"github.com/statusbridge/statusbridge/internal/capacity"
	"github.com/statusbridge/statusbridge/internal/config"
	"github.com/statusbridge/statusbridge/internal/daemon"
	"github.com/statusbridge/statusbridge/internal/daemon/daemontest"
	"github.com/statusbridge/statusbridge/internal/metrics"
	"github.com/statusbridge/statusbridge/internal/topology"
)

// deployDir is deploy/ seen from this package.
const deployDir = "../../deploy"

// deployKinds says which check owns each file in deploy/ (path.Match
// patterns on the slash-separated path inside deploy/).
var deployKinds = []struct{ pattern, kind string }{
	{"README.md", "readme"},
	{"Dockerfile", "dockerfile"},
	{"compose.yaml", "compose"},
	{"sandbox-secrets/*", "compose-secret"},
	{"nats/nats.conf", "nats-conf"},
	{"nats/streams/*.json", "stream"},
	{"nats/consumers/*.json", "consumer"},
	{"k8s/*.yaml", "k8s"},
	{"grafana/*.json", "dashboard"},
}

// deployFiles lists the files of deploy/ (slash paths inside it) and the
// kind of each ("" when none).
func deployFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(deployDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		files[rel] = ""
		for _, k := range deployKinds {
			if ok, _ := path.Match(k.pattern, rel); ok {
				files[rel] = k.kind
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// filesOf returns the files of one kind, sorted; it fails when there are none.
func filesOf(t *testing.T, kind string) []string {
	t.Helper()
	var out []string
	for f, k := range deployFiles(t) {
		if k == kind {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("deploy/ has no %s file", kind)
	}
	slices.Sort(out)
	return out
}

func readDeploy(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeployEveryFileIsChecked(t *testing.T) {
	for f, kind := range deployFiles(t) {
		if kind == "" {
			t.Errorf("deploy/%s: no test checks this kind of file; add it to deployKinds and check it in deploy_test.go", f)
		}
	}
}

// --- configuration variables ---

// configVars maps every BRIDGE_* variable to the Go type of its field, as
// `bridge config` (config.PrintVariables) lists them.
func configVars(t *testing.T) map[string]string {
	t.Helper()
	var out bytes.Buffer
	if err := config.PrintVariables(&out); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if i == 0 {
			continue // the header
		}
		names[strings.Fields(line)[0]] = true
	}
	var c config.Config
	var types bytes.Buffer
	tmpl := template.Must(template.New("types").Parse("{{range .}}{{.Key}} {{.Field.Type}}\n{{end}}"))
	if err := envconfig.Usaget(config.Prefix, &c, &types, tmpl); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(types.String()), "\n") {
		name, typ, _ := strings.Cut(line, " ")
		vars[name] = typ
	}
	if len(vars) != len(names) {
		t.Fatalf("bridge config lists %d variables, the config struct has %d", len(names), len(vars))
	}
	for n := range names {
		if _, ok := vars[n]; !ok {
			t.Fatalf("bridge config lists %s, which the config struct does not have", n)
		}
	}
	return vars
}

// secretVars are the variables holding secrets; each has a *_FILE twin.
func secretVars(t *testing.T, vars map[string]string) []string {
	t.Helper()
	var out []string
	for name, typ := range vars {
		if typ == "providers.Secret" {
			if _, ok := vars[name+"_FILE"]; !ok {
				t.Errorf("%s is a secret without %s_FILE", name, name)
			}
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		t.Fatal("found no secret variables in the config struct")
	}
	slices.Sort(out)
	return out
}

// providerSecretVars are the secrets every deployment must provide: the
// providers' credentials (NATS authentication is optional).
func providerSecretVars(t *testing.T, vars map[string]string) []string {
	var out []string
	for _, name := range secretVars(t, vars) {
		if !strings.HasPrefix(name, "BRIDGE_NATS_") {
			out = append(out, name)
		}
	}
	return out
}

var bridgeVarRE = regexp.MustCompile(`\bBRIDGE_[A-Z0-9_]+`) // not NATS_BRIDGE_PASSWORD, a variable of nats.conf

func TestDeployVariablesExist(t *testing.T) {
	vars := configVars(t)
	for f := range deployFiles(t) {
		for _, name := range bridgeVarRE.FindAllString(string(readDeploy(t, f)), -1) {
			if strings.HasSuffix(name, "_") {
				continue // a pattern such as BRIDGE_*_FILE or BRIDGE_IAK_*
			}
			if _, ok := vars[name]; !ok {
				t.Errorf("deploy/%s: %s is not a configuration variable (see `bridge config`)", f, name)
			}
		}
	}
}

// loadEnv loads the configuration from exactly env (and nothing of the
// caller's environment).
func loadEnv(t *testing.T, env map[string]string) (config.Config, error) {
	t.Helper()
	clearBridgeEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, _, err := config.Load()
	return cfg, err
}

// loadConfigWith is loadEnv for an env that must load.
func loadConfigWith(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := loadEnv(t, env)
	if err != nil {
		keys := slices.Sorted(maps.Keys(env))
		t.Fatalf("configuration with %v does not load: %v", keys, err)
	}
	return cfg
}

func defaultConfig(t *testing.T) config.Config { return loadConfigWith(t, nil) }

func httpPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("BRIDGE_HTTP_ADDR %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkProviders asserts that cfg enables every provider.
func checkProviders(t *testing.T, where string, cfg config.Config) {
	t.Helper()
	clients, err := cfg.Providers(nil)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	for name, c := range clients {
		if c == nil {
			t.Errorf("%s: provider %s has no credentials (its requests would be rejected)", where, name)
		}
	}
}

// --- Dockerfile ---

type dockerInstr struct{ cmd, args string }

type dockerStage struct {
	from, alias string
	instrs      []dockerInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continued lines and dropping comments.
func parseDockerfile(t *testing.T, src string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		cmd = strings.ToUpper(cmd)
		args = strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.alias = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if cmd == "ARG" {
				continue
			}
			t.Fatalf("Dockerfile: %s before FROM", cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, dockerInstr{cmd, args})
	}
	return stages
}

func (s dockerStage) all(cmd string) []string {
	var out []string
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// execForm decodes a JSON-array instruction argument.
func execForm(t *testing.T, cmd, args string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		t.Fatalf("Dockerfile: %s %s is not in exec form (a JSON array): %v", cmd, args, err)
	}
	return v
}

func TestDeployDockerfile(t *testing.T) {
	_ = version // the variable -X main.version sets
	cfg := defaultConfig(t)
	port := httpPort(t, cfg.HttpAddr)

	stages := parseDockerfile(t, string(readDeploy(t, "Dockerfile")))
	if len(stages) != 2 {
		t.Fatalf("Dockerfile: %d stages, want 2 (build, final)", len(stages))
	}
	build, final := stages[0], stages[1]

	goMod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(goMod))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + m[1]; build.from != want {
		t.Errorf("Dockerfile: builder is %s, want %s (go.mod says go %s)", build.from, want, m[1])
	}
	if final.from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: final image is %s, want gcr.io/distroless/static-debian12:nonroot", final.from)
	}
	if !slices.ContainsFunc(build.all("ARG"), func(a string) bool { return a == "VERSION" || strings.HasPrefix(a, "VERSION=") }) {
		t.Error("Dockerfile: the build stage has no ARG VERSION")
	}
	var out string
	for _, run := range build.all("RUN") {
		if !strings.Contains(run, "go build") {
			continue
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=${VERSION}", "./cmd/bridge"} {
			if !strings.Contains(run, want) {
				t.Errorf("Dockerfile: go build lacks %s: %s", want, run)
			}
		}
		if f := strings.Fields(run); slices.Index(f, "-o") >= 0 && slices.Index(f, "-o") < len(f)-1 {
			out = f[slices.Index(f, "-o")+1]
		}
	}
	if out == "" {
		t.Fatal("Dockerfile: no `go build -o FILE` in the build stage")
	}
	want := fmt.Sprintf("--from=%s %s /bridge", build.alias, out)
	if !slices.Contains(final.all("COPY"), want) {
		t.Errorf("Dockerfile: the final stage does not COPY %s; has %q", want, final.all("COPY"))
	}
	if u := final.all("USER"); len(u) != 1 || !slices.Contains([]string{"65532", "65532:65532", "nonroot", "nonroot:nonroot"}, u[0]) {
		t.Errorf("Dockerfile: USER %q, want the nonroot user 65532", u)
	}
	if e := final.all("EXPOSE"); !slices.Equal(e, []string{strconv.Itoa(port)}) {
		t.Errorf("Dockerfile: EXPOSE %q, want %d (the default BRIDGE_HTTP_ADDR)", e, port)
	}
	if e := final.all("ENTRYPOINT"); len(e) != 1 || !slices.Equal(execForm(t, "ENTRYPOINT", e[0]), []string{"/bridge"}) {
		t.Errorf(`Dockerfile: ENTRYPOINT %q, want ["/bridge"]`, e)
	}
	if c := final.all("CMD"); len(c) != 1 || !slices.Equal(execForm(t, "CMD", c[0]), []string{"run"}) {
		t.Errorf(`Dockerfile: CMD %q, want ["run"]`, c)
	}

	// The root .dockerignore must keep what the build needs.
	if b, err := os.ReadFile("../../.dockerignore"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			for _, needed := range []string{"go.mod", "go.sum", "cmd/bridge/main.go", "internal/topology/topology.go"} {
				if ok, _ := filepath.Match(line, needed); ok || strings.HasPrefix(needed, strings.TrimSuffix(line, "/")+"/") {
					t.Errorf(".dockerignore: %q excludes %s, which the build needs", line, needed)
				}
			}
		}
	}
}

// --- compose ---

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Build           *composeBuild     `yaml:"build"`
	Command         []string          `yaml:"command"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	Environment     map[string]string `yaml:"environment"`
	Secrets         []string          `yaml:"secrets"`
	DependsOn       map[string]any    `yaml:"depends_on"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	ReadOnly        bool              `yaml:"read_only"`
	Restart         string            `yaml:"restart"`
	Healthcheck     any               `yaml:"healthcheck"`
	Profiles        []string          `yaml:"profiles"`
}

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(readDeploy(t, "compose.yaml")))
	dec.KnownFields(true) // a key this test does not know is a key it does not check
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	return c
}

// containerPorts returns the container side of compose port mappings.
func containerPorts(t *testing.T, ports []string) []int {
	t.Helper()
	var out []int
	for _, p := range ports {
		p, _, _ = strings.Cut(p, "/")
		i := strings.LastIndex(p, ":")
		n, err := strconv.Atoi(p[i+1:])
		if err != nil {
			t.Fatalf("compose port %q: %v", p, err)
		}
		out = append(out, n)
	}
	return out
}

// composeEnv returns a service's environment with each /run/secrets/NAME
// path replaced by the file compose mounts there.
func composeEnv(t *testing.T, c composeFile, name string) map[string]string {
	t.Helper()
	svc := c.Services[name]
	env := map[string]string{}
	for k, v := range svc.Environment {
		if secret, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			if !slices.Contains(svc.Secrets, secret) {
				t.Errorf("compose %s: %s=%s, but the service does not mount secret %s", name, k, v, secret)
			}
			s, ok := c.Secrets[secret]
			if !ok {
				t.Fatalf("compose: secret %s is not defined", secret)
			}
			v = filepath.Join(deployDir, filepath.FromSlash(s.File))
		}
		env[k] = v
	}
	return env
}

func TestDeployCompose(t *testing.T) {
	vars := configVars(t)
	defaults := defaultConfig(t)
	port := httpPort(t, defaults.HttpAddr)
	c := readCompose(t)

	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"bridge", "nats", "provision", "requester", "simulators"}) {
		t.Fatalf("compose services %v, want bridge, nats, provision, requester, simulators (teach deploy_test.go any other)", names)
	}
	natsSvc, simSvc, bridgeSvc := c.Services["nats"], c.Services["simulators"], c.Services["bridge"]

	// NATS: the image, and the configuration file TestDeployNATS checks.
	if !strings.HasPrefix(natsSvc.Image, "nats:2.12") {
		t.Errorf("compose nats: image %s, want nats:2.12", natsSvc.Image)
	}
	confPath := ""
	for i, a := range natsSvc.Command {
		if (a == "--config" || a == "-c") && i+1 < len(natsSvc.Command) {
			confPath = natsSvc.Command[i+1]
		}
		if a == "--js" || a == "-js" {
			t.Errorf("compose nats: enable JetStream in nats.conf, not with %s", a)
		}
	}
	mounted := ""
	for _, v := range natsSvc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == confPath {
			mounted = filepath.Join(deployDir, filepath.FromSlash(parts[0]))
		}
	}
	if confPath == "" || filepath.Clean(mounted) != filepath.Join(deployDir, "nats", "nats.conf") {
		t.Errorf("compose nats: command %q and volumes %q do not run the server with deploy/nats/nats.conf", natsSvc.Command, natsSvc.Volumes)
	}
	natsOpts, _ := daemontest.LoadNATSConfig(t, filepath.Join(deployDir, "nats", "nats.conf"), nil)
	if !natsOpts.JetStream || !natsOpts.SyncAlways {
		t.Errorf("compose nats: JetStream %v, sync_interval always %v; want both", natsOpts.JetStream, natsOpts.SyncAlways)
	}
	if !slices.Contains(containerPorts(t, natsSvc.Ports), natsOpts.HTTPPort) {
		t.Errorf("compose nats: ports %q do not publish the monitoring port %d", natsSvc.Ports, natsOpts.HTTPPort)
	}

	// The NATS roles: the server reads each user's password from its
	// environment, each client from its secret file, and they match.
	given := map[string]string{}
	for user, env := range daemontest.NATSRoles {
		if natsSvc.Environment[env] == "" {
			t.Errorf("compose nats: %s is not set; nats.conf reads the %s password from it", env, user)
		}
		given[user] = natsSvc.Environment[env]
	}
	roleServer, _ := daemontest.StartNATSFromConfig(t, filepath.Join(deployDir, "nats", "nats.conf"), given)
	for svc, user := range map[string]string{"bridge": "bridge", "provision": "provisioner", "requester": "requester"} {
		cfg := loadConfigWith(t, composeEnv(t, c, svc))
		if cfg.NatsUser != user {
			t.Errorf("compose %s: BRIDGE_NATS_USER %q, want the %s role", svc, cfg.NatsUser, user)
		}
		auth, err := daemon.NATSAuth(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(roleServer.ClientURL(), auth...)
		if err != nil {
			t.Errorf("compose %s: nats.conf refuses its credentials: %v", svc, err)
			continue
		}
		nc.Close()
	}
	if p := c.Services["provision"]; !slices.Equal(p.Command, []string{"provision"}) || p.Environment["BRIDGE_STREAM_REPLICAS"] != "1" {
		t.Errorf("compose provision: command %q, BRIDGE_STREAM_REPLICAS %q; want provision with one replica (one server)", p.Command, p.Environment["BRIDGE_STREAM_REPLICAS"])
	}
	if dep, _ := bridgeSvc.DependsOn["provision"].(map[string]any); dep["condition"] != "service_completed_successfully" {
		t.Errorf("compose bridge: depends on provision with %v, want condition service_completed_successfully", bridgeSvc.DependsOn["provision"])
	}
	if v := bridgeSvc.Environment["BRIDGE_PROVISION"]; v != "false" {
		t.Errorf("compose bridge: BRIDGE_PROVISION=%q; the bridge's role binds, the provision service creates", v)
	}

	// Every service but nats runs the image deploy/Dockerfile builds.
	for _, n := range []string{"simulators", "bridge", "provision", "requester"} {
		b := c.Services[n].Build
		if b == nil || filepath.Join(deployDir, filepath.FromSlash(b.Context), filepath.FromSlash(b.Dockerfile)) != filepath.Join(deployDir, "Dockerfile") {
			t.Errorf("compose %s: build %+v is not deploy/Dockerfile with the repository root as context", n, b)
		} else if filepath.Clean(filepath.Join(deployDir, b.Context)) != filepath.Clean("../..") {
			t.Errorf("compose %s: build context %s is not the repository root", n, b.Context)
		}
		if c.Services[n].Image != bridgeSvc.Image {
			t.Errorf("compose %s: image %s, want %s like the bridge", n, c.Services[n].Image, bridgeSvc.Image)
		}
	}
	if len(bridgeSvc.Command) != 0 && !slices.Equal(bridgeSvc.Command, []string{"run"}) {
		t.Errorf("compose bridge: command %q, want run", bridgeSvc.Command)
	}
	if !slices.Contains(containerPorts(t, bridgeSvc.Ports), port) {
		t.Errorf("compose bridge: ports %q do not publish %d (BRIDGE_HTTP_ADDR)", bridgeSvc.Ports, port)
	}
	for _, dep := range []string{"nats", "simulators"} {
		if _, ok := bridgeSvc.DependsOn[dep]; !ok {
			t.Errorf("compose bridge: does not depend on %s", dep)
		}
	}
	if bridgeSvc.Healthcheck != nil || simSvc.Healthcheck != nil {
		t.Error("compose: a healthcheck cannot run in the distroless image (no shell, no curl)")
	}

	// Secrets: every file in deploy/sandbox-secrets is a compose secret.
	for _, f := range filesOf(t, "compose-secret") {
		found := false
		for _, s := range c.Secrets {
			found = found || path.Clean(s.File) == f
		}
		if !found {
			t.Errorf("deploy/%s: not a secret of compose.yaml", f)
		}
	}
	for _, n := range []string{"simulators", "bridge", "provision", "requester"} {
		for k := range c.Services[n].Environment {
			if vars[k] == "providers.Secret" {
				t.Errorf("compose %s: %s is set in the environment; use %s_FILE and a compose secret", n, k, k)
			}
		}
	}
	bridgeEnv := composeEnv(t, c, "bridge")
	for _, s := range providerSecretVars(t, vars) {
		if _, ok := bridgeEnv[s+"_FILE"]; !ok {
			t.Errorf("compose bridge: %s_FILE is not set", s)
		}
	}

	// The simulators: run `bridge simulate` with the service's arguments and
	// environment (on a free port instead of the fixed one) and read the
	// URLs and credentials it prints.
	if len(simSvc.Command) == 0 || simSvc.Command[0] != "simulate" {
		t.Fatalf("compose simulators: command %q, want simulate ...", simSvc.Command)
	}
	simAddr := ""
	for i, a := range simSvc.Command {
		if (a == "--addr" || a == "-addr") && i+1 < len(simSvc.Command) {
			simAddr = simSvc.Command[i+1]
		} else if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "addr="); ok {
			simAddr = v
		}
	}
	simHost, simPort, err := net.SplitHostPort(simAddr)
	if err != nil || (simHost != "0.0.0.0" && simHost != "" && simHost != "::") {
		t.Errorf("compose simulators: --addr %q must listen on every interface so the bridge can reach it", simAddr)
	}
	if p, _ := strconv.Atoi(simPort); !slices.Contains(containerPorts(t, simSvc.Ports), p) {
		t.Errorf("compose simulators: ports %q do not publish %s", simSvc.Ports, simPort)
	}
	printed := runSimulateWith(t, composeEnv(t, c, "simulators"), append(slices.Clone(simSvc.Command[1:]), "--addr", "127.0.0.1:0"))

	// The bridge: its environment loads, enables every provider, and sends
	// the simulators the credentials they check.
	cfg := loadConfigWith(t, bridgeEnv)
	checkProviders(t, "compose bridge", cfg)
	if cfg.ShutdownTimeout >= parseDuration(t, bridgeSvc.StopGracePeriod) {
		t.Errorf("compose bridge: stop_grace_period %s must exceed BRIDGE_SHUTDOWN_TIMEOUT %v", bridgeSvc.StopGracePeriod, cfg.ShutdownTimeout)
	}
	if u, err := url.Parse(cfg.NatsURL); err != nil || u.Hostname() != "nats" || u.Port() != strconv.Itoa(natsOpts.Port) {
		t.Errorf("compose bridge: BRIDGE_NATS_URL %q is not the nats service's port %d", cfg.NatsURL, natsOpts.Port)
	}
	got := map[string]string{
		"BRIDGE_IAK_URL": cfg.IAK.URL, "BRIDGE_IAK_USERNAME": cfg.IAK.Username, "BRIDGE_IAK_API_KEY": cfg.IAK.APIKey.Reveal(),
		"BRIDGE_AYOPOP_URL": cfg.Ayopop.URL, "BRIDGE_AYOPOP_API_KEY": cfg.Ayopop.APIKey.Reveal(), "BRIDGE_AYOPOP_API_SECRET": cfg.Ayopop.APISecret.Reveal(),
		"BRIDGE_APPOTAPAY_URL": cfg.AppotaPay.URL, "BRIDGE_APPOTAPAY_PARTNER_CODE": cfg.AppotaPay.PartnerCode,
		"BRIDGE_APPOTAPAY_API_KEY": cfg.AppotaPay.APIKey.Reveal(), "BRIDGE_APPOTAPAY_SECRET_KEY": cfg.AppotaPay.SecretKey.Reveal(),
	}
	if len(printed) != len(got) {
		t.Errorf("bridge simulate printed %v, want the %d variables the bridge sets", printed, len(got))
	}
	for k, want := range printed {
		if strings.HasSuffix(k, "_URL") {
			u, err := url.Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			u.Host = net.JoinHostPort("simulators", simPort)
			want = u.String()
		}
		if got[k] != want {
			// Secrets are printed only when they are the sandbox values;
			// compose must use those.
			t.Errorf("compose bridge: %s does not match what the simulators expect (%s)", k, printed[k])
		}
	}
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// runSimulateWith runs `bridge simulate args` with env until it has printed
// its variables, and returns them.
func runSimulateWith(t *testing.T, env map[string]string, args []string) map[string]string {
	t.Helper()
	clearBridgeEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		err := runSimulate(ctx, args, pw, &stderr)
		pw.CloseWithError(fmt.Errorf("simulate returned %v", err))
		done <- err
	}()
	printed := map[string]string{}
	sc := bufio.NewScanner(pr)
	for lines := 0; lines < 4 && sc.Scan(); lines++ {
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok && strings.HasPrefix(k, "BRIDGE_") {
				printed[k] = v
			}
		}
	}
	cancel()
	go io.Copy(io.Discard, pr) //nolint:errcheck // unblock any further output
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bridge simulate %q: %v\n%s", args, err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge simulate did not stop")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return printed
}

// --- NATS: server configuration, streams and the consumer ---

// strictJSON decodes b into v, refusing unknown members: the definitions
// must be exactly what `nats stream add --config` and `nats consumer add
// --config` read (the server's StreamConfig and ConsumerConfig).
func strictJSON(t *testing.T, rel string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readDeploy(t, rel)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("deploy/%s: %v", rel, err)
	}
}

// productionConfig is the bridge's configuration in Kubernetes: the
// defaults with the ConfigMap and the Deployment's environment applied.
func productionConfig(t *testing.T) config.Config {
	t.Helper()
	return loadConfigWith(t, withCredentials(t, readK8s(t).env(t)))
}

func TestDeployNATS(t *testing.T) {
	prod := productionConfig(t)
	topo := prod.Topology()

	opts, passwords := daemontest.LoadNATSConfig(t, filepath.Join(deployDir, "nats", "nats.conf"), nil)
	if !opts.JetStream || !opts.SyncAlways || opts.StoreDir == "" {
		t.Errorf("deploy/nats/nats.conf: jetstream %v, sync_interval always %v, store_dir %q; want JetStream with a store_dir and sync_interval: always", opts.JetStream, opts.SyncAlways, opts.StoreDir)
	}
	if opts.HTTPPort == 0 {
		t.Error("deploy/nats/nats.conf: no http_port (monitoring, which KEDA reads)")
	}

	// The definitions, read as the nats CLI reads them.
	streams := map[string]server.StreamConfig{}
	for _, f := range filesOf(t, "stream") {
		var sc server.StreamConfig
		strictJSON(t, f, &sc)
		if path.Base(f) != sc.Name+".json" {
			t.Errorf("deploy/%s: defines stream %s; name the file after it", f, sc.Name)
		}
		streams[sc.Name] = sc
	}
	var consumer server.ConsumerConfig
	consumerFiles := filesOf(t, "consumer")
	if len(consumerFiles) != 1 {
		t.Fatalf("deploy/nats/consumers: %v, want one consumer", consumerFiles)
	}
	strictJSON(t, consumerFiles[0], &consumer)
	if path.Base(consumerFiles[0]) != consumer.Durable+".json" {
		t.Errorf("deploy/%s: defines consumer %q; name the file after it", consumerFiles[0], consumer.Durable)
	}

	want := []jetstream.StreamConfig{topo.RequestsStreamConfig(), topo.EventsStreamConfig(), topo.DeadLetterStreamConfig(),
		// The key-value buckets are streams named KV_<bucket>.
		{Name: "KV_" + topo.CapacityBucket}, {Name: "KV_" + topo.ChecksBucket}}
	if len(streams) != len(want) {
		t.Errorf("deploy/nats/streams defines %d streams, the bridge %d", len(streams), len(want))
	}
	for _, w := range want {
		sc, ok := streams[w.Name]
		if !ok {
			t.Errorf("deploy/nats/streams has no %s.json", w.Name)
			continue
		}
		if sc.Replicas != topo.Replicas || sc.Replicas < 3 {
			t.Errorf("stream %s: num_replicas %d, want %d (R3, BRIDGE_STREAM_REPLICAS in the ConfigMap)", w.Name, sc.Replicas, topo.Replicas)
		}
		if sc.Storage != server.FileStorage || sc.PersistMode == server.AsyncPersistMode {
			t.Errorf("stream %s: storage %v, persist mode %v; want file storage, synchronous", w.Name, sc.Storage, sc.PersistMode)
		}
		if sc.MaxMsgSize > 0 && int64(sc.MaxMsgSize) > int64(opts.MaxPayload) {
			t.Errorf("stream %s: max_msg_size %d exceeds nats.conf max_payload %d", w.Name, sc.MaxMsgSize, opts.MaxPayload)
		}
	}
	if consumer.Durable != topo.Consumer || consumer.MaxDeliver != -1 || consumer.AckPolicy != server.AckExplicit || len(consumer.BackOff) > 0 {
		t.Errorf("consumer %+v: want durable %s, max_deliver -1, ack_policy explicit, no backoff", consumer, topo.Consumer)
	}

	// Create the definitions on a server running deploy/nats/nats.conf (on
	// a free port, a temporary store, one node, so one replica), exactly as
	// the nats CLI sends them.
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server with deploy/nats/nats.conf did not start")
	}
	// The operator creates them as the provisioner; the bridge binds as
	// itself.
	nc, _ := jsConnect(t, s.ClientURL(), nats.UserInfo("provisioner", passwords["provisioner"]))
	_, js := jsConnect(t, s.ClientURL(), nats.UserInfo("bridge", passwords["bridge"]))
	for _, f := range filesOf(t, "stream") {
		body := withOneReplica(t, readDeploy(t, f))
		var sc server.StreamConfig
		strictJSON(t, f, &sc)
		jsAPI(t, nc, "$JS.API.STREAM.CREATE."+sc.Name, body)
	}
	body, err := json.Marshal(map[string]any{"stream_name": topo.RequestsStream, "config": json.RawMessage(readDeploy(t, consumerFiles[0]))})
	if err != nil {
		t.Fatal(err)
	}
	jsAPI(t, nc, "$JS.API.CONSUMER.CREATE."+topo.RequestsStream+"."+consumer.Durable, body)

	// The bridge binds to them with BRIDGE_PROVISION=false.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := topology.Bind(ctx, js, topo); err != nil {
		t.Fatalf("the bridge does not bind to deploy/nats: %v", err)
	}
	if _, err := topology.OpenBuckets(ctx, js, topo); err != nil {
		t.Fatalf("the bridge does not find its buckets in deploy/nats: %v", err)
	}

	// And they are what the bridge itself provisions: compare the server's
	// view of both (one replica each here).
	provisioned := daemontest.StartNATS(t)
	_, js2 := jsConnect(t, provisioned.ClientURL())
	topo1 := topo
	topo1.Replicas = 1
	if _, err := topology.Provision(ctx, js2, topo1); err != nil {
		t.Fatal(err)
	}
	ignoreServerMetadata := cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".Metadata"
	}, cmp.Ignore())
	for _, w := range want {
		a, err1 := js.Stream(ctx, w.Name)
		b, err2 := js2.Stream(ctx, w.Name)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(b.CachedInfo().Config, a.CachedInfo().Config, ignoreServerMetadata); d != "" {
			t.Errorf("stream %s: deploy/nats differs from what the bridge provisions (-bridge +deploy):\n%s", w.Name, d)
		}
	}
	a, err1 := js.Consumer(ctx, topo.RequestsStream, topo.Consumer)
	b, err2 := js2.Consumer(ctx, topo.RequestsStream, topo.Consumer)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(b.CachedInfo().Config, a.CachedInfo().Config, ignoreServerMetadata); d != "" {
		t.Errorf("consumer %s: deploy/nats differs from what the bridge provisions with the ConfigMap's settings (-bridge +deploy):\n%s", topo.Consumer, d)
	}
}

func jsConnect(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// withOneReplica returns a stream definition with num_replicas 1, for a
// single test server.
func withOneReplica(t *testing.T, def []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(def, &m); err != nil {
		t.Fatal(err)
	}
	m["num_replicas"] = 1
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsAPI sends one JetStream API request and fails on an error response.
func jsAPI(t *testing.T, nc *nats.Conn, subject string, body []byte) {
	t.Helper()
	msg, err := nc.Request(subject, body, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if resp.Error != nil {
		t.Fatalf("%s: the server refused the definition: %d %s", subject, resp.Error.Code, resp.Error.Description)
	}
}

// --- Kubernetes ---

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sHeader struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
}

type k8sConfigMap struct {
	k8sHeader `yaml:",inline"`
	Data      map[string]string `yaml:"data"`
}

type k8sSecret struct {
	k8sHeader  `yaml:",inline"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef any `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type k8sDeployment struct {
	k8sHeader `yaml:",inline"`
	Spec      struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	k8sHeader `yaml:",inline"`
	Spec      struct {
		MinAvailable   *int `yaml:"minAvailable"`
		MaxUnavailable *int `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sService struct {
	k8sHeader `yaml:",inline"`
	Spec      struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type kedaScaledObject struct {
	k8sHeader `yaml:",inline"`
	Spec      struct {
		ScaleTargetRef struct {
			Name string `yaml:"name"`
			Kind string `yaml:"kind"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount *int `yaml:"minReplicaCount"`
		MaxReplicaCount *int `yaml:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// k8sManifests are the objects of deploy/k8s, one of each kind.
type k8sManifests struct {
	configMap  k8sConfigMap
	secret     k8sSecret
	deployment k8sDeployment
	pdb        k8sPDB
	service    k8sService // /metrics
	callbacks  k8sService // the callback listener
	scaled     kedaScaledObject
}

func readK8s(t *testing.T) k8sManifests {
	t.Helper()
	var k k8sManifests
	seen := map[string]string{}
	for _, f := range filesOf(t, "k8s") {
		dec := yaml.NewDecoder(bytes.NewReader(readDeploy(t, f)))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("deploy/%s: %v", f, err)
			}
			var h k8sHeader
			if err := doc.Decode(&h); err != nil {
				t.Fatalf("deploy/%s: %v", f, err)
			}
			if h.Metadata.Namespace != "" {
				t.Errorf("deploy/%s: %s %s sets a namespace; the manifests are namespace-agnostic", f, h.Kind, h.Metadata.Name)
			}
			var target any
			switch h.APIVersion + " " + h.Kind {
			case "v1 ConfigMap":
				target = &k.configMap
			case "v1 Secret":
				target = &k.secret
			case "apps/v1 Deployment":
				target = &k.deployment
			case "policy/v1 PodDisruptionBudget":
				target = &k.pdb
			case "v1 Service":
				target = &k.service
				if h.Metadata.Name == "statusbridge-callbacks" {
					target, h.Kind = &k.callbacks, "callbacks Service"
				}
			case "keda.sh/v1alpha1 ScaledObject":
				target = &k.scaled
			default:
				t.Fatalf("deploy/%s: %s %s: deploy_test.go does not know how to check this kind", f, h.APIVersion, h.Kind)
			}
			if prev, ok := seen[h.Kind]; ok {
				t.Fatalf("deploy/%s: a second %s (the first is in deploy/%s)", f, h.Kind, prev)
			}
			seen[h.Kind] = f
			if err := doc.Decode(target); err != nil {
				t.Fatalf("deploy/%s: %v", f, err)
			}
		}
	}
	for _, kind := range []string{"ConfigMap", "Secret", "Deployment", "PodDisruptionBudget", "Service", "callbacks Service", "ScaledObject"} {
		if _, ok := seen[kind]; !ok {
			t.Fatalf("deploy/k8s has no %s", kind)
		}
	}
	return k
}

// bridgeContainer is the Deployment's only container.
func (k k8sManifests) bridgeContainer(t *testing.T) k8sContainer {
	t.Helper()
	cs := k.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("deployment: %d containers, want 1", len(cs))
	}
	return cs[0]
}

// portNumber resolves a probe's or service's port (a number or a container
// port's name).
func portNumber(t *testing.T, c k8sContainer, port string) int {
	t.Helper()
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %q is not a port of container %s", port, c.Name)
	return 0
}

// env returns the container's BRIDGE_* environment, with each file path
// inside a mounted Secret replaced by a temporary file holding that key's
// value from secret.yaml.
func (k k8sManifests) env(t *testing.T) map[string]string {
	t.Helper()
	c := k.bridgeContainer(t)
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil || ef.ConfigMapRef.Name != k.configMap.Metadata.Name {
			t.Fatalf("deployment: envFrom %+v is not the ConfigMap %s", ef, k.configMap.Metadata.Name)
		}
		for name, v := range k.configMap.Data {
			env[name] = v
		}
	}
	dir := t.TempDir()
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "BRIDGE_") {
			continue
		}
		if e.ValueFrom != nil {
			t.Errorf("deployment: %s uses valueFrom; give secrets as files (%s_FILE)", e.Name, strings.TrimSuffix(e.Name, "_FILE"))
			continue
		}
		v := e.Value
		if strings.HasSuffix(e.Name, "_FILE") {
			value := k.secretFile(t, c, v)
			v = filepath.Join(dir, strings.ToLower(e.Name))
			if err := os.WriteFile(v, []byte(value), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		env[e.Name] = v
	}
	return env
}

// secretFile returns the value of the Secret key mounted at file.
func (k k8sManifests) secretFile(t *testing.T, c k8sContainer, file string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("deployment: volume %s is mounted read-write", m.Name)
		}
		for _, v := range k.deployment.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			if v.Secret.SecretName != k.secret.Metadata.Name {
				t.Fatalf("deployment: volume %s mounts secret %s, secret.yaml defines %s", v.Name, v.Secret.SecretName, k.secret.Metadata.Name)
			}
			key := rel
			if len(v.Secret.Items) > 0 {
				key = ""
				for _, it := range v.Secret.Items {
					if it.Path == rel {
						key = it.Key
					}
				}
			}
			value, ok := k.secret.StringData[key]
			if !ok {
				t.Fatalf("deployment: %s is not a key of secret %s", file, k.secret.Metadata.Name)
			}
			return value
		}
	}
	t.Fatalf("deployment: %s is not inside a mounted Secret", file)
	return ""
}

// placeholders returns the variables of env that hold an EXAMPLE value,
// directly or in the file their *_FILE twin names, by the secret's name.
func placeholders(t *testing.T, env map[string]string) []string {
	t.Helper()
	var out []string
	for k, v := range env {
		if name, ok := strings.CutSuffix(k, "_FILE"); ok {
			if strings.HasPrefix(readSecretFile(t, v), "EXAMPLE") {
				out = append(out, name)
			}
		} else if strings.HasPrefix(v, "EXAMPLE") {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		t.Fatal("deploy/k8s has no EXAMPLE credential")
	}
	slices.Sort(out)
	return out
}

// withCredentials replaces the EXAMPLE credentials of env, values and the
// files of *_FILE variables, with made-up ones, as an operator does.
func withCredentials(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	out := maps.Clone(env)
	for _, name := range placeholders(t, env) {
		if _, ok := env[name+"_FILE"]; ok {
			out[name+"_FILE"] = writeSecret(t, "secret", "made-up-"+strings.ToLower(name))
		} else {
			out[name] = "made-up-" + strings.ToLower(name)
		}
	}
	return out
}

func readSecretFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDeployKubernetes(t *testing.T) {
	vars := configVars(t)
	defaults := defaultConfig(t)
	port := httpPort(t, defaults.HttpAddr)
	k := readK8s(t)
	c := k.bridgeContainer(t)
	spec := k.deployment.Spec.Template.Spec

	// Configuration: secrets only as files, every provider configured, and
	// the whole environment loads.
	for name := range k.configMap.Data {
		if vars[name] == "providers.Secret" {
			t.Errorf("configmap: %s is a secret; put it in the Secret and set %s_FILE", name, name)
		}
	}
	for _, e := range c.Env {
		if vars[e.Name] == "providers.Secret" {
			t.Errorf("deployment: %s is set directly; mount it and set %s_FILE", e.Name, e.Name)
		}
	}
	env := k.env(t)
	for _, s := range providerSecretVars(t, vars) {
		if _, ok := env[s+"_FILE"]; !ok {
			t.Errorf("deployment: %s_FILE is not set", s)
		}
	}
	for key, v := range k.secret.StringData {
		if !strings.HasPrefix(v, "EXAMPLE") {
			t.Errorf("secret.yaml: %s must be an obvious placeholder starting with EXAMPLE, not a credential", key)
		}
	}
	if len(k.secret.Data) > 0 {
		t.Error("secret.yaml: use stringData placeholders, not data")
	}
	// As shipped, every EXAMPLE credential is refused by name; with real
	// ones the whole environment loads.
	_, err := loadEnv(t, env)
	for _, name := range placeholders(t, env) {
		if !strings.Contains(errString(err), name+" holds a placeholder") {
			t.Errorf("deployment: the placeholder of %s is not refused: %v", name, err)
		}
	}
	cfg := loadConfigWith(t, withCredentials(t, env))
	checkProviders(t, "deployment", cfg)
	// The bridge connects as the bridge role of deploy/nats/nats.conf, its
	// password a file of the Secret (k.env reads it from there).
	if _, role := daemontest.NATSRoles[cfg.NatsUser]; cfg.NatsUser != "bridge" || !role || !cfg.NatsPassword.IsSet() || cfg.NatsPasswordFile == "" {
		t.Errorf("deployment: NATS user %q (password file %q); want the bridge role of nats.conf with BRIDGE_NATS_PASSWORD_FILE", cfg.NatsUser, env["BRIDGE_NATS_PASSWORD_FILE"])
	}
	if !cfg.Provision && cfg.NatsURL == "" {
		t.Error("configmap: BRIDGE_PROVISION=false needs an external NATS (BRIDGE_NATS_URL)")
	}
	if cfg.NatsURL == "" {
		t.Error("configmap: BRIDGE_NATS_URL is empty: every replica would start its own embedded NATS")
	}

	// Ports and probes: the default BRIDGE_HTTP_ADDR, the paths serveHTTP serves.
	if p := httpPort(t, cfg.HttpAddr); p != port {
		t.Errorf("configmap: BRIDGE_HTTP_ADDR port %d, want the default %d the image exposes", p, port)
	}
	// The callback listener: a port of its own and a Service of its own,
	// which Prometheus does not scrape.
	callbackPort := 0
	if cfg.CallbackAddr != "" {
		callbackPort = httpPort(t, cfg.CallbackAddr)
	}
	if callbackPort == 0 || callbackPort == port {
		t.Errorf("configmap: BRIDGE_CALLBACK_ADDR %q, want a port of its own", cfg.CallbackAddr)
	}
	if len(c.Ports) != 2 || portNumber(t, c, "http") != port || portNumber(t, c, "callbacks") != callbackPort {
		t.Errorf("deployment: container ports %+v, want http %d and callbacks %d", c.Ports, port, callbackPort)
	}
	if ps := k.callbacks.Spec.Ports; len(ps) != 1 || portNumber(t, c, ps[0].TargetPort) != callbackPort {
		t.Errorf("callbacks service: ports %+v do not reach %d", ps, callbackPort)
	}
	if len(k.callbacks.Metadata.Annotations) > 0 || !maps.Equal(k.callbacks.Spec.Selector, k.service.Spec.Selector) {
		t.Errorf("callbacks service: annotations %v (never scraped), selector %v (the bridge's pods)", k.callbacks.Metadata.Annotations, k.callbacks.Spec.Selector)
	}
	paths := map[string]string{}
	for what, p := range map[string]*k8sProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("deployment: no HTTP %s probe", what)
			continue
		}
		if n := portNumber(t, c, p.HTTPGet.Port); n != port {
			t.Errorf("deployment: %s probe on port %d, want %d", what, n, port)
		}
		paths[what] = p.HTTPGet.Path
	}
	if paths["liveness"] != "/healthz" || paths["readiness"] != "/readyz" {
		t.Errorf("deployment: probes %v, want liveness /healthz and readiness /readyz", paths)
	}
	if len(k.service.Spec.Ports) != 1 || portNumber(t, c, k.service.Spec.Ports[0].TargetPort) != port {
		t.Errorf("service: ports %+v do not reach %d", k.service.Spec.Ports, port)
	}
	if a := k.service.Metadata.Annotations; a["prometheus.io/port"] != strconv.Itoa(port) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("service: scrape annotations %v, want port %d and path /metrics", a, port)
	}
	checkServed(t, paths["liveness"], paths["readiness"], k.service.Metadata.Annotations["prometheus.io/path"])

	// Shutdown, replicas, disruption budget.
	if grace := time.Duration(spec.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.ShutdownTimeout {
		t.Errorf("deployment: terminationGracePeriodSeconds %v must exceed BRIDGE_SHUTDOWN_TIMEOUT %v", grace, cfg.ShutdownTimeout)
	}
	if k.deployment.Spec.Replicas < 3 {
		t.Errorf("deployment: %d replicas, want at least 3", k.deployment.Spec.Replicas)
	}
	if c.Args != nil && !slices.Equal(c.Args, []string{"run"}) || c.Command != nil {
		t.Errorf("deployment: command %q args %q, want the image's entrypoint with run", c.Command, c.Args)
	}
	sel := k.deployment.Spec.Selector.MatchLabels
	for what, labels := range map[string]map[string]string{
		"pod template": k.deployment.Spec.Template.Metadata.Labels, "pdb selector": k.pdb.Spec.Selector.MatchLabels, "service selector": k.service.Spec.Selector,
	} {
		if len(sel) == 0 || !matches(sel, labels) && !matches(labels, sel) {
			t.Errorf("%s %v does not select the deployment's pods %v", what, labels, sel)
		}
	}
	switch {
	case k.pdb.Spec.MaxUnavailable != nil:
		if *k.pdb.Spec.MaxUnavailable != 1 {
			t.Errorf("pdb: maxUnavailable %d, want 1", *k.pdb.Spec.MaxUnavailable)
		}
	case k.pdb.Spec.MinAvailable != nil:
		if *k.pdb.Spec.MinAvailable >= k.deployment.Spec.Replicas {
			t.Errorf("pdb: minAvailable %d blocks every drain with %d replicas", *k.pdb.Spec.MinAvailable, k.deployment.Spec.Replicas)
		}
	default:
		t.Error("pdb: neither minAvailable nor maxUnavailable")
	}

	// Security.
	sc := c.SecurityContext
	if !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || !spec.SecurityContext.RunAsNonRoot || spec.SecurityContext.RunAsUser != 65532 {
		t.Errorf("deployment: security context %+v / %+v; want non-root 65532, read-only root, no privilege escalation, all capabilities dropped", spec.SecurityContext, sc)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("deployment: resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkServed asserts that the daemon's HTTP handler answers the given paths.
func checkServed(t *testing.T, paths ...string) {
	t.Helper()
	srv := httptest.NewServer(daemon.Handler(metrics.New("test"), func() bool { return true }))
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range paths {
		resp, err := client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200 from the daemon", p, resp.Status)
		}
	}
}

func TestDeployKEDA(t *testing.T) {
	k := readK8s(t)
	prod := loadConfigWith(t, withCredentials(t, k.env(t)))
	topo := prod.Topology()
	so := k.scaled.Spec
	cat := metricCatalogue(t)

	if so.ScaleTargetRef.Name != k.deployment.Metadata.Name || (so.ScaleTargetRef.Kind != "" && so.ScaleTargetRef.Kind != "Deployment") {
		t.Errorf("keda: scaleTargetRef %+v is not the Deployment %s", so.ScaleTargetRef, k.deployment.Metadata.Name)
	}
	if so.MinReplicaCount == nil || so.MaxReplicaCount == nil {
		t.Fatal("keda: set minReplicaCount and maxReplicaCount")
	}
	minR, maxR := *so.MinReplicaCount, *so.MaxReplicaCount
	if minR != k.deployment.Spec.Replicas || maxR < minR {
		t.Errorf("keda: replicas %d to %d, want from the Deployment's %d up", minR, maxR, k.deployment.Spec.Replicas)
	}
	natsOpts, _ := daemontest.LoadNATSConfig(t, filepath.Join(deployDir, "nats", "nats.conf"), nil)
	types := map[string]bool{}
	for _, tr := range so.Triggers {
		types[tr.Type] = true
		md := tr.Metadata
		switch tr.Type {
		case "nats-jetstream":
			if md["stream"] != topo.RequestsStream || md["consumer"] != topo.Consumer {
				t.Errorf("keda nats-jetstream: stream %q consumer %q, want %s and %s", md["stream"], md["consumer"], topo.RequestsStream, topo.Consumer)
			}
			if md["account"] == "" {
				t.Error("keda nats-jetstream: no account ($G without accounts)")
			}
			if _, p, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"]); err != nil || p != strconv.Itoa(natsOpts.HTTPPort) {
				t.Errorf("keda nats-jetstream: natsServerMonitoringEndpoint %q is not the monitoring port %d", md["natsServerMonitoringEndpoint"], natsOpts.HTTPPort)
			}
			// KEDA's lag is num_pending + num_ack_pending, and parked
			// requests are ack-pending: a consumer full of parked requests
			// must not scale beyond the minimum by itself.
			lag, err := strconv.Atoi(md["lagThreshold"])
			if err != nil || lag <= 0 {
				t.Fatalf("keda nats-jetstream: lagThreshold %q", md["lagThreshold"])
			}
			if parkedOnly := int(math.Ceil(float64(topo.MaxAckPending) / float64(lag))); parkedOnly > minR {
				t.Errorf("keda nats-jetstream: lagThreshold %d scales to %d replicas on parked requests alone (max_ack_pending %d); raise it to at least %d",
					lag, parkedOnly, topo.MaxAckPending, (topo.MaxAckPending+minR-1)/minR)
			}
		case "prometheus":
			if md["serverAddress"] == "" || md["query"] == "" {
				t.Errorf("keda prometheus: metadata %v lacks serverAddress or query", md)
			}
			checkPromQL(t, "keda prometheus query", md["query"], cat)
			if !strings.Contains(md["query"], "statusbridge_backlog") {
				t.Errorf("keda prometheus: query %q, want the due-now backlog statusbridge_backlog", md["query"])
			}
			if v, err := strconv.ParseFloat(md["threshold"], 64); err != nil || v <= 0 {
				t.Errorf("keda prometheus: threshold %q", md["threshold"])
			}
		default:
			t.Errorf("keda: trigger %s: deploy_test.go does not know how to check it", tr.Type)
		}
	}
	if !types["nats-jetstream"] {
		t.Error("keda: no nats-jetstream trigger")
	}
}

// --- Grafana and PromQL ---

type metricInfo struct {
	typ    string // HISTOGRAM, SUMMARY, COUNTER, GAUGE, ...
	labels map[string]bool
}

// metricCatalogue gathers every metric the bridge exports, with its labels:
// each labelled collector gets one child so that it shows in Gather. The
// capacity metrics are registered as the daemon registers them: their
// series start for every provider, and a provider's gate adds its allowed
// rate.
func metricCatalogue(t *testing.T) map[string]metricInfo {
	t.Helper()
	m := metrics.New("test")
	capm := capacity.NewMetrics(m.Registry, []string{"x"})
	callback.NewMetrics(m.Registry) // at 0 for every outcome
	nc, err := nats.Connect(daemontest.StartNATS(t).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "CATALOGUE"})
	if err != nil {
		t.Fatal(err)
	}
	brk := capacity.BreakerSettings{Failures: 1, Cooldown: time.Second, MaxCooldown: time.Second, ProbeTimeout: time.Second}
	if _, err := capacity.Open(ctx, kv, "x", capacity.Settings{MaxWait: time.Second, Breaker: brk}, slog.New(slog.DiscardHandler), capm); err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		get := v.Field(i).MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue
		}
		ok := false
		for n := 0; n <= 8 && !ok; n++ {
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			ok = get.Call(args)[1].IsNil()
		}
		if !ok {
			t.Fatalf("metrics.%s: could not create a child", v.Type().Field(i).Name)
		}
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	cat := map[string]metricInfo{}
	for _, mf := range mfs {
		info := metricInfo{typ: mf.GetType().String(), labels: map[string]bool{}}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				info.labels[lp.GetName()] = true
			}
		}
		cat[mf.GetName()] = info
	}
	return cat
}

// lookup finds the family of a series name (a histogram's _bucket, _sum,
// _count; a summary's _sum, _count).
func lookup(cat map[string]metricInfo, name string) (metricInfo, bool) {
	if info, ok := cat[name]; ok {
		return info, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		info, ok := cat[base]
		switch {
		case !ok:
		case info.typ == "HISTOGRAM":
			withLE := map[string]bool{"le": suffix == "_bucket"}
			for l := range info.labels {
				withLE[l] = true
			}
			return metricInfo{typ: info.typ, labels: withLE}, true
		case info.typ == "SUMMARY" && suffix != "_bucket":
			return info, true
		}
	}
	return metricInfo{}, false
}

var (
	promStringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promVarRE      = regexp.MustCompile(`\$\{?\w+\}?`)
	promMatchersRE = regexp.MustCompile(`\{[^}]*\}`)
	promLabelRE    = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promRangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	promGroupRE    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promIdentRE    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "Inf": true, "NaN": true}
)

// checkPromQL asserts that every metric expr names is exported by the
// bridge, and every label it matches or groups by belongs to one of them.
func checkPromQL(t *testing.T, where, expr string, cat map[string]metricInfo) []string {
	t.Helper()
	var labels []string
	s := promStringRE.ReplaceAllString(expr, `""`)
	s = promMatchersRE.ReplaceAllStringFunc(s, func(m string) string {
		for _, l := range promLabelRE.FindAllStringSubmatch(m, -1) {
			labels = append(labels, l[1])
		}
		return " "
	})
	s = promRangeRE.ReplaceAllString(s, " ")
	s = promVarRE.ReplaceAllString(s, " ")
	s = promGroupRE.ReplaceAllStringFunc(s, func(m string) string {
		inner := promGroupRE.FindStringSubmatch(m)[1]
		for _, l := range strings.Split(inner, ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		return " "
	})
	var names []string
	known := map[string]bool{"job": true, "instance": true} // Prometheus's target labels
	for _, loc := range promIdentRE.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if promKeywords[id] || (loc[0] > 0 && (s[loc[0]-1] == '.' || (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9'))) {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		info, ok := lookup(cat, id)
		if !ok {
			t.Errorf("%s: %s is not a metric of the bridge (internal/metrics): %s", where, id, expr)
			continue
		}
		names = append(names, id)
		for l := range info.labels {
			known[l] = true
		}
	}
	if len(names) == 0 {
		t.Errorf("%s: no bridge metric in %s", where, expr)
	}
	for _, l := range labels {
		if !known[l] {
			t.Errorf("%s: label %s is on none of %v: %s", where, l, names, expr)
		}
	}
	return names
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaInput struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type grafanaDashboard struct {
	Inputs        []grafanaInput `json:"__inputs"`
	SchemaVersion int            `json:"schemaVersion"`
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

func TestDeployGrafana(t *testing.T) {
	cat := metricCatalogue(t)
	for _, f := range filesOf(t, "dashboard") {
		var d grafanaDashboard
		if err := json.Unmarshal(readDeploy(t, f), &d); err != nil {
			t.Fatalf("deploy/%s: %v", f, err)
		}
		where := "deploy/" + f
		if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
			t.Errorf("%s: schemaVersion %d, uid %q, title %q", where, d.SchemaVersion, d.UID, d.Title)
		}
		if !slices.ContainsFunc(d.Inputs, func(in grafanaInput) bool {
			return in.Name == "DS_PROMETHEUS" && in.Type == "datasource" && in.PluginID == "prometheus"
		}) {
			t.Errorf("%s: no DS_PROMETHEUS datasource input", where)
		}
		used := map[string]bool{}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(string)
			if m, ok := v.Query.(map[string]any); ok {
				q, _ = m["query"].(string)
			}
			m := labelValuesRE.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", where, v.Name, q)
				continue
			}
			for _, n := range checkPromQL(t, where+" variable "+v.Name, fmt.Sprintf("sum by (%s) (%s)", m[2], m[1]), cat) {
				used[n] = true
			}
		}
		ids := map[int]bool{}
		var walk func([]grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d is used twice", where, p.ID)
				}
				ids[p.ID] = true
				if p.GridPos == nil {
					t.Errorf("%s: panel %q has no gridPos", where, p.Title)
				}
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
					t.Errorf("%s: panel %q does not use the ${DS_PROMETHEUS} datasource", where, p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", where, p.Title)
				}
				for _, tg := range p.Targets {
					for _, n := range checkPromQL(t, fmt.Sprintf("%s panel %q", where, p.Title), tg.Expr, cat) {
						used[n] = true
					}
				}
			}
		}
		walk(d.Panels)
		// Every metric of the bridge's own catalogue is on the dashboard.
		for name := range cat {
			if !strings.HasPrefix(name, "statusbridge_") {
				continue
			}
			shown := used[name]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				shown = shown || used[name+suffix]
			}
			if !shown {
				t.Errorf("%s: metric %s is on no panel", where, name)
			}
		}
	}
}

// --- README ---

var deployPathRE = regexp.MustCompile("deploy/[A-Za-z0-9_./*<>-]*[A-Za-z0-9_/*>]")

func TestDeployREADME(t *testing.T) {
	readme := string(readDeploy(t, "README.md"))
	files := deployFiles(t)
	// Every path it names exists.
	for _, p := range deployPathRE.FindAllString(readme, -1) {
		rel := strings.TrimSuffix(strings.TrimPrefix(p, "deploy/"), "/")
		if rel == "" || strings.ContainsAny(rel, "*<>") {
			continue
		}
		if _, err := os.Stat(filepath.Join(deployDir, filepath.FromSlash(rel))); err != nil {
			t.Errorf("deploy/README.md names %s, which does not exist", p)
		}
	}
	// Every file is explained: named, or its directory is.
	for f := range files {
		if f == "README.md" {
			continue
		}
		if !strings.Contains(readme, f) && !strings.Contains(readme, path.Dir(f)+"/") {
			t.Errorf("deploy/README.md does not mention deploy/%s", f)
		}
	}
	for _, s := range []string{"nats stream add --config", "nats consumer add", "BRIDGE_PROVISION=false", "sync_interval: always", "num_pending", "docker build -f deploy/Dockerfile ."} {
		if !strings.Contains(readme, s) {
			t.Errorf("deploy/README.md does not explain %q", s)
		}
	}
}
