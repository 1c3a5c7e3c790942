//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
)

func runControl(t *testing.T, dir, arg string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "control"), arg)
	cmd.Dir = t.TempDir() // the script must not depend on the caller's cwd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func agentDir(t *testing.T, broken bool) string {
	dir := filepath.Join(t.TempDir(), "1.0.0")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "control"), []byte(fakeagent.RepoControl()), 0o755)
	os.WriteFile(filepath.Join(dir, "kestrel-agent"), []byte(fakeagent.Program), 0o755)
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("# test\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.0.0\n"), 0o644)
	if broken {
		os.WriteFile(filepath.Join(dir, "BROKEN"), nil, 0o644)
	}
	t.Cleanup(func() { fakeagent.KillAll(filepath.Dir(filepath.Dir(dir))) })
	return dir
}

// TestAgentControlScript drives agent/package/control with a real process.
func TestAgentControlScript(t *testing.T) {
	dir := agentDir(t, false)
	if out, _ := runControl(t, dir, "status"); out != "stopped" {
		t.Fatalf("status before start: %q", out)
	}
	if out, err := runControl(t, dir, "start"); err != nil || !strings.Contains(out, "started") {
		t.Fatalf("start: %q %v", out, err)
	}
	pid := fakeagent.Pid(dir)
	if pid == 0 {
		t.Fatal("no live pid after start")
	}
	cmdline, _ := os.ReadFile("/proc/" + itoa(pid) + "/cmdline")
	if !strings.Contains(string(cmdline), "kestrel-agent") || !strings.Contains(string(cmdline), "agent.yaml") {
		t.Fatalf("cmdline %q", cmdline)
	}
	if out, _ := runControl(t, dir, "status"); out != "started" {
		t.Fatalf("status: %q", out)
	}
	if out, err := runControl(t, dir, "start"); err != nil || !strings.Contains(out, "already started") || fakeagent.Pid(dir) != pid {
		t.Fatalf("second start: %q %v", out, err)
	}
	// tail follows var/app.log.
	tail := exec.Command(filepath.Join(dir, "control"), "tail")
	stdout, _ := tail.StdoutPipe()
	tail.Start()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	tail.Process.Kill()
	tail.Wait()
	if !strings.Contains(line, "fake kestrel-agent 1.0.0 running") {
		t.Fatalf("tail: %q", line)
	}
	if out, err := runControl(t, dir, "restart"); err != nil || fakeagent.Pid(dir) == pid || fakeagent.Pid(dir) == 0 {
		t.Fatalf("restart: %q %v", out, err)
	}
	pid = fakeagent.Pid(dir)
	if out, err := runControl(t, dir, "stop"); err != nil || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: %q %v", out, err)
	}
	wait.Until(t, "agent gone", 5*time.Second, state(func() (bool, string) { return syscall.Kill(pid, 0) != nil, "" }))
	if out, _ := runControl(t, dir, "status"); out != "stopped" {
		t.Fatalf("status after stop: %q", out)
	}
	// A pid file naming somebody else's process is not "started".
	other := exec.Command("sleep", "30")
	other.Start()
	defer func() { other.Process.Kill(); other.Wait() }()
	os.WriteFile(filepath.Join(dir, "var", "app.pid"), []byte(itoa(other.Process.Pid)+"\n"), 0o644)
	if out, _ := runControl(t, dir, "status"); out != "stopped" {
		t.Fatalf("status with a foreign pid: %q", out)
	}
	if out, err := runControl(t, dir, "stop"); err != nil || syscall.Kill(other.Process.Pid, 0) != nil {
		t.Fatalf("stop killed a foreign process: %q %v", out, err)
	}
	if _, err := runControl(t, dir, "bogus"); err == nil {
		t.Fatal("unknown command accepted")
	}
	// A binary that exits at once is a failed start.
	bad := agentDir(t, true)
	if out, err := runControl(t, bad, "start"); err == nil || !strings.Contains(out, "failed to start") || !strings.Contains(out, "broken build") {
		t.Fatalf("broken start: %q %v", out, err)
	}
	if out, _ := runControl(t, bad, "status"); out != "stopped" {
		t.Fatalf("broken status: %q", out)
	}
}

