package run

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		want       Flags
		code       int
		done       bool
		stdout     string
		stderrPart string
		own        string // value of the binary's own -x flag
	}{
		{args: nil, want: Flags{ConfigPath: "x.yaml"}},
		{args: []string{"-c", "/etc/x.yaml", "-log.level", "debug", "-x", "7"}, want: Flags{ConfigPath: "/etc/x.yaml", LogLevel: "debug"}, own: "7"},
		{args: []string{"-version"}, want: Flags{ConfigPath: "x.yaml"}, done: true, stdout: "kestrel-x 1.2.3\n"},
		{args: []string{"-nope"}, code: ExitUsage, done: true, stderrPart: "flag provided but not defined: -nope"},
		{args: []string{"-c", "a.yaml", "extra"}, code: ExitUsage, done: true, stderrPart: `kestrel-x: unexpected arguments ["extra"]`},
	} {
		var stdout, stderr bytes.Buffer
		fs := flag.NewFlagSet("kestrel-x", flag.ContinueOnError)
		fs.SetOutput(&stderr)
		own := fs.String("x", "", "a flag of the binary's own")
		f, code, done := ParseFlags(fs, tc.args, "x.yaml", "1.2.3", &stdout)
		if code != tc.code || done != tc.done || stdout.String() != tc.stdout {
			t.Errorf("%q: code %d done %v stdout %q; want %d %v %q", tc.args, code, done, stdout.String(), tc.code, tc.done, tc.stdout)
		}
		if !tc.done || tc.stdout != "" {
			if f != tc.want || *own != tc.own {
				t.Errorf("%q: flags %+v -x %q; want %+v %q", tc.args, f, *own, tc.want, tc.own)
			}
		}
		if !strings.Contains(stderr.String(), tc.stderrPart) || (tc.stderrPart == "" && stderr.Len() > 0) {
			t.Errorf("%q: stderr %q, want %q", tc.args, stderr.String(), tc.stderrPart)
		}
	}
}
