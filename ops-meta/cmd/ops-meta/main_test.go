package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/proctest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"regexp"
)

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ops-meta")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestVersionAndSignCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain([]string{"-version"}, &out, &errb); code != 0 || out.String() != "ops-meta dev\n" {
		t.Fatalf("-version: %d %q", code, out.String())
	}
	dir := t.TempDir()
	pub, priv := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	tb := filepath.Join(dir, "kestrel-agent-1.2.0.tar.gz")
	os.WriteFile(tb, []byte("bytes"), 0o644)
	steps := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"sign"}, 2, "usage"},
		{[]string{"sign", "keygen", "-pub", pub}, 2, "usage"},
		{[]string{"sign", "keygen", "-pub", pub, "-priv", priv}, 0, "wrote"},
		{[]string{"sign", "verify", "-pub", pub, tb}, 1, "sha256 sidecar"},
		{[]string{"sign", "sign", "-key", pub, tb}, 1, "want 64"},
		{[]string{"sign", "sign", "-key", priv, filepath.Join(dir, "noversion.tar.gz")}, 1, "version"},
		{[]string{"sign", "sign", "-key", priv, tb}, 0, "signed"},
		{[]string{"sign", "verify", "-pub", pub, tb}, 0, "OK"},
	}
	for _, s := range steps {
		out.Reset()
		errb.Reset()
		code := runMain(s.args, &out, &errb)
		if code != s.code || !strings.Contains(out.String()+errb.String(), s.msg) {
			t.Fatalf("%v: %d %q %q", s.args, code, out.String(), errb.String())
		}
	}
	os.WriteFile(tb, []byte("tampered"), 0o644)
	errb.Reset()
	if code := runMain([]string{"sign", "verify", "-pub", pub, tb}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "FAIL") {
		t.Fatalf("tampered: %d %q", code, errb.String())
	}
}

// Exit codes: 2 for bad flags or config (file and field named), 1 when it
// cannot start.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-nope"}, 2, []string{"flag provided but not defined: -nope"}},
		{[]string{"-c", write("ok.yaml", ""), "extra"}, 2, []string{"unexpected arguments"}},
		{[]string{"-c", filepath.Join(dir, "missing.yaml")}, 2, []string{"cannot read config", "missing.yaml"}},
		{[]string{"-c", write("bad.yaml", "no_such_key: 1\nadmin_token: short\n")}, 2, []string{"bad.yaml: line 1: no_such_key: field no_such_key not found"}},
		{[]string{"-c", write("bad2.yaml", "admin_token: short\nrollout: {waves: [10]}\n")}, 2, []string{"bad2.yaml: admin_token: too short", "bad2.yaml: rollout.waves: the last wave must be 100"}},
		{[]string{"-c", write("lvl.yaml", ""), "-log.level", "loud"}, 2, []string{"-log.level: log.level: must be debug, info, warn or error"}},
		{[]string{"-c", write("taken.yaml", "http: {listen: '"+taken.Addr().String()+"'}\n")}, 1, []string{"cannot start", "http.listen"}},
	} {
		var out, errb bytes.Buffer
		code := runMain(tc.args, &out, &errb)
		all := out.String() + errb.String()
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; output:\n%s", tc.args, code, tc.code, all)
		}
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%v: output does not contain %q:\n%s", tc.args, w, all)
			}
		}
	}
}

// The real binary starts with the example config (only the port changed so
// tests never collide with a real ops-meta on :2000), answers heartbeats,
// reloads on SIGHUP and stops on SIGTERM.
func TestBinaryWithExampleConfig(t *testing.T) {
	bin := buildBinary(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	example, err := os.ReadFile("../../ops-meta.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(example, []byte(`listen: ":2000"`)) {
		t.Fatal("example must listen on :2000")
	}
	cfg := filepath.Join(t.TempDir(), "ops-meta.yaml")
	os.WriteFile(cfg, bytes.Replace(example, []byte(`listen: ":2000"`), []byte(`listen: "`+addr+`"`), 1), 0o644)
	p := proctest.Start(t, bin, "-c", cfg)
	wait.For(t, "ops-meta /health", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	beat := func() string {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/heartbeat", "application/json", strings.NewReader(`{"hostname":"h1","realAgents":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("heartbeat %d %s", resp.StatusCode, body.String())
		}
		return body.String()
	}
	if b := beat(); !strings.Contains(b, `"name":"kestrel-agent"`) || !strings.Contains(b, `"version":"0.1.0"`) {
		t.Fatalf("heartbeat %s", b)
	}
	// SIGHUP reloads the file: the desired version changes.
	cur, _ := os.ReadFile(cfg)
	good := bytes.Replace(cur, []byte("version: 0.1.0"), []byte("version: 0.2.0"), 1)
	os.WriteFile(cfg, good, 0o644)
	p.Signal(syscall.SIGHUP)
	wait.For(t, "desired 0.2.0 after SIGHUP", 20*time.Second, func() bool { return strings.Contains(beat(), `"version":"0.2.0"`) })
	// A bad file keeps the old config and the log says why (file and field).
	os.WriteFile(cfg, append(good, []byte("\nno_such_key: 1\n")...), 0o644)
	p.Signal(syscall.SIGHUP)
	wait.For(t, "failed reload logged", 20*time.Second, func() bool {
		l := p.Output.String()
		return strings.Contains(l, "config reload failed") && strings.Contains(l, "no_such_key") && strings.Contains(l, filepath.Base(cfg))
	})
	if b := beat(); !strings.Contains(b, `"version":"0.2.0"`) {
		t.Fatalf("a bad file must keep the old config: %s", b)
	}
	p.Signal(syscall.SIGTERM)
	if exited, err := p.Wait(20 * time.Second); !exited {
		t.Fatal("no exit on SIGTERM")
	} else if err != nil {
		t.Fatalf("exit: %v", err)
	}
	// Stopped in order, each step logged with its duration.
	steps := regexp.MustCompile(`msg="shutdown step done" step="([a-z ]+)" took=`).FindAllStringSubmatch(p.Output.String(), -1)
	var got []string
	for _, s := range steps {
		got = append(got, s[1])
	}
	if want := "stop http,stop rollout evaluation,close store"; strings.Join(got, ",") != want {
		t.Fatalf("shutdown steps %q, want %s", got, want)
	}
}
