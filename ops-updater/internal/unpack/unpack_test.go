package unpack

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrel-mon/kestrel/lib/testutil/fakeagent"
)

type E = fakeagent.Entry

var lim = Limits{MaxBytes: 1 << 20, MaxFiles: 100}

func TestUnpackGood(t *testing.T) {
	dst := t.TempDir()
	data := fakeagent.Tarball([]E{
		{Name: "./", Type: tar.TypeDir},
		{Name: "./control", Mode: 0o4755, Body: "#!/bin/sh\necho started\n"},
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/agent", Mode: 0o755, Body: "x"},
		{Name: "lib/a/b.so", Body: "lib"}, // parent dirs not in the archive
		{Name: "bin/current", Type: tar.TypeSymlink, Linkname: "agent"},
		{Name: "lib/a/up", Type: tar.TypeSymlink, Linkname: "../../bin/agent"},
		{Name: "dirlink", Type: tar.TypeSymlink, Linkname: "lib/a"},
		{Name: "bin/hard", Type: tar.TypeLink, Linkname: "bin/agent"},
	})
	if err := Unpack(bytes.NewReader(data), dst, lim); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "control"))
	if err != nil || fi.Mode().Perm() != 0o755 || fi.Mode()&os.ModeSetuid != 0 {
		t.Fatalf("control mode %v err %v: want 0755 without setuid", fi.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "lib/a/up")); err != nil || string(b) != "x" {
		t.Fatalf("in-tree symlink: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "bin/hard")); err != nil || string(b) != "x" {
		t.Fatalf("hard link: %q %v", b, err)
	}
}

func TestUnpackRefusals(t *testing.T) {
	big := strings.Repeat("a", 2<<20)
	good := fakeagent.Tarball([]E{{Name: "control", Mode: 0o755, Body: strings.Repeat("echo hi\n", 5000)}})
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"dotdot", fakeagent.Tarball([]E{{Name: "../evil", Body: "x"}}), `".." component`},
		{"dotdot inside", fakeagent.Tarball([]E{{Name: "a/../../evil", Body: "x"}}), `".." component`},
		{"absolute", fakeagent.Tarball([]E{{Name: "/etc/evil", Body: "x"}}), "absolute path"},
		{"symlink absolute", fakeagent.Tarball([]E{{Name: "l", Type: tar.TypeSymlink, Linkname: "/etc/passwd"}}), "absolute path"},
		{"symlink escaping", fakeagent.Tarball([]E{{Name: "a/l", Type: tar.TypeSymlink, Linkname: "../../x"}}), "leaves the tree"},
		{"symlink chain escaping", fakeagent.Tarball([]E{
			{Name: "a", Type: tar.TypeSymlink, Linkname: "."},
			{Name: "b", Type: tar.TypeSymlink, Linkname: "a/.."},
		}), "leaves the tree"},
		{"symlink chain escaping later", fakeagent.Tarball([]E{
			{Name: "b", Type: tar.TypeSymlink, Linkname: "a/.."},
			{Name: "a", Type: tar.TypeSymlink, Linkname: "."},
		}), "leaves the tree"},
		{"symlink loop", fakeagent.Tarball([]E{{Name: "a", Type: tar.TypeSymlink, Linkname: "a"}}), "too many levels"},
		{"write through symlink", fakeagent.Tarball([]E{
			{Name: "d", Type: tar.TypeSymlink, Linkname: "."},
			{Name: "d/f", Body: "x"},
		}), "under the symbolic link"},
		{"hardlink outside", fakeagent.Tarball([]E{{Name: "h", Type: tar.TypeLink, Linkname: "../../etc/passwd"}}), "hard link"},
		{"hardlink absolute", fakeagent.Tarball([]E{{Name: "h", Type: tar.TypeLink, Linkname: "/etc/passwd"}}), "hard link"},
		{"hardlink to missing", fakeagent.Tarball([]E{{Name: "h", Type: tar.TypeLink, Linkname: "nothere"}}), "not a regular file"},
		{"char device", fakeagent.Tarball([]E{{Name: "null", Type: tar.TypeChar}}), "device files"},
		{"block device", fakeagent.Tarball([]E{{Name: "sda", Type: tar.TypeBlock}}), "device files"},
		{"fifo", fakeagent.Tarball([]E{{Name: "p", Type: tar.TypeFifo}}), "FIFOs"},
		{"duplicate", fakeagent.Tarball([]E{{Name: "f", Body: "1"}, {Name: "./f", Body: "2"}}), "duplicate"},
		{"over size", fakeagent.Tarball([]E{{Name: "big", Body: big}}), "over the limit"},
		{"too many files", fakeagent.Tarball(func() []E {
			var es []E
			for i := 0; i < 101; i++ {
				es = append(es, E{Name: "f" + strings.Repeat("x", i), Body: "1"})
			}
			return es
		}()), "more than 100 entries"},
		{"truncated gzip", good[:len(good)/2], "truncated"},
		{"truncated trailer", good[:len(good)-4], "truncated"},
		{"not gzip", []byte("hello, this is not gzip"), "not a gzip stream"},
		{"empty", nil, "not a gzip stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			err := Unpack(bytes.NewReader(tc.data), dst, lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
			// Nothing outside dst.
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dst), "evil")); err == nil {
				t.Fatal("wrote outside the destination")
			}
		})
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(fakeagent.Tarball([]E{{Name: "control", Mode: 0o755, Body: "x"}}))
	f.Add(fakeagent.Tarball([]E{{Name: "a", Type: tar.TypeSymlink, Linkname: "b/../.."}}))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dst := filepath.Join(root, "dst")
		os.Mkdir(dst, 0o755)
		_ = Unpack(bytes.NewReader(data), dst, Limits{MaxBytes: 1 << 16, MaxFiles: 50})
		ents, _ := os.ReadDir(root)
		if len(ents) != 1 {
			t.Fatalf("entries outside dst: %v", ents)
		}
	})
}
