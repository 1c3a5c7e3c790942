package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// node is one kestrel-nats run in process by runMain until stop.
type node struct {
	name                string
	client, route, http int
	stop                context.CancelFunc
	code                chan int
	log                 *syncbuf.Buffer
}

// ports returns n ports that were free a moment ago (a node's listeners
// are written into its configuration file before it starts).
func ports(t *testing.T, n int) []int {
	t.Helper()
	ps := make([]int, n)
	for i := range ps {
		var err error
		if ps[i], err = spawn.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

// connect connects to urls (closed when the test ends) and returns a
// JetStream context on the connection.
func connect(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (n *node) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.client) }

func (n *node) monitor(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.http, path)
}

// start runs kestrel-nats with args until the test ends or n.stop.
func (n *node) start(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	n.stop, n.code, n.log = cancel, make(chan int, 1), &syncbuf.Buffer{}
	go func() { n.code <- runMain(ctx, args, io.Discard, n.log) }()
	t.Cleanup(func() { n.shutdown(t) })
}

// shutdown stops n (once) and checks that it exited 0.
func (n *node) shutdown(t *testing.T) {
	t.Helper()
	n.stop()
	select {
	case code, ok := <-n.code:
		if ok && code != 0 {
			t.Errorf("%s exited %d; log:\n%s", n.name, code, n.log)
		}
		if ok {
			close(n.code)
		}
	case <-time.After(time.Minute):
		t.Errorf("%s did not stop within a minute", n.name)
	}
}

// healthy waits until -healthcheck on n's /healthz exits 0.
func (n *node) healthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	wait.Until(t, n.name+" /healthz", timeout, func() error {
		var out strings.Builder
		if code := runMain(t.Context(), []string{"-healthcheck", n.monitor("/healthz")}, io.Discard, &out); code != 0 {
			return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(out.String()))
		}
		return nil
	})
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Three nodes from three nats-server configuration files, routes on
// loopback: a JetStream stream with 3 replicas keeps an acknowledged
// message, readable and writable, when its leader's node stops.
func TestClusterFromConfFiles(t *testing.T) {
	dir := t.TempDir()
	nodes := make([]*node, 3)
	var routes []string
	for i := range nodes {
		p := ports(t, 3)
		nodes[i] = &node{name: fmt.Sprintf("n%d", i+1), client: p[0], route: p[1], http: p[2]}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nodes[i].route))
	}
	for _, n := range nodes {
		conf := writeFile(t, filepath.Join(dir, n.name+".conf"), fmt.Sprintf(`# %s: a node as nats-server's documentation writes it
server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
}
cluster {
  name: kestrel
  listen: 127.0.0.1:%d
  routes: [
    %s
  ]
}
`, n.name, n.name, n.client, n.http, filepath.Join(dir, n.name), n.route, strings.Join(routes, "\n    ")))
		n.start(t, "-c", conf, "-log.level", "warn")
	}
	for _, n := range nodes {
		n.healthy(t, time.Minute)
	}
	for _, path := range []string{"/varz", "/jsz"} {
		resp, err := http.Get(nodes[0].monitor(path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", path, resp.Status)
		}
	}

	js := connect(t, nodes[0].url()+","+nodes[1].url()+","+nodes[2].url())
	ctx := t.Context()
	var stream jetstream.Stream
	wait.Until(t, "an R3 stream", time.Minute, func() (err error) {
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
		return err
	})
	if _, err := js.Publish(ctx, "t.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v: want a leader and 2 replicas", info.Cluster)
	}
	var leader *node
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			leader = n
		}
	}
	if leader == nil {
		t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	}
	leader.shutdown(t)

	wait.Until(t, "the message read back after the leader stopped", time.Minute, func() error {
		m, err := stream.GetMsg(ctx, 1)
		if err != nil {
			return err
		}
		if string(m.Data) != "kept" {
			t.Fatalf("message 1 = %q", m.Data)
		}
		return nil
	})
	wait.Until(t, "a publish acknowledged by the two nodes left", time.Minute, func() error {
		ack, err := js.Publish(ctx, "t.2", []byte("after"))
		if err == nil && ack.Sequence != 2 {
			t.Fatalf("ack %+v: want sequence 2", ack)
		}
		return err
	})
}

