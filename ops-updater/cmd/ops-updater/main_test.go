package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
)

// Exit codes: 0 for -version, 2 for bad flags or config (file and field
// named), 1 when it cannot start (the install dir is locked).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := filepath.Join(dir, "agents")
	good := write("good.yaml", "hostname: h1\nmeta_urls: ['http://127.0.0.1:1']\ninterval: 1h\nhttp: {listen: ''}\ninstall_dir: "+root+"\n")
	release, err := install.Lock(root)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, tc := range []struct {
		args []string
		code int
		want []string // in stdout+stderr
	}{
		{[]string{"-version"}, 0, []string{"ops-updater dev\n"}},
		{[]string{"-nope"}, 2, []string{"flag provided but not defined: -nope"}},
		{[]string{"-c", good, "extra"}, 2, []string{"unexpected arguments"}},
		{[]string{"-c", filepath.Join(dir, "missing.yaml")}, 2, []string{"cannot read config", "missing.yaml"}},
		{[]string{"-c", write("bad.yaml", "keep: 1\ninterval: soon\n")}, 2, []string{"bad.yaml: line 2: interval: cannot unmarshal"}},
		{[]string{"-c", write("bad2.yaml", "keep: 1\nlog: {format: xml}\n")}, 2, []string{"bad2.yaml: keep: 1: must be at least 2", "bad2.yaml: log.format: must be text or json"}},
		{[]string{"-c", good, "-log.level", "loud"}, 2, []string{"-log.level: log.level: must be debug, info, warn or error"}},
		{[]string{"-c", good}, 1, []string{"cannot start", "locked by another ops-updater"}},
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
