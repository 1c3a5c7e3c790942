//go:build e2e

package e2e

import (
	"archive/tar"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
)

// TestUpdaterRefusals: every bad artifact is refused with a clear log line and an
// error in the next heartbeat, and the running version is untouched.
func TestUpdaterRefusals(t *testing.T) {
	hurl := healthServer(t)
	m := startMeta(t, metaOpts{Version: "1.0.0", HealthURL: hurl})
	m.publish("1.0.0", agentPkg("1.0.0", false))
	p := startUpdater(t, m, updOpts{Hostname: "refuse-1", RequireSignature: true, MaxSize: 512 << 10}, "")
	wait.Until(t, "1.0.0 installed", 60*time.Second, state(func() (bool, string) { return whole(p.root, "1.0.0") }))
	pid := fakeagent.Pid(filepath.Join(p.root, agentName, "1.0.0"))

	// Serves the artifacts dir, but cuts every tarball in half.
	trunc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(m.artifacts, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer trunc.Close()

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	sidecar := func(v, ext, content string) {
		os.WriteFile(filepath.Join(m.artifacts, agentName+"-"+v+".tar.gz"+ext), []byte(content+"\n"), 0o644)
	}
	shaOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	ctl := fakeagent.Entry{Name: "control", Mode: 0o755, Body: fakeagent.RepoControl()}
	bad := func(e fakeagent.Entry) []byte { return fakeagent.Tarball([]fakeagent.Entry{ctl, e}) }
	big := make([]byte, 1<<20)
	rand.Read(big)

	for _, tc := range []struct {
		version string
		setup   func(v string)
		tarball string
		want    string
	}{
		{"2.0.1", func(v string) {
			m.publish(v, agentPkg(v, false))
			sidecar(v, ".sha256", strings.Repeat("0", 64)+"  "+agentName+"-"+v+".tar.gz")
		}, "", "sha256 mismatch"},
		{"2.0.2", func(v string) {
			data := agentPkg(v, false)
			m.publish(v, data)
			sig := ed25519.Sign(otherKey, proto.ArtifactMessage(agentName, v, shaOf(data)))
			sidecar(v, ".sig", base64.StdEncoding.EncodeToString(sig))
		}, "", "bad signature"},
		{"2.0.3", func(v string) {
			// Signed by the fleet key, for another version of the same bytes.
			data := agentPkg(v, false)
			m.publish(v, data)
			key, _ := os.ReadFile(m.priv)
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(key)))
			sig := ed25519.Sign(ed25519.PrivateKey(raw), proto.ArtifactMessage(agentName, "1.0.0", shaOf(data)))
			sidecar(v, ".sig", base64.StdEncoding.EncodeToString(sig))
		}, "", "bad signature"},
		{"2.0.4", func(v string) { m.publishUnsigned(v, agentPkg(v, false)) }, "", "is not signed"},
		{"2.0.5", func(v string) { m.publish(v, bad(fakeagent.Entry{Name: "../evil", Body: "x"})) }, "", `".." component`},
		{"2.0.6", func(v string) { m.publish(v, bad(fakeagent.Entry{Name: "/tmp/evil", Body: "x"})) }, "", "absolute path"},
		{"2.0.7", func(v string) {
			m.publish(v, bad(fakeagent.Entry{Name: "var", Type: tar.TypeSymlink, Linkname: "../../../etc"}))
		}, "", "leaves the tree"},
		{"2.0.8", func(v string) { m.publish(v, agentPkg(v, false)) }, trunc.URL, "truncated download"},
		{"2.0.9", func(v string) {
			m.publish(v, fakeagent.Package(fakeagent.Options{Version: v, Extra: []fakeagent.Entry{{Name: "big", Body: string(big)}}}))
		}, "", "over the limit"},
	} {
		t.Run(tc.version+" "+tc.want, func(t *testing.T) {
			tc.setup(tc.version)
			m.reload(metaOpts{Version: tc.version, HealthURL: hurl, TarballBase: tc.tarball})
			wait.Until(t, "error for "+tc.version+" in a heartbeat", 30*time.Second, state(func() (bool, string) {
				a, _ := m.host("refuse-1")
				return strings.Contains(a.Error, tc.version) && strings.Contains(a.Error, tc.want), a.Error
			}))
			a, _ := m.host("refuse-1")
			t.Logf("reported error: %s", a.Error)
			if a.Version != "1.0.0" || a.Status != "started" {
				t.Fatalf("ops-meta sees %+v", a)
			}
			if ok, s := whole(p.root, "1.0.0"); !ok {
				t.Fatalf("host changed: %s", s)
			}
			if got := fakeagent.Pid(filepath.Join(p.root, agentName, "1.0.0")); got != pid {
				t.Fatalf("running agent restarted: pid %d, was %d", got, pid)
			}
			if _, err := os.Stat(filepath.Join(p.root, agentName, tc.version)); err == nil {
				t.Fatal("refused version installed")
			}
			if !strings.Contains(p.log(), `msg="artifact refused" agent=kestrel-agent version=`+tc.version) {
				t.Fatal("no refusal log line")
			}
			if _, err := os.Stat(filepath.Join(p.root, "..", "evil")); err == nil {
				t.Fatal("wrote outside the install dir")
			}
		})
	}
	// A good version afterwards installs and clears the error.
	m.publish("2.1.0", agentPkg("2.1.0", false))
	m.reload(metaOpts{Version: "2.1.0", HealthURL: hurl})
	wait.Until(t, "2.1.0 installed, error cleared", 60*time.Second, state(func() (bool, string) {
		ok, s := whole(p.root, "2.1.0")
		a, _ := m.host("refuse-1")
		return ok && a.Version == "2.1.0" && a.Error == "", s + " " + a.Error
	}))
	ents, _ := os.ReadDir(filepath.Join(p.root, agentName))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".trash-") {
			t.Fatalf("leftover %s", e.Name())
		}
	}
}
