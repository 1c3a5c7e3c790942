// Package sign writes and checks artifact sidecars: <file>.sha256 and
// <file>.md5 (sha256sum/md5sum format) and <file>.sig, the base64 (standard
// encoding) ed25519 signature over proto.ArtifactMessage(name, version,
// sha256 hex). Keys are files holding one base64 line: the 32-byte public
// key or the 64-byte private key.
package sign

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
)

// Suffix of every artifact.
const Suffix = ".tar.gz"

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	versionRe = regexp.MustCompile(`^[0-9][A-Za-z0-9._+-]{0,127}$`)
	hexRe     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidName reports whether s is a valid agent name.
func ValidName(s string) bool { return nameRe.MatchString(s) }

// ValidVersion reports whether s is a valid version: starts with a digit,
// then letters, digits, '.', '_', '+', '-', at most 128 characters.
func ValidVersion(s string) bool { return versionRe.MatchString(s) }

// ValidSha256 reports whether s is 64 lower-case hex characters.
func ValidSha256(s string) bool { return hexRe.MatchString(s) }

// ParseArtifactName splits "<name>-<version>.tar.gz" (a base name or a
// path). The version starts after the LAST '-' that is followed by a digit,
// so "kestrel-agent-1.2.0-rc1.tar.gz" is name "kestrel-agent", version
// "1.2.0-rc1".
func ParseArtifactName(file string) (name, version string, err error) {
	base := filepath.Base(file)
	if !strings.HasSuffix(base, Suffix) {
		return "", "", fmt.Errorf("artifact %q: name must end in %s", base, Suffix)
	}
	stem := strings.TrimSuffix(base, Suffix)
	cut := -1
	for i := len(stem) - 2; i >= 0; i-- {
		if stem[i] == '-' && stem[i+1] >= '0' && stem[i+1] <= '9' {
			cut = i
			break
		}
	}
	if cut <= 0 {
		return "", "", fmt.Errorf("artifact %q: want <name>-<version>%s with a version starting with a digit", base, Suffix)
	}
	name, version = stem[:cut], stem[cut+1:]
	if !ValidName(name) {
		return "", "", fmt.Errorf("artifact %q: invalid name %q", base, name)
	}
	if !ValidVersion(version) {
		return "", "", fmt.Errorf("artifact %q: invalid version %q", base, version)
	}
	return name, version, nil
}

// ArtifactFile is the base name of an artifact.
func ArtifactFile(name, version string) string { return name + "-" + version + Suffix }

// Keygen creates a key pair and writes it to pubPath and privPath (0600).
func Keygen(pubPath, privPath string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("cannot generate key: %w", err)
	}
	if err := writeNew(privPath, []byte(base64.StdEncoding.EncodeToString(priv)+"\n"), 0o600); err != nil {
		return err
	}
	return writeNew(pubPath, []byte(base64.StdEncoding.EncodeToString(pub)+"\n"), 0o644)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("cannot create key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return f.Close()
}

func readKey(path string, size int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("key %s: not one base64 line: %w", path, err)
	}
	if len(k) != size {
		return nil, fmt.Errorf("key %s: %d bytes, want %d", path, len(k), size)
	}
	return k, nil
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	k, err := readKey(path, ed25519.PublicKeySize)
	return ed25519.PublicKey(k), err
}

// LoadPrivateKey reads a private key file.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	k, err := readKey(path, ed25519.PrivateKeySize)
	return ed25519.PrivateKey(k), err
}

// Digests returns the sha256 and md5 hex digests of a file.
func Digests(path string) (sha256Hex, md5Hex string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("cannot open artifact: %w", err)
	}
	defer f.Close()
	s, m := sha256.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(s, m), f); err != nil {
		return "", "", fmt.Errorf("cannot read artifact %s: %w", path, err)
	}
	return hex.EncodeToString(s.Sum(nil)), hex.EncodeToString(m.Sum(nil)), nil
}

// Signature returns the base64 signature of an artifact.
func Signature(key ed25519.PrivateKey, name, version, sha256Hex string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, proto.ArtifactMessage(name, version, sha256Hex)))
}

