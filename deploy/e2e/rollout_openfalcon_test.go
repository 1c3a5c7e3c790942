//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

// ofMeta is an Open-Falcon ops-meta: its exact JSON, no sha256, no
// signature, artifacts with .md5 files only.
type ofMeta struct {
	mu       sync.Mutex
	version  string
	errMsg   string
	md5Wrong bool
	files    map[string][]byte
	requests []map[string]any
	srv      *httptest.Server
}

func (o *ofMeta) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.URL.Path == "/heartbeat" {
		b, _ := io.ReadAll(r.Body)
		var req map[string]any
		if err := json.Unmarshal(b, &req); err != nil {
			http.Error(w, "bad json", 400)
			return
		}
		o.requests = append(o.requests, req)
		fmt.Fprintf(w, `{"errorMessage":%q,"desiredAgents":[{"name":"kestrel-agent","version":%q,"tarball":"%s/falcon","md5":"","cmd":"start"}]}`,
			o.errMsg, o.version, o.srv.URL)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/falcon/")
	b, ok := o.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if o.md5Wrong && strings.HasSuffix(name, ".md5") {
		b = []byte(strings.Repeat("f", 32) + "  " + strings.TrimSuffix(name, ".md5") + "\n")
	}
	w.Write(b)
}

func (o *ofMeta) add(version string) {
	a := fakeagent.NewArtifact(agentName, version, agentPkg(version, false), nil)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[a.FileName()] = a.Data
	o.files[a.FileName()+".md5"] = []byte(a.Md5 + "  " + a.FileName() + "\n")
}

func (o *ofMeta) set(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestUpdaterOpenFalconCompat: the updater against an Open-Falcon-shaped ops-meta
// (no sha256: the .md5 file is used), and its requests carry nothing but
// Open-Falcon's fields when there is no error or pending version.
func TestUpdaterOpenFalconCompat(t *testing.T) {
	of := &ofMeta{version: "1.0.0", files: map[string][]byte{}}
	of.srv = httptest.NewServer(of)
	defer of.srv.Close()
	of.add("1.0.0")
	of.add("1.1.0")
	m := &meta{url: of.srv.URL}
	u := startUpdater(t, m, updOpts{Hostname: "falcon-1", NoKey: true, MetaURLs: []string{"http://127.0.0.1:1", of.srv.URL}}, "")
	wait.Until(t, "1.0.0 installed from an Open-Falcon ops-meta", 60*time.Second, state(func() (bool, string) { return whole(u.root, "1.0.0") }))

	// The last request is pure Open-Falcon.
	wait.Until(t, "a heartbeat reporting 1.0.0", 10*time.Second, state(func() (bool, string) {
		of.mu.Lock()
		defer of.mu.Unlock()
		last := of.requests[len(of.requests)-1]
		if !slices.Equal(keys(last), []string{"hostname", "realAgents"}) || last["hostname"] != "falcon-1" {
			t.Fatalf("request %v", last)
		}
		ras, _ := last["realAgents"].([]any)
		if len(ras) != 1 {
			return false, fmt.Sprint(last)
		}
		ra := ras[0].(map[string]any)
		if ra["version"] != "1.0.0" || ra["status"] != "started" {
			return false, fmt.Sprint(ra)
		}
		if got := keys(ra); !slices.Equal(got, []string{"name", "status", "timestamp", "version"}) {
			t.Fatalf("real agent has fields %v, want Open-Falcon's only", got)
		}
		return true, ""
	}))

	// A wrong md5 file is refused; the error travels in the next heartbeat.
	of.set(func() { of.version, of.md5Wrong = "1.1.0", true })
	wait.Until(t, "md5 refusal reported", 30*time.Second, state(func() (bool, string) {
		of.mu.Lock()
		defer of.mu.Unlock()
		ras, _ := of.requests[len(of.requests)-1]["realAgents"].([]any)
		if len(ras) != 1 {
			return false, ""
		}
		e, _ := ras[0].(map[string]any)["error"].(string)
		return strings.Contains(e, "md5 mismatch"), e
	}))
	if ok, s := whole(u.root, "1.0.0"); !ok {
		t.Fatal(s)
	}
	// errorMessage set: the updater does nothing. The md5 stays wrong
	// until the errorMessage has been seen: the heartbeat that reported the
	// refusal was answered "1.1.0" before errorMessage was set, and the
	// download it starts must not be able to install (under load it may
	// still run after the errorMessage heartbeat).
	of.set(func() { of.errMsg = "maintenance" })
	wait.Until(t, "heartbeat with errorMessage", 10*time.Second, state(func() (bool, string) {
		return strings.Contains(u.log(), "ops-meta answered with an error, doing nothing"), ""
	}))
	of.set(func() { of.md5Wrong = false })
	n := strings.Count(u.log(), "ops-meta answered with an error, doing nothing")
	wait.Until(t, "another heartbeat with errorMessage, md5 right", 10*time.Second, state(func() (bool, string) {
		return strings.Count(u.log(), "ops-meta answered with an error, doing nothing") > n, ""
	}))
	if _, err := os.Stat(filepath.Join(u.root, agentName, "1.1.0")); err == nil {
		t.Fatal("installed while ops-meta said errorMessage")
	}
	of.set(func() { of.errMsg = "" })
	wait.Until(t, "1.1.0 installed with a good md5", 60*time.Second, state(func() (bool, string) { return whole(u.root, "1.1.0") }))
}
