package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseArtifactName(t *testing.T) {
	cases := []struct{ in, name, version string }{
		{"kestrel-agent-1.2.0.tar.gz", "kestrel-agent", "1.2.0"},
		{"/dist/kestrel-agent-1.2.0-rc1.tar.gz", "kestrel-agent", "1.2.0-rc1"},
		{"falcon-agent-5.1.0.tar.gz", "falcon-agent", "5.1.0"},
		{"a-2-1.0.tar.gz", "a-2", "1.0"},
		{"x-0.1.0+build.7.tar.gz", "x", "0.1.0+build.7"},
	}
	for _, c := range cases {
		n, v, err := ParseArtifactName(c.in)
		if err != nil || n != c.name || v != c.version {
			t.Errorf("%q: got %q %q %v, want %q %q", c.in, n, v, err, c.name, c.version)
		}
	}
	for _, bad := range []string{"kestrel-agent.tar.gz", "kestrel-agent-1.0.zip", "-1.0.tar.gz", "agent-v1.tar.gz", "a b-1.0.tar.gz", ".tar.gz", "x-1.0 .tar.gz"} {
		if _, _, err := ParseArtifactName(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func FuzzParseArtifactName(f *testing.F) {
	f.Add("kestrel-agent-1.2.0.tar.gz")
	f.Add("a-2-1.0-rc1.tar.gz")
	f.Add("-.tar.gz")
	f.Fuzz(func(t *testing.T, s string) {
		n, v, err := ParseArtifactName(s)
		if err != nil {
			return
		}
		if !ValidName(n) || !ValidVersion(v) || ArtifactFile(n, v) != filepath.Base(s) {
			t.Fatalf("%q → %q %q", s, n, v)
		}
	})
}

func FuzzParseSumLine(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32) + "  x.tar.gz\n"))
	f.Add([]byte("zz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseSumLine(b, 32)
		if err == nil && !ValidSha256(d) {
			t.Fatalf("%q → %q", b, d)
		}
	})
}

func writeTarball(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignVerifyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pubP, privP := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	if err := Keygen(pubP, privP); err != nil {
		t.Fatal(err)
	}
	if err := Keygen(pubP, privP); err == nil {
		t.Fatal("keygen must not overwrite keys")
	}
	if st, _ := os.Stat(privP); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	pub, err := LoadPublicKey(pubP)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(privP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublicKey(privP); err == nil {
		t.Fatal("a private key is not a public key")
	}
	tb := writeTarball(t, dir, "kestrel-agent-1.2.0.tar.gz", "tarball bytes")
	if err := SignFile(priv, tb); err != nil {
		t.Fatal(err)
	}
	shaLine, _ := os.ReadFile(tb + ".sha256")
	sum := sha256.Sum256([]byte("tarball bytes"))
	if string(shaLine) != hex.EncodeToString(sum[:])+"  kestrel-agent-1.2.0.tar.gz\n" {
		t.Fatalf("sha256 sidecar %q", shaLine)
	}
	md5Line, _ := os.ReadFile(tb + ".md5")
	if !strings.HasSuffix(string(md5Line), "  kestrel-agent-1.2.0.tar.gz\n") || len(strings.Fields(string(md5Line))[0]) != 32 {
		t.Fatalf("md5 sidecar %q", md5Line)
	}
	if err := VerifyFile(pub, tb); err != nil {
		t.Fatal(err)
	}
	sc, err := ReadSidecars(tb)
	if err != nil || sc.Sha256 != hex.EncodeToString(sum[:]) || sc.Signature == "" {
		t.Fatalf("sidecars %+v %v", sc, err)
	}

	// Tampered tarball.
	os.WriteFile(tb, []byte("tarball bytes!"), 0o644)
	if err := VerifyFile(pub, tb); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered: %v", err)
	}
	os.WriteFile(tb, []byte("tarball bytes"), 0o644)

	// The same signed content renamed to another version fails.
	other := writeTarball(t, dir, "kestrel-agent-1.3.0.tar.gz", "tarball bytes")
	for _, ext := range []string{".sha256", ".md5", ".sig"} {
		b, _ := os.ReadFile(tb + ext)
		os.WriteFile(other+ext, b, 0o644)
	}
	if err := VerifyFile(pub, other); err == nil || !strings.Contains(err.Error(), "signature does not match") {
		t.Fatalf("wrong version: %v", err)
	}
	// Another key fails.
	if err := Keygen(filepath.Join(dir, "o.pub"), filepath.Join(dir, "o.key")); err != nil {
		t.Fatal(err)
	}
	opub, _ := LoadPublicKey(filepath.Join(dir, "o.pub"))
	if err := VerifyFile(opub, tb); err == nil {
		t.Fatal("other key must fail")
	}
	// Missing .sig fails.
	os.Remove(tb + ".sig")
	if err := VerifyFile(pub, tb); err == nil {
		t.Fatal("missing signature must fail")
	}
	// Unsigned signing writes only digests.
	if err := SignFile(nil, tb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tb + ".sig"); err == nil {
		t.Fatal("nil key wrote a .sig")
	}
}
