package install

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/artifact"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/unpack"
	"github.com/kestrel-mon/kestrel/proto"
)

// stateControl is a fast control script: "running" is var/state, no process.
const stateControl = `#!/bin/sh
cd "$(dirname "$0")" || exit 1
mkdir -p var
case "$1" in
start)
	if [ -f FAIL_START ]; then echo "start failed: bad build" >&2; exit 1; fi
	if [ -f NEVER_STARTS ]; then exit 0; fi
	echo started > var/state ;;
stop) echo stoped > var/state ;;
status) cat var/state 2>/dev/null || echo stoped ;;
esac
`

type artServer struct {
	mu    sync.Mutex
	files map[string][]byte
	srv   *httptest.Server
	gets  atomic.Int64
}

func newArtServer(t *testing.T) *artServer {
	s := &artServer{files: map[string][]byte{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".tar.gz") {
			s.gets.Add(1)
		}
		w.Write(b)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *artServer) put(a fakeagent.Artifact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files["/a/"+a.FileName()] = a.Data
	s.files["/a/"+a.FileName()+".md5"] = []byte(a.Md5 + "  " + a.FileName() + "\n")
}

func pkg(version string, extra ...fakeagent.Entry) []byte {
	return fakeagent.Package(fakeagent.Options{Version: version, Control: stateControl, Extra: extra})
}

type env struct {
	t    *testing.T
	m    *Manager
	srv  *artServer
	priv ed25519.PrivateKey
	root string
}

func newEnv(t *testing.T, withKey, require bool) *env {
	root := t.TempDir()
	e := &env{t: t, srv: newArtServer(t), root: root}
	e.m = &Manager{
		Layout:        Layout{Root: root},
		Keep:          3,
		Control:       Control{Timeout: 10 * time.Second},
		Fetcher:       artifact.NewFetcher(10*time.Second, 1<<20, "", nil),
		Limits:        unpack.Limits{MaxBytes: 1 << 20, MaxFiles: 100},
		HealthTimeout: 2 * time.Second,
		HealthPoll:    20 * time.Millisecond,
		Log:           slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if withKey {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		e.priv = priv
		e.m.Keys = []ed25519.PublicKey{pub}
		e.m.RequireSignature = require
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// publish serves a version and returns the desired agent for it.
func (e *env) publish(version string, data []byte) proto.DesiredAgent {
	a := fakeagent.NewArtifact("agent", version, data, e.priv)
	e.srv.put(a)
	return proto.DesiredAgent{Name: "agent", Version: version, Tarball: e.srv.srv.URL + "/a", Cmd: "start", Sha256: a.Sha256, Signature: a.Signature}
}

func (e *env) apply(d proto.DesiredAgent) (Result, error) {
	return e.m.Apply(context.Background(), d)
}

func (e *env) active() string {
	v, err := e.m.Layout.Active("agent")
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) status(v string) string {
	return e.m.Control.Status(context.Background(), e.m.Layout.VersionDir("agent", v))
}

// whole checks the host runs exactly the active version.
func (e *env) whole(want string) {
	e.t.Helper()
	if a := e.active(); a != want {
		e.t.Fatalf("active %q, want %q", a, want)
	}
	vs, _ := e.m.Layout.Versions("agent")
	for _, v := range vs {
		st := e.status(v.Version)
		if (st == proto.AgentStarted) != (v.Version == want) {
			e.t.Fatalf("version %s is %s with %s active", v.Version, st, want)
		}
	}
	if mk, _ := e.m.Layout.Marker("agent"); mk != nil {
		e.t.Fatalf("marker left: %+v", mk)
	}
	ents, _ := os.ReadDir(e.m.Layout.AgentDir("agent"))
	for _, x := range ents {
		if strings.HasPrefix(x.Name(), ".tmp-") || strings.HasPrefix(x.Name(), ".trash-") {
			e.t.Fatalf("leftover %s", x.Name())
		}
	}
}

func (e *env) versions() []string {
	vs, _ := e.m.Layout.Versions("agent")
	var out []string
	for _, v := range vs {
		out = append(out, v.Version)
	}
	slices.Sort(out)
	return out
}

func TestInstallUpgradeRollbackPrune(t *testing.T) {
	e := newEnv(t, true, true)
	d1 := e.publish("1.0", pkg("1.0"))
	if r, err := e.apply(d1); r != ResultInstalled || err != nil {
		t.Fatalf("fresh install: %s %v", r, err)
	}
	e.whole("1.0")
	if r, _ := e.apply(d1); r != ResultNothing {
		t.Fatalf("second apply: %s", r)
	}
	d2 := e.publish("2.0", pkg("2.0"))
	if r, err := e.apply(d2); r != ResultInstalled || err != nil {
		t.Fatalf("upgrade: %s %v", r, err)
	}
	e.whole("2.0")
	if st := e.m.Layout.State("agent"); st.Previous != "1.0" {
		t.Fatalf("rollback target %q", st.Previous)
	}
	// Rollback by desiring 1.0 again: the kept directory is reused.
	gets := e.srv.gets.Load()
	if r, err := e.apply(d1); r != ResultInstalled || err != nil {
		t.Fatalf("rollback: %s %v", r, err)
	}
	e.whole("1.0")
	if e.srv.gets.Load() != gets {
		t.Fatal("rollback to a kept version downloaded it again")
	}
	for _, v := range []string{"3.0", "4.0", "5.0"} {
		if r, err := e.apply(e.publish(v, pkg(v))); r != ResultInstalled || err != nil {
			t.Fatalf("install %s: %s %v", v, r, err)
		}
	}
	e.whole("5.0")
	if got := e.versions(); !slices.Equal(got, []string{"3.0", "4.0", "5.0"}) {
		t.Fatalf("kept %v, want the 3 newest", got)
	}
	// cmd stop, then start again.
	stop := proto.DesiredAgent{Name: "agent", Version: "5.0", Cmd: "stop"}
	if r, err := e.apply(stop); r != ResultStopped || err != nil {
		t.Fatalf("stop: %s %v", r, err)
	}
	if s := e.status("5.0"); s != proto.AgentStoped {
		t.Fatalf("status after stop %q", s)
	}
	if r, _ := e.apply(stop); r != ResultNothing {
		t.Fatalf("second stop: %s", r)
	}
	if r, err := e.apply(e.publish("5.0", pkg("5.0"))); r != ResultStarted || err != nil {
		t.Fatalf("start after stop: %s %v", r, err)
	}
	e.whole("5.0")
}

func TestUnhealthyRollsBackAndIsNotRetried(t *testing.T) {
	e := newEnv(t, false, false)
	var healthy atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "sick", 500)
		}
	}))
	defer hs.Close()
	healthy.Store(true)
	d1 := e.publish("1.0", pkg("1.0"))
	d1.Health = &proto.HealthCheck{HTTP: hs.URL + "/health", Timeout: 2}
	if r, err := e.apply(d1); r != ResultInstalled {
		t.Fatalf("%s %v", r, err)
	}
	for _, tc := range []struct {
		version string
		data    []byte
		sick    bool
		want    string
	}{
		{"2.0", pkg("2.0"), true, "answered 500"},
		{"2.1", pkg("2.1", fakeagent.Entry{Name: "FAIL_START", Body: "1"}), false, "start failed: bad build"},
		{"2.2", pkg("2.2", fakeagent.Entry{Name: "NEVER_STARTS", Body: "1"}), false, `control status says "stoped"`},
	} {
		healthy.Store(!tc.sick)
		d := e.publish(tc.version, tc.data)
		d.Health = d1.Health
		if r, err := e.apply(d); r != ResultRolledBack || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %s %v, want rolled back with %q", tc.version, r, err, tc.want)
		}
		e.whole("1.0")
		st := e.m.Layout.State("agent")
		if st.FailedVersion != tc.version || !strings.Contains(st.Error, tc.want) || !strings.Contains(st.Error, "rolled back to 1.0") {
			t.Fatalf("state %+v", st)
		}
		// Not retried while it stays desired, even after a restart.
		healthy.Store(true)
		gets := e.srv.gets.Load()
		if r, _ := e.apply(d); r != ResultSkipped {
			t.Fatalf("retry of failed version: %s", r)
		}
		if e.srv.gets.Load() != gets {
			t.Fatal("failed version downloaded again")
		}
		// Meanwhile the version it was rolled back to is kept running.
		if _, err := e.m.Control.Run(context.Background(), e.m.Layout.VersionDir("agent", "1.0"), "stop"); err != nil {
			t.Fatal(err)
		}
		if r, err := e.apply(d); r != ResultStarted || err != nil {
			t.Fatalf("failed version desired, 1.0 stopped: %s %v, want 1.0 started again", r, err)
		}
		e.whole("1.0")
		if st := e.m.Layout.State("agent"); st.FailedVersion != tc.version || st.Error == "" {
			t.Fatalf("restart of 1.0 forgot the failure: %+v", st)
		}
		if e.srv.gets.Load() != gets {
			t.Fatal("failed version downloaded again")
		}
		// Desiring the running version clears the failure.
		if r, _ := e.apply(d1); r != ResultNothing {
			t.Fatalf("back to 1.0: %s", r)
		}
		if st := e.m.Layout.State("agent"); st.FailedVersion != "" || st.Error != "" {
			t.Fatalf("failure not forgotten: %+v", st)
		}
	}
	// Once healthy, 2.0 is tried again (desired version changed 2.2 -> 1.0 -> 2.0).
	d := e.publish("2.0", pkg("2.0"))
	if r, err := e.apply(d); r != ResultInstalled {
		t.Fatalf("2.0 after a change of desired version: %s %v", r, err)
	}
	e.whole("2.0")
	if st := e.m.Layout.State("agent"); st.Previous != "1.0" || st.Error != "" {
		t.Fatalf("state %+v", st)
	}
}