// tarEntries lists the regular files of a tar.gz ("./" stripped) with
// their modes.
func tarEntries(t *testing.T, path string) (names []string, modes map[string]os.FileMode) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	modes = map[string]os.FileMode{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, modes
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(h.Name, "./")
		names = append(names, name)
		modes[name] = h.FileInfo().Mode()
	}
}

// TestAgentPackageBuild runs agent/package/build.sh, checks the tarball and its
// sidecars, signs it, and installs it with an updater from a real ops-meta.
func TestAgentPackageBuild(t *testing.T) {
	script, _ := filepath.Abs("../../agent/package/build.sh")
	bindir := t.TempDir()
	os.WriteFile(filepath.Join(bindir, "kestrel-agent"), []byte(fakeagent.Program), 0o755)
	dist := filepath.Join(t.TempDir(), "dist")
	build := func(version, key string) (string, error) {
		cmd := exec.Command(script, bindir, dist)
		cmd.Env = append(os.Environ(), "VERSION="+version, "SIGN_KEY="+key)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, tc := range []struct{ in, want string }{
		{"1a617f5-dirty", "1a617f5-dirty"},
		{"v1.2-3-gabc1234-dirty", "1.2_3-gabc1234-dirty"},
		{"abc1234", "0+abc1234"},
		{"1.0.0 beta/2", "1.0.0_beta_2"},
	} {
		out, err := build(tc.in, "")
		want := filepath.Join(dist, "kestrel-agent-"+tc.want+".tar.gz")
		if err != nil || !strings.HasSuffix(out, want) {
			t.Fatalf("VERSION=%q: %q %v, want %s", tc.in, out, err, want)
		}
	}
	// Sidecars verify with the standard tools, file name only.
	for _, tool := range []string{"sha256sum", "md5sum"} {
		ext := map[string]string{"sha256sum": ".sha256", "md5sum": ".md5"}[tool]
		side, _ := os.ReadFile(filepath.Join(dist, "kestrel-agent-1a617f5-dirty.tar.gz"+ext))
		if strings.Contains(string(side), "/") {
			t.Fatalf("%s sidecar names a path: %q", ext, side)
		}
		cmd := exec.Command(tool, "-c", "kestrel-agent-1a617f5-dirty.tar.gz"+ext)
		cmd.Dir = dist
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s -c: %v %s", tool, err, out)
		}
	}
	// Contents: control, binary, config at the root (that the package
	// unpacks safely, the updater shows below by installing a build).
	names, modes := tarEntries(t, filepath.Join(dist, "kestrel-agent-1a617f5-dirty.tar.gz"))
	sort.Strings(names)
	if strings.Join(names, " ") != "VERSION agent.yaml control kestrel-agent" {
		t.Fatalf("package holds %v", names)
	}
	if m := modes["control"]; m.Perm() != 0o755 {
		t.Fatalf("control mode %v", m)
	}

	// Signing needs bin/ops-meta.
	m := startMeta(t, metaOpts{Version: "2.0.0"})
	if out, err := build("2.0.0", m.priv); err == nil || !strings.Contains(out, "ops-meta is missing") {
		t.Fatalf("signing without ops-meta: %q %v", out, err)
	}
	b, _ := os.ReadFile(opsMetaBin())
	os.WriteFile(filepath.Join(bindir, "ops-meta"), b, 0o755)
	if out, err := build("2.0.0", m.priv); err != nil {
		t.Fatalf("signed build: %q %v", out, err)
	}
	tarball := filepath.Join(dist, "kestrel-agent-2.0.0.tar.gz")
	opsMeta(t, "sign", "verify", "-pub", m.pub, tarball)
	// The package installs and runs under an updater that requires the
	// fleet key's signature: the updater accepts the package's signature.
	for _, ext := range []string{"", ".sha256", ".md5", ".sig"} {
		b, _ := os.ReadFile(tarball + ext)
		os.WriteFile(filepath.Join(m.artifacts, "kestrel-agent-2.0.0.tar.gz"+ext), b, 0o644)
	}
	u := startUpdater(t, m, updOpts{Hostname: "pkg-1", RequireSignature: true}, "")
	wait.Until(t, "built package installed and started", 60*time.Second, state(func() (bool, string) { return whole(u.root, "2.0.0") }))
}