// VerifySignature checks a base64 signature.
func VerifySignature(pub ed25519.PublicKey, name, version, sha256Hex, sig string) error {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	if len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("signature is %d bytes, want %d", len(raw), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, proto.ArtifactMessage(name, version, sha256Hex), raw) {
		return errors.New("signature does not match " + name + " " + version)
	}
	return nil
}

// SignFile writes the .sha256, .md5 and (when key is not nil) .sig sidecars
// of an artifact.
func SignFile(key ed25519.PrivateKey, path string) error {
	name, version, err := ParseArtifactName(path)
	if err != nil {
		return err
	}
	sh, md, err := Digests(path)
	if err != nil {
		return err
	}
	base := filepath.Base(path)
	if err := os.WriteFile(path+".sha256", []byte(sh+"  "+base+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write sidecar: %w", err)
	}
	if err := os.WriteFile(path+".md5", []byte(md+"  "+base+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write sidecar: %w", err)
	}
	if key == nil {
		return nil
	}
	if err := os.WriteFile(path+".sig", []byte(Signature(key, name, version, sh)+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write sidecar: %w", err)
	}
	return nil
}

// ParseSumLine parses one sha256sum/md5sum line "<hex>  <file>" (or a bare
// hex digest) and returns the lower-case digest; size is the digest length
// in bytes.
func ParseSumLine(b []byte, size int) (string, error) {
	line := strings.TrimSpace(string(b))
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	d, _, _ := strings.Cut(line, " ")
	d = strings.ToLower(d)
	raw, err := hex.DecodeString(d)
	if err != nil || len(raw) != size {
		return "", fmt.Errorf("not a %d-byte hex digest line: %q", size, truncate(line, 80))
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Sidecars are the digests and signature read from an artifact's sidecars.
type Sidecars struct {
	Sha256    string
	Signature string // empty when there is no .sig
}

// ReadSidecars reads <path>.sha256 (required) and <path>.sig (optional).
func ReadSidecars(path string) (Sidecars, error) {
	var s Sidecars
	b, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return s, fmt.Errorf("cannot read sha256 sidecar: %w", err)
	}
	if s.Sha256, err = ParseSumLine(b, sha256.Size); err != nil {
		return s, fmt.Errorf("%s.sha256: %w", path, err)
	}
	b, err = os.ReadFile(path + ".sig")
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return s, fmt.Errorf("cannot read signature sidecar: %w", err)
	}
	s.Signature = strings.TrimSpace(string(b))
	if raw, err := base64.StdEncoding.DecodeString(s.Signature); err != nil || len(raw) != ed25519.SignatureSize {
		return Sidecars{}, fmt.Errorf("%s.sig: not a base64 ed25519 signature", path)
	}
	return s, nil
}

// VerifyFile checks an artifact against its sidecars: the file's sha256
// must equal the .sha256 sidecar (and its md5 the .md5 sidecar when there is
// one), and the .sig must be a valid signature by pub over its name, version
// and sha256.
func VerifyFile(pub ed25519.PublicKey, path string) error {
	name, version, err := ParseArtifactName(path)
	if err != nil {
		return err
	}
	sh, md, err := Digests(path)
	if err != nil {
		return err
	}
	sc, err := ReadSidecars(path)
	if err != nil {
		return err
	}
	if sc.Sha256 != sh {
		return fmt.Errorf("%s: sha256 %s does not match the .sha256 sidecar %s", filepath.Base(path), sh, sc.Sha256)
	}
	if b, err := os.ReadFile(path + ".md5"); err == nil {
		want, err := ParseSumLine(b, md5.Size)
		if err != nil {
			return fmt.Errorf("%s.md5: %w", path, err)
		}
		if want != md {
			return fmt.Errorf("%s: md5 %s does not match the .md5 sidecar %s", filepath.Base(path), md, want)
		}
	}
	if sc.Signature == "" {
		return fmt.Errorf("%s: no .sig sidecar", filepath.Base(path))
	}
	return VerifySignature(pub, name, version, sh, sc.Signature)
}