func TestRefusalsLeaveRunningVersion(t *testing.T) {
	e := newEnv(t, true, true)
	if r, err := e.apply(e.publish("1.0", pkg("1.0"))); r != ResultInstalled {
		t.Fatalf("%s %v", r, err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name   string
		mod    func(d *proto.DesiredAgent)
		data   []byte
		reason artifact.Reason
		want   string
	}{
		{"wrong sha256", func(d *proto.DesiredAgent) { d.Sha256 = strings.Repeat("ab", 32) }, nil, artifact.ReasonChecksum, "sha256 mismatch"},
		{"bad sha256 text", func(d *proto.DesiredAgent) { d.Sha256 = "xyz" }, nil, artifact.ReasonChecksum, "bad sha256"},
		{"bad signature", func(d *proto.DesiredAgent) {
			a := fakeagent.NewArtifact("agent", d.Version, pkg(d.Version), otherKey)
			d.Signature = a.Signature
		}, nil, artifact.ReasonSignature, "bad signature"},
		{"signature of another version", func(d *proto.DesiredAgent) {
			a := fakeagent.NewArtifact("agent", "1.0", pkg(d.Version), e.priv)
			d.Signature = a.Signature
		}, nil, artifact.ReasonSignature, "bad signature"},
		{"unsigned", func(d *proto.DesiredAgent) { d.Signature = "" }, nil, artifact.ReasonUnsigned, "not signed"},
		{"dotdot", nil, fakeagent.Tarball([]fakeagent.Entry{{Name: "control", Mode: 0o755, Body: stateControl}, {Name: "../x", Body: "x"}}), artifact.ReasonUnpack, `".." component`},
		{"absolute", nil, fakeagent.Tarball([]fakeagent.Entry{{Name: "/tmp/x", Body: "x"}}), artifact.ReasonUnpack, "absolute path"},
		{"escaping symlink", nil, fakeagent.Tarball([]fakeagent.Entry{{Name: "var", Type: tar.TypeSymlink, Linkname: "../../.."}}), artifact.ReasonUnpack, "leaves the tree"},
		{"no control", nil, fakeagent.Tarball([]fakeagent.Entry{{Name: "kestrel-agent", Mode: 0o755, Body: "x"}}), artifact.ReasonUnpack, "no executable regular file control"},
		{"control not executable", nil, fakeagent.Tarball([]fakeagent.Entry{{Name: "control", Mode: 0o644, Body: "x"}}), artifact.ReasonUnpack, "no executable regular file control"},
		{"download over size", nil, pkg("x", fakeagent.Entry{Name: "big", Body: randomString(1 << 20)}), artifact.ReasonTooLarge, "over the limit"},
		{"unpacked over size", nil, pkg("x", fakeagent.Entry{Name: "big", Body: strings.Repeat("\x00", 2<<20)}), artifact.ReasonUnpack, "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if data == nil {
				data = pkg("2.0")
			}
			d := e.publish("2.0", data)
			if tc.mod != nil {
				tc.mod(&d)
			}
			r, err := e.apply(d)
			if r != ResultRefused || artifact.ReasonOf(err) != tc.reason || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s %v, want refused (%s) with %q", r, err, tc.reason, tc.want)
			}
			e.whole("1.0")
			if st := e.m.Layout.State("agent"); !strings.Contains(st.Error, tc.want) || st.FailedVersion != "" {
				t.Fatalf("state %+v", st)
			}
			if slices.Contains(e.versions(), "2.0") {
				t.Fatal("refused version installed")
			}
		})
	}
	// The next good artifact installs and clears the error.
	if r, err := e.apply(e.publish("2.0", pkg("2.0"))); r != ResultInstalled {
		t.Fatalf("%s %v", r, err)
	}
	e.whole("2.0")
	if st := e.m.Layout.State("agent"); st.Error != "" {
		t.Fatalf("error kept after success: %+v", st)
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return string(b)
}

