package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/testutil/mysqltest"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
	"github.com/kestrel-mon/kestrel/proto"
)

var maria mysqltest.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	maria.Stop()
	os.Exit(code)
}

const adminToken = "admin-token-0123456789"

type env struct {
	t    *testing.T
	srv  *Server
	http *httptest.Server
	path string
}

// newEnv starts a Server with the YAML config (written to a file so it can
// be reloaded) over st (nil: memory).
func newEnv(t *testing.T, yaml string, st store.Store) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ops-meta.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		st = store.NewMemory()
	}
	s := New(Options{Config: &cfg, ConfigPath: path, Store: st})
	if err := s.SyncFileRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, srv: s, http: hs, path: path}
}

func (e *env) do(method, path string, body string, hdr ...string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) admin(method, path, body string) (int, []byte) {
	return e.do(method, path, body, "Authorization", "Bearer "+adminToken)
}

func (e *env) heartbeat(host string, agents ...proto.RealAgent) []proto.DesiredAgent {
	e.t.Helper()
	if agents == nil {
		agents = []proto.RealAgent{}
	}
	b, _ := json.Marshal(proto.HeartbeatRequest{Hostname: host, RealAgents: agents})
	code, body := e.do("POST", "/heartbeat", string(b))
	if code != 200 {
		e.t.Fatalf("heartbeat %s: %d %s", host, code, body)
	}
	var resp proto.HeartbeatResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		e.t.Fatal(err)
	}
	return resp.DesiredAgents
}

func keys(m map[string]json.RawMessage) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func getJSON(t *testing.T, e *env, path string, v any) {
	t.Helper()
	code, b := e.do("GET", path, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
