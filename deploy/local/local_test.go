// Package local_test checks the configs `make run` uses against the real
// binaries.
package local_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/launch"
	"github.com/kestrel-mon/kestrel/deploy/internal/natsserver"
	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
)

// endpoint is one "METHOD /path" (GET when no method is written).
type endpoint struct{ method, path string }

var endpointRE = regexp.MustCompile(`^(?:(GET|HEAD|POST|PUT|DELETE|PATCH) +)?(/\S*)$`)

// advertised returns the endpoints the comment of the file's "listen:"
// line names, e.g. `listen: "127.0.0.1:6060"     # /health, /metrics`.
func advertised(t *testing.T, path string) []endpoint {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []endpoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(strings.TrimSpace(line), "listen:") {
			continue
		}
		_, comment, ok := strings.Cut(line, "#")
		if !ok {
			t.Fatalf("%s: the listen line has no comment saying what it serves", path)
		}
		for item := range strings.SplitSeq(comment, ",") {
			m := endpointRE.FindStringSubmatch(strings.TrimSpace(item))
			if m == nil {
				t.Fatalf("%s: %q in the listen comment is not an endpoint (\"/path\" or \"METHOD /path\")", path, strings.TrimSpace(item))
			}
			if m[1] == "" {
				m[1] = http.MethodGet
			}
			out = append(out, endpoint{m[1], m[2]})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no listen line", path)
	}
	return out
}

// Every endpoint a local config's listen comment advertises is served by
// the real binary started with that config: no 404 (path unknown) and no
// 405 (the advertised method is not served). transfer.yaml once
// advertised POST /api/push, which the transfer does not have yet.
func TestAdvertisedEndpointsExist(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []struct{ module, name string }{{"agent", "kestrel-agent"}, {"transfer", "kestrel-transfer"}, {"judge", "kestrel-judge"}} {
		cmd := exec.Command("go", "build", "-C", filepath.Join("..", "..", b.module), "-o", filepath.Join(bin, b.name), "./cmd/"+b.name)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("build %s: %v", b.name, err)
		}
	}
	ns, err := natsserver.Start(natsserver.Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	redisAddr := redistest.Start(t).Addr

	for _, name := range []string{"agent", "transfer", "judge"} {
		t.Run(name, func(t *testing.T) {
			src, err := filepath.Abs(name + ".yaml") // so that rules_file resolves next to it
			if err != nil {
				t.Fatal(err)
			}
			c, err := launch.LoadChildConfig("kestrel-"+name, src)
			if err != nil {
				t.Fatal(err)
			}
			port, err := spawn.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			listen := spawn.LocalAddr(port)
			c.Set("nats.urls", []any{ns.ClientURL()})
			c.Set("http.listen", listen)
			if name == "judge" {
				c.Set("redis.addr", redisAddr)
				c.ResolvePath("rules_file")
			}
			conf := filepath.Join(t.TempDir(), name+".yaml")
			if err := c.Write(conf); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			child := &spawn.Child{Name: "kestrel-" + name, Path: filepath.Join(bin, "kestrel-"+name), Args: []string{"-c", conf}, Dir: dir, LogPath: filepath.Join(dir, name+".log")}
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer child.Kill()
			if err := spawn.WaitReady(context.Background(), child, 30*time.Second, func() bool { return spawn.HTTPAnswers("http://" + listen + "/metrics") }); err != nil {
				t.Fatal(err)
			}
			cl := http.Client{Timeout: 2 * time.Second}
			for _, e := range advertised(t, src) {
				req, _ := http.NewRequest(e.method, "http://"+listen+e.path, strings.NewReader("[]"))
				resp, err := cl.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", e.method, e.path, err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
					t.Errorf("%s.yaml advertises %s %s, kestrel-%s answers %s", name, e.method, e.path, name, resp.Status)
				}
			}
		})
	}
}