func TestOpenFalconMd5(t *testing.T) {
	e := newEnv(t, false, false)
	d := e.publish("1.0", pkg("1.0"))
	d.Sha256, d.Signature = "", ""
	if r, err := e.apply(d); r != ResultInstalled {
		t.Fatalf("md5 install: %s %v", r, err)
	}
	// md5 base URL elsewhere, and wrong.
	d2 := e.publish("2.0", pkg("2.0"))
	d2.Sha256 = ""
	e.srv.mu.Lock()
	e.srv.files["/sums/agent-2.0.tar.gz.md5"] = []byte("00000000000000000000000000000000  agent-2.0.tar.gz\n")
	e.srv.mu.Unlock()
	d2.Md5 = e.srv.srv.URL + "/sums/"
	if r, err := e.apply(d2); r != ResultRefused || !strings.Contains(err.Error(), "md5 mismatch") {
		t.Fatalf("wrong md5: %s %v", r, err)
	}
	d2.Md5 = e.srv.srv.URL + "/nothing"
	if r, err := e.apply(d2); r != ResultRefused || !strings.Contains(err.Error(), "no md5 file") {
		t.Fatalf("missing md5: %s %v", r, err)
	}
	e.whole("1.0")
	d2.Md5 = ""
	if r, err := e.apply(d2); r != ResultInstalled {
		t.Fatalf("%s %v", r, err)
	}
	e.whole("2.0")
}