// A bad configuration file exits 2 with the library's own message (file,
// line, column, what), and so does an option the library rejects.
func TestBadConfFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ conf, want string }{
		{"port: 4222\nbogus_field: 1\n", `bad.conf:2:1: unknown field "bogus_field"`},
		{"listen: \"127.0.0.1:x\"\n", `bad.conf:1:0: could not parse port "x"`},
		{"port: 4222\nlisten: x y z\n", "bad.conf: Parse error on line 2"},
		{"jetstream { store_dir: /tmp/x }\ncluster { name: c, listen: 127.0.0.1:-1 }\n", "server_name"},
	} {
		path := writeFile(t, filepath.Join(dir, "bad.conf"), c.conf)
		var stderr strings.Builder
		if code := runMain(t.Context(), []string{"-c", path}, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr %s", c.conf, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: stderr %q, want %q in it", c.conf, stderr.String(), c.want)
		}
	}
	var stderr strings.Builder
	if code := runMain(t.Context(), []string{"-c", filepath.Join(dir, "missing.conf")}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr.String())
	}
}

func TestFlags(t *testing.T) {
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-version"}, 0, "kestrel-nats dev\n", ""},
		{[]string{"-max_payload", "-1"}, 2, "", "-max_payload -1"},
		{[]string{"-addr", "nonsense"}, 2, "", `"nonsense"`},
		{[]string{"-nope"}, 2, "", "flag provided but not defined"},
		{[]string{"extra"}, 2, "", "unexpected arguments"},
		{[]string{"-healthcheck", fmt.Sprintf("http://127.0.0.1:%d/healthz", ports(t, 1)[0])}, 1, "", "unhealthy"},
	} {
		var stdout, stderr strings.Builder
		code := runMain(t.Context(), c.args, &stdout, &stderr)
		if code != c.code || stdout.String() != c.stdout && c.stdout != "" || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, stdout.String(), stderr.String(), c.code, c.stdout, c.stderr)
		}
	}
	var stderr strings.Builder
	runMain(t.Context(), []string{"-h"}, io.Discard, &stderr)
	if !strings.Contains(stderr.String(), "nats-server configuration file") {
		t.Errorf("-h does not say what -c is:\n%s", stderr.String())
	}
}

// Without -c the flags configure one server, monitoring included.
func TestFlagsServer(t *testing.T) {
	p := ports(t, 2)
	n := &node{name: "single", client: p[0], http: p[1]}
	n.start(t, "-addr", fmt.Sprintf("127.0.0.1:%d", n.client), "-store", t.TempDir(), "-http", fmt.Sprintf("127.0.0.1:%d", n.http))
	n.healthy(t, 30*time.Second)
	if _, err := connect(t, n.url()).AccountInfo(t.Context()); err != nil {
		t.Errorf("jetstream: %v", err)
	}
}

// SIGHUP reloads the -c file: here it turns authentication on, with the
// password taken from the environment as nats-server's $VARIABLES are.
func TestReloadOnHangup(t *testing.T) {
	t.Setenv("KESTREL_TEST_NATS_PASSWORD", "s3cret")
	dir := t.TempDir()
	p := ports(t, 2)
	n := &node{name: "reload", client: p[0], http: p[1]}
	base := fmt.Sprintf("listen: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\njetstream { store_dir: %q }\n", n.client, n.http, filepath.Join(dir, "js"))
	conf := writeFile(t, filepath.Join(dir, "nats.conf"), base)
	n.start(t, "-c", conf)
	n.healthy(t, 30*time.Second)
	nc, err := nats.Connect(n.url())
	if err != nil {
		t.Fatalf("before the reload, no credentials needed: %v", err)
	}
	nc.Close()

	writeFile(t, conf, base+"authorization { user: kestrel, password: $KESTREL_TEST_NATS_PASSWORD }\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "anonymous connections refused after the reload", 30*time.Second, func() error {
		nc, err := nats.Connect(n.url())
		if err == nil {
			nc.Close()
			return errors.New("connected without credentials")
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("refused with %v, want an authorization violation", err)
		}
		return nil
	})
	nc, err = nats.Connect(n.url(), nats.UserInfo("kestrel", "s3cret"))
	if err != nil {
		t.Fatalf("with the password from the environment: %v", err)
	}
	nc.Close()
	if !strings.Contains(n.log.String(), "reloaded") {
		t.Errorf("no reload logged:\n%s", n.log)
	}
}
