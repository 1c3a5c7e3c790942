// Package artifact downloads agent tarballs and checks them: size limits,
// sha256 or md5 sidecars, and ed25519 signatures over proto.ArtifactMessage.
package artifact

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kestrel-mon/kestrel/proto"
)

// Reason is why an artifact was refused; a closed set used as a metric label.
type Reason string

// Refusal reasons.
const (
	ReasonDownload  Reason = "download"
	ReasonTooLarge  Reason = "too_large"
	ReasonTruncated Reason = "truncated"
	ReasonChecksum  Reason = "checksum"
	ReasonSignature Reason = "signature"
	ReasonUnsigned  Reason = "unsigned"
	ReasonUnpack    Reason = "unpack"
)

// Reasons lists every Reason.
func Reasons() []Reason {
	return []Reason{ReasonDownload, ReasonTooLarge, ReasonTruncated, ReasonChecksum, ReasonSignature, ReasonUnsigned, ReasonUnpack}
}

// Error is a refusal with its reason.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Refuse builds an *Error.
func Refuse(r Reason, format string, a ...any) error {
	return &Error{Reason: r, Err: fmt.Errorf(format, a...)}
}

// ReasonOf returns the refusal reason of err, or "" when it is not a refusal.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// ParsePublicKey decodes one base64 line holding a 32-byte ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("public key is not base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key has %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// LoadPublicKeys reads key files (one base64 line each).
func LoadPublicKeys(files []string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read public key: %w", err)
		}
		k, err := ParsePublicKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// VerifySignature checks a base64 ed25519 signature over
// proto.ArtifactMessage(name, version, sha256Hex) against any of keys.
// An empty signature is refused with ReasonUnsigned.
func VerifySignature(keys []ed25519.PublicKey, name, version, sha256Hex, sigB64 string) error {
	sigB64 = strings.TrimSpace(sigB64)
	if sigB64 == "" {
		return Refuse(ReasonUnsigned, "artifact %s-%s is not signed", name, version)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return Refuse(ReasonSignature, "signature of %s-%s is not base64: %v", name, version, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return Refuse(ReasonSignature, "signature of %s-%s has %d bytes, want %d", name, version, len(sig), ed25519.SignatureSize)
	}
	msg := proto.ArtifactMessage(name, version, strings.ToLower(sha256Hex))
	for _, k := range keys {
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
	}
	return Refuse(ReasonSignature, "bad signature for %s-%s (sha256 %s): no configured key verifies it (tampered, or signed for another name or version)", name, version, sha256Hex)
}

// ParseDigestHex checks a hex digest of n bytes and returns it lower-cased.
func ParseDigestHex(s string, n int) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != 2*n {
		return "", fmt.Errorf("digest %q has %d hex digits, want %d", truncate(s, 80), len(s), 2*n)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("digest %q is not hex", truncate(s, 80))
	}
	return s, nil
}

// ParseSidecar parses a sha256sum/md5sum-format file ("<hex>  <file>" or
// "<hex> *<file>", or just "<hex>") holding a digest of n bytes. When the
// file names files, the line for wantFile is used (a single line is taken
// whatever its file name, as Open-Falcon's ops-updater does).
func ParseSidecar(b []byte, n int, wantFile string) (string, error) {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "", errors.New("empty checksum file")
	}
	if len(lines) > 1000 {
		return "", errors.New("checksum file has too many lines")
	}
	if len(lines) == 1 {
		return ParseDigestHex(strings.Fields(lines[0])[0], n)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimPrefix(strings.Join(f[1:], " "), "*")
		if name == wantFile || strings.HasSuffix(name, "/"+wantFile) {
			return ParseDigestHex(f[0], n)
		}
	}
	return "", fmt.Errorf("checksum file has no line for %s", wantFile)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
