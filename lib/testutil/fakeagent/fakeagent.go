// Package fakeagent builds agent tarballs for tests: real tar.gz files
// holding the real agent/package/control script (or a custom one) and a
// small sh program standing in for kestrel-agent. Test-only helper.
package fakeagent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

// Entry is one tar entry.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg when 0
	Mode     int64
	Body     string
	Linkname string
	Size     int64 // header size override (0: len(Body))
}

// Tarball builds a tar.gz from entries.
func Tarball(entries []Entry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.Name, Typeflag: typ, Mode: mode, Linkname: e.Linkname, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if typ == tar.TypeChar || typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := gz.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Program is the stand-in kestrel-agent: it runs until SIGTERM, or exits
// at once when a file BROKEN sits next to it.
const Program = `#!/bin/sh
d=$(dirname "$0")
if [ -f "$d/BROKEN" ]; then echo "broken build, exiting"; exit 3; fi
echo "fake kestrel-agent $(cat "$d/VERSION") running, args: $*"
trap 'kill $c 2>/dev/null; exit 0' TERM INT
sleep 100000 &
c=$!
wait $c
`

// RepoControl returns the real agent/package/control script.
func RepoControl() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("no caller")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "agent", "package", "control") // lib/testutil/fakeagent -> the repository root
	b, err := os.ReadFile(p)
	if err != nil {
		panic(fmt.Sprintf("cannot read the real control script: %v", err))
	}
	return string(b)
}

// Options of a fake agent package.
type Options struct {
	Version string
	Broken  bool   // the program exits at once: start fails, status says stopped
	Control string // "" = the real agent/package/control
	Extra   []Entry
}

// Package builds kestrel-agent-<version>.tar.gz content.
func Package(o Options) []byte {
	ctl := o.Control
	if ctl == "" {
		ctl = RepoControl()
	}
	es := []Entry{
		{Name: "./", Type: tar.TypeDir},
		{Name: "./control", Mode: 0o755, Body: ctl},
		{Name: "./kestrel-agent", Mode: 0o755, Body: Program},
		{Name: "./agent.yaml", Body: "# fake\n"},
		{Name: "./VERSION", Body: o.Version + "\n"},
	}
	if o.Broken {
		es = append(es, Entry{Name: "./BROKEN", Body: "1\n"})
	}
	es = append(es, o.Extra...)
	return Tarball(es)
}

// Artifact is a tarball with its digests and signature.
type Artifact struct {
	Name, Version string
	Data          []byte
	Sha256, Md5   string
	Signature     string // base64, "" when unsigned
}

// FileName is <name>-<version>.tar.gz.
func (a Artifact) FileName() string { return a.Name + "-" + a.Version + ".tar.gz" }

// NewArtifact hashes (and with a key, signs) data.
func NewArtifact(name, version string, data []byte, key ed25519.PrivateKey) Artifact {
	s := sha256.Sum256(data)
	m := md5.Sum(data)
	a := Artifact{Name: name, Version: version, Data: data, Sha256: hex.EncodeToString(s[:]), Md5: hex.EncodeToString(m[:])}
	if key != nil {
		a.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, proto.ArtifactMessage(name, version, a.Sha256)))
	}
	return a
}

// WriteFiles writes the tarball and its .sha256, .md5 (and .sig) sidecars
// into dir.
func (a Artifact) WriteFiles(dir string) error {
	fn := a.FileName()
	files := map[string]string{
		fn:             string(a.Data),
		fn + ".sha256": a.Sha256 + "  " + fn + "\n",
		fn + ".md5":    a.Md5 + "  " + fn + "\n",
	}
	if a.Signature != "" {
		files[fn+".sig"] = a.Signature + "\n"
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Running returns the versions of name under root whose var/app.pid names a
// live process.
func Running(root, name string) []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(root, name))
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if pid := Pid(filepath.Join(root, name, e.Name())); pid > 0 {
			out = append(out, e.Name())
		}
	}
	return out
}

// Pid returns the live, non-zombie pid in dir/var/app.pid, or 0.
func Pid(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "var", "app.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		s := string(st)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 && s[i+2] == 'Z' {
			return 0
		}
	}
	return pid
}

// KillAll kills the process groups of every running version under root
// (test cleanup).
func KillAll(root string) {
	ents, _ := os.ReadDir(root)
	for _, a := range ents {
		vs, _ := os.ReadDir(filepath.Join(root, a.Name()))
		for _, v := range vs {
			if pid := Pid(filepath.Join(root, a.Name(), v.Name())); pid > 0 {
				if pg, err := syscall.Getpgid(pid); err == nil && pg > 1 && pg != syscall.Getpgrp() {
					syscall.Kill(-pg, syscall.SIGKILL)
				}
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}
