package artifact

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

func TestParseSidecar(t *testing.T) {
	const md5a = "d41d8cd98f00b204e9800998ecf8427e"
	const sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, tc := range []struct {
		in   string
		n    int
		want string // "" = error
	}{
		{md5a + "  a-1.tar.gz\n", 16, md5a},
		{md5a + " *a-1.tar.gz\n", 16, md5a},
		{strings.ToUpper(md5a) + "\n", 16, md5a},
		{md5a, 16, md5a},
		{md5a + "  other-name.tar.gz\n", 16, md5a}, // one line: taken as Open-Falcon does
		{"00000000000000000000000000000000  x.tar.gz\n" + md5a + "  a-1.tar.gz\n", 16, md5a},
		{"00000000000000000000000000000000  x.tar.gz\n" + md5a + "  dist/a-1.tar.gz\n", 16, md5a},
		{"00000000000000000000000000000000  x.tar.gz\n" + md5a + "  y.tar.gz\n", 16, ""},
		{sha + "  a-1.tar.gz\n", 32, sha},
		{md5a + "  a-1.tar.gz\n", 32, ""}, // md5 where sha256 expected
		{"zz" + md5a[2:] + "  a-1.tar.gz\n", 16, ""},
		{"", 16, ""},
		{"\n\n", 16, ""},
		{"<html>not found</html>", 16, ""},
	} {
		got, err := ParseSidecar([]byte(tc.in), tc.n, "a-1.tar.gz")
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: got %q, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte("d41d8cd98f00b204e9800998ecf8427e  a-1.tar.gz\n"))
	f.Add([]byte("x\ny z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseSidecar(b, 16, "a-1.tar.gz")
		if err == nil && len(got) != 32 {
			t.Fatalf("bad digest %q", got)
		}
	})
}

func TestSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub2, priv2, _ := ed25519.GenerateKey(rand.Reader)
	sum := sha256.Sum256([]byte("tarball"))
	sha := hex.EncodeToString(sum[:])
	sign := func(k ed25519.PrivateKey, name, version, sha string) string {
		return base64.StdEncoding.EncodeToString(ed25519.Sign(k, proto.ArtifactMessage(name, version, sha)))
	}
	good := sign(priv, "kestrel-agent", "1.2.0", sha)
	keys := []ed25519.PublicKey{pub2, pub}
	if err := VerifySignature(keys, "kestrel-agent", "1.2.0", sha, good); err != nil {
		t.Fatalf("right signature refused: %v", err)
	}
	if err := VerifySignature(keys, "kestrel-agent", "1.2.0", strings.ToUpper(sha), good+"\n"); err != nil {
		t.Fatalf("upper-case hex refused: %v", err)
	}
	if err := VerifySignature([]ed25519.PublicKey{pub2}, "kestrel-agent", "1.2.0", sha, sign(priv2, "kestrel-agent", "1.2.0", sha)); err != nil {
		t.Fatal(err)
	}
	tampered := sha256.Sum256([]byte("tarbalL"))
	sig := []byte(good)
	sigRaw, _ := base64.StdEncoding.DecodeString(good)
	sigRaw[5] ^= 1
	for _, tc := range []struct {
		name                string
		keys                []ed25519.PublicKey
		aname, version, sha string
		sig                 string
		reason              Reason
	}{
		{"tampered content", keys, "kestrel-agent", "1.2.0", hex.EncodeToString(tampered[:]), good, ReasonSignature},
		{"other version", keys, "kestrel-agent", "1.1.0", sha, good, ReasonSignature},
		{"other name", keys, "other-agent", "1.2.0", sha, good, ReasonSignature},
		{"flipped bit", keys, "kestrel-agent", "1.2.0", sha, base64.StdEncoding.EncodeToString(sigRaw), ReasonSignature},
		{"wrong key", []ed25519.PublicKey{pub2}, "kestrel-agent", "1.2.0", sha, string(sig), ReasonSignature},
		{"not base64", keys, "kestrel-agent", "1.2.0", sha, "!!!", ReasonSignature},
		{"short", keys, "kestrel-agent", "1.2.0", sha, "AAAA", ReasonSignature},
		{"unsigned", keys, "kestrel-agent", "1.2.0", sha, "", ReasonUnsigned},
	} {
		err := VerifySignature(tc.keys, tc.aname, tc.version, tc.sha, tc.sig)
		if ReasonOf(err) != tc.reason {
			t.Errorf("%s: %v, want reason %s", tc.name, err, tc.reason)
		}
	}
}