func TestSignatureSidecarAndOptional(t *testing.T) {
	e := newEnv(t, true, true)
	// No signature in the response: the .sig sidecar is used.
	a := fakeagent.NewArtifact("agent", "1.0", pkg("1.0"), e.priv)
	e.srv.put(a)
	e.srv.mu.Lock()
	e.srv.files["/a/"+a.FileName()+".sig"] = []byte(a.Signature + "\n")
	e.srv.mu.Unlock()
	d := proto.DesiredAgent{Name: "agent", Version: "1.0", Tarball: e.srv.srv.URL + "/a/", Cmd: "start"}
	if r, err := e.apply(d); r != ResultInstalled {
		t.Fatalf("sidecar signature: %s %v", r, err)
	}
	// Key configured, signature optional: unsigned accepted, bad refused.
	e.m.RequireSignature = false
	d2 := e.publish("2.0", pkg("2.0"))
	d2.Signature = ""
	if r, err := e.apply(d2); r != ResultInstalled {
		t.Fatalf("unsigned without require: %s %v", r, err)
	}
	d3 := e.publish("3.0", pkg("3.0"))
	d3.Signature = d2.Signature + fakeagent.NewArtifact("agent", "2.0", pkg("2.0"), e.priv).Signature
	if r, _ := e.apply(d3); r != ResultRefused {
		t.Fatalf("bad signature without require: %s", r)
	}
}

