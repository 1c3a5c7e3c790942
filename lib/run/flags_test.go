package run

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
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

func TestHealthCheckFlag(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("/sick", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "stream not ready", 503) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		url  string
		code int
		out  string
	}{
		{srv.URL + "/ok", ExitOK, ""},
		{srv.URL + "/sick", ExitFailure, "unhealthy: 503 Service Unavailable: stream not ready"},
		{"http://127.0.0.1:1/x", ExitFailure, "unhealthy: "},
	} {
		var stdout, stderr bytes.Buffer
		fs := flag.NewFlagSet("kestrel-x", flag.ContinueOnError)
		fs.SetOutput(&stderr)
		_, code, done := ParseFlags(fs, []string{"-healthcheck", c.url}, "x.yaml", "1", &stdout)
		if !done || code != c.code || !strings.Contains(stderr.String(), c.out) {
			t.Errorf("%s: done %v code %d stderr %q", c.url, done, code, stderr.String())
		}
	}
}