func TestLoadPublicKeys(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	p := filepath.Join(dir, "k.pub")
	os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(pub)+"\n"), 0o644)
	keys, err := LoadPublicKeys([]string{p})
	if err != nil || !keys[0].Equal(pub) {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "k.priv")
	os.WriteFile(bad, []byte(base64.StdEncoding.EncodeToString(priv)), 0o600)
	if _, err := LoadPublicKeys([]string{bad}); err == nil || !strings.Contains(err.Error(), "64 bytes") {
		t.Fatalf("private key accepted as public: %v", err)
	}
	if _, err := LoadPublicKeys([]string{filepath.Join(dir, "none")}); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestDownload(t *testing.T) {
	body := bytes.Repeat([]byte("k"), 1000)
	var gotToken string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotToken = r.Header.Get(FleetTokenHeader)
		w.Write(body)
	})
	mux.HandleFunc("/chunked-big", func(w http.ResponseWriter, r *http.Request) {
		for range 5 {
			w.Write(body)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/truncated", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write(body[:400])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/missing", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	f := NewFetcher(5*time.Second, 2000, "tok", []string{srv.URL})
	var buf bytes.Buffer
	d, err := f.Download(ctx, srv.URL+"/ok", &buf)
	sum := sha256.Sum256(body)
	if err != nil || d.Sha256 != hex.EncodeToString(sum[:]) || d.Size != 1000 || buf.Len() != 1000 {
		t.Fatalf("%+v %v", d, err)
	}
	if gotToken != "tok" {
		t.Fatalf("token %q not sent to the ops-meta origin", gotToken)
	}
	other := NewFetcher(5*time.Second, 2000, "tok", []string{"http://ops-meta.example:2000"})
	other.Download(ctx, srv.URL+"/ok", &bytes.Buffer{})
	if gotToken != "" {
		t.Fatal("fleet token sent to a server that is not ops-meta")
	}

	small := NewFetcher(5*time.Second, 999, "", nil)
	if _, err := small.Download(ctx, srv.URL+"/ok", &bytes.Buffer{}); ReasonOf(err) != ReasonTooLarge {
		t.Fatalf("content-length over limit: %v", err)
	}
	if _, err := f.Download(ctx, srv.URL+"/chunked-big", &bytes.Buffer{}); ReasonOf(err) != ReasonTooLarge {
		t.Fatalf("chunked over limit: %v", err)
	}
	if _, err := f.Download(ctx, srv.URL+"/truncated", &bytes.Buffer{}); ReasonOf(err) != ReasonTruncated {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := f.Download(ctx, srv.URL+"/missing", &bytes.Buffer{}); ReasonOf(err) != ReasonDownload || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
	if _, err := f.FetchSmall(ctx, srv.URL+"/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FetchSmall 404: %v", err)
	}
	if _, err := f.Download(ctx, "file:///etc/passwd", &bytes.Buffer{}); ReasonOf(err) != ReasonDownload {
		t.Fatalf("file URL: %v", err)
	}
	// A server that accepts and never answers: the timeout ends it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	slow := NewFetcher(200*time.Millisecond, 2000, "", nil)
	if _, err := slow.Download(ctx, "http://"+ln.Addr().String()+"/x", &bytes.Buffer{}); ReasonOf(err) != ReasonDownload {
		t.Fatalf("hanging server: %v", err)
	}
}