func TestPruneKeepsActiveAndRollbackTarget(t *testing.T) {
	e := newEnv(t, false, false)
	dir := e.m.Layout.AgentDir("agent")
	base := time.Now().Add(-time.Hour)
	for i, v := range []string{"a", "b", "c", "d", "e", "f"} {
		vd := filepath.Join(dir, v)
		os.MkdirAll(vd, 0o755)
		meta := fmt.Sprintf(`{"installed_at":%q,"sha256":"x"}`, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano))
		os.WriteFile(filepath.Join(vd, metaFile), []byte(meta), 0o644)
	}
	// Open-Falcon-installed dir without metadata: dated by mtime.
	os.MkdirAll(filepath.Join(dir, "old"), 0o755)
	os.Chtimes(filepath.Join(dir, "old"), base.Add(-time.Hour), base.Add(-time.Hour))
	e.m.Layout.SetActive("agent", "old")
	e.m.Layout.SetState("agent", State{Previous: "a"})
	removed, err := e.m.Prune("agent")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"b", "c", "d", "e"}) || !slices.Equal(e.versions(), []string{"a", "f", "old"}) {
		t.Fatalf("removed %v kept %v", removed, e.versions())
	}
	// A marker protects both of its versions too.
	e.m.Keep = 2
	e.m.Layout.SetMarker("agent", Marker{Version: "f", Previous: "old"})
	if removed, _ := e.m.Prune("agent"); len(removed) != 0 || len(e.versions()) != 3 {
		t.Fatalf("removed %v", removed)
	}
	e.m.Layout.ClearMarker("agent")
	if removed, _ := e.m.Prune("agent"); !slices.Equal(removed, []string{"f"}) {
		t.Fatalf("removed %v, want [f]", removed)
	}
}

// setupSwitch installs 1.0 and unpacks 2.0 next to it, as an interrupted
// switch would have left them.
func setupSwitch(t *testing.T) *env {
	e := newEnv(t, false, false)
	if r, err := e.apply(e.publish("1.0", pkg("1.0"))); r != ResultInstalled {
		t.Fatalf("%s %v", r, err)
	}
	d := e.publish("2.0", pkg("2.0"))
	tmp, _, err := e.m.prepare(context.Background(), d, e.m.Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.placeVersion("agent", "2.0", tmp); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) run(v, cmd string) {
	if _, err := e.m.Control.Run(context.Background(), e.m.Layout.VersionDir("agent", v), cmd); err != nil {
		e.t.Fatal(err)
	}
}

func TestRecoverFromEachMarkerState(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(e *env)
		want  string
	}{
		{"marker written, nothing stopped", func(e *env) {
			e.m.Layout.SetMarker("agent", Marker{Version: "2.0", Previous: "1.0"})
		}, "1.0"},
		{"old stopped", func(e *env) {
			e.m.Layout.SetMarker("agent", Marker{Version: "2.0", Previous: "1.0"})
			e.run("1.0", "stop")
		}, "1.0"},
		{"new started, not committed", func(e *env) {
			e.m.Layout.SetMarker("agent", Marker{Version: "2.0", Previous: "1.0"})
			e.run("1.0", "stop")
			e.run("2.0", "start")
		}, "1.0"},
		{"committed, marker not cleared", func(e *env) {
			e.m.Layout.SetMarker("agent", Marker{Version: "2.0", Previous: "1.0"})
			e.run("1.0", "stop")
			e.run("2.0", "start")
			e.m.Layout.SetActive("agent", "2.0")
		}, "2.0"},
		{"committed, new crashed meanwhile", func(e *env) {
			e.m.Layout.SetMarker("agent", Marker{Version: "2.0", Previous: "1.0"})
			e.run("1.0", "stop")
			e.m.Layout.SetActive("agent", "2.0")
		}, "2.0"},
		{"rolling back, new stopped", func(e *env) {
			e.m.Layout.SetMarker("agent", Marker{Version: "2.0", Previous: "1.0"})
			e.run("1.0", "stop")
			e.run("2.0", "start")
			e.run("2.0", "stop")
		}, "1.0"},
		{"corrupt marker", func(e *env) {
			os.WriteFile(filepath.Join(e.m.Layout.AgentDir("agent"), markerFile), []byte("{garbage"), 0o644)
		}, "1.0"},
		{"leftover temp dirs only", func(e *env) {
			os.MkdirAll(filepath.Join(e.m.Layout.AgentDir("agent"), ".tmp-unpack-3.0-123", "bin"), 0o755)
			os.WriteFile(filepath.Join(e.m.Layout.AgentDir("agent"), ".tmp-download-9"), []byte("partial"), 0o644)
			os.MkdirAll(filepath.Join(e.m.Layout.AgentDir("agent"), ".trash-0.9-1", "0.9"), 0o755)
		}, "1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setupSwitch(t)
			tc.setup(e)
			if err := e.m.Recover(ctx, "agent"); err != nil {
				t.Fatal(err)
			}
			e.whole(tc.want)
			if !slices.Contains(e.versions(), "2.0") {
				t.Fatal("complete version 2.0 removed")
			}
			st := e.m.Layout.State("agent")
			if tc.want == "2.0" && st.Previous != "1.0" {
				t.Fatalf("rollback target %q after committed recovery", st.Previous)
			}
			// The next apply finishes the interrupted install.
			d := e.publish("2.0", pkg("2.0"))
			if r, err := e.apply(d); err != nil || (r != ResultInstalled && r != ResultNothing) {
				t.Fatalf("apply after recovery: %s %v", r, err)
			}
			e.whole("2.0")
		})
	}
	t.Run("fresh install interrupted", func(t *testing.T) {
		e := newEnv(t, false, false)
		d := e.publish("1.0", pkg("1.0"))
		os.MkdirAll(e.m.Layout.AgentDir("agent"), 0o755)
		tmp, _, err := e.m.prepare(ctx, d, e.m.Log)
		if err != nil {
			t.Fatal(err)
		}
		e.m.placeVersion("agent", "1.0", tmp)
		e.m.Layout.SetMarker("agent", Marker{Version: "1.0"})
		e.run("1.0", "start")
		if err := e.m.Recover(ctx, "agent"); err != nil {
			t.Fatal(err)
		}
		e.whole("")
		if st := e.m.Layout.State("agent"); !strings.Contains(st.Error, "interrupted") {
			t.Fatalf("state %+v", st)
		}
	})
}

func TestCheckDesired(t *testing.T) {
	ok := proto.DesiredAgent{Name: "kestrel-agent", Version: "1.2.3-rc1+b4", Tarball: "http://h/x", Cmd: "start"}
	if err := CheckDesired(ok); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*proto.DesiredAgent){
		func(d *proto.DesiredAgent) { d.Name = "../etc" },
		func(d *proto.DesiredAgent) { d.Name = "" },
		func(d *proto.DesiredAgent) { d.Version = ".." },
		func(d *proto.DesiredAgent) { d.Version = "1/2" },
		func(d *proto.DesiredAgent) { d.Version = ".hidden" },
		func(d *proto.DesiredAgent) { d.Tarball = "file:///tmp" },
		func(d *proto.DesiredAgent) { d.Cmd = "restart" },
		func(d *proto.DesiredAgent) { d.Health = &proto.HealthCheck{HTTP: "gopher://x"} },
	} {
		d := ok
		mod(&d)
		if err := CheckDesired(d); err == nil {
			t.Errorf("%+v accepted", d)
		}
	}
}
