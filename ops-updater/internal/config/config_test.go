package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfig(t *testing.T) {
	c, err := Load("../../ops-updater.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Interval != DefaultInterval || c.Keep != 3 || c.HTTP.Listen != "127.0.0.1:2001" ||
		c.InstallDir != d.InstallDir || c.Download != d.Download || c.MetaURLs[0] != DefaultMetaURL ||
		c.ControlTimeout != d.ControlTimeout || c.HealthTimeout != d.HealthTimeout || c.RequireSignature {
		t.Fatalf("example config differs from the defaults: %+v", c)
	}
	if h, _ := os.Hostname(); c.Hostname != h {
		t.Fatalf("hostname %q, want the OS hostname %q", c.Hostname, h)
	}
}

func TestEmptyConfigDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != 300*time.Second || c.HTTP.Listen != DefaultListen || c.Keep != 3 {
		t.Fatalf("%+v", c)
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tok"), []byte("s3cret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "k.pub"), []byte(base64.StdEncoding.EncodeToString(make([]byte, ed25519.PublicKeySize))), 0o600)
	p := filepath.Join(dir, "u.yaml")
	os.WriteFile(p, []byte("fleet_token_file: tok\npublic_key_files: [k.pub]\ninstall_dir: /tmp/x\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.FleetToken != "s3cret" || c.PublicKeyFiles[0] != filepath.Join(dir, "k.pub") {
		t.Fatalf("%+v", c)
	}
}

func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"bogus: 1", "field bogus not found"},
		{"meta_urls: []", ""}, // empty list gets the default
		{"meta_urls: ['ftp://x']", "meta_urls[0]"},
		{"meta_urls: ['127.0.0.1:2000']", "meta_urls[0]"},
		{"install_dir: relative/dir", "install_dir"},
		{"interval: 1ms", "interval"},
		{"interval: 5", "time.Duration"},
		{"require_signature: true", "require_signature"},
		{"keep: 1", "keep"},
		{"keep: -3", "keep"},
		{"download: {max_size: -1}", "download.max_size"},
		{"download: {timeout: -1s}", "download.timeout"},
		{"http: {listen: 'nope'}", "http.listen"},
		{"log: {level: loud}", "log.level"},
		{"log: {format: xml}", "log.format"},
		{"hostname: 'a b'", "hostname"},
		{"control_timeout: -1s", "control_timeout"},
	} {
		_, err := Parse("u.yaml", []byte(tc.yaml))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.yaml, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "u.yaml") {
			t.Errorf("%q: error %v, want one naming u.yaml and %q", tc.yaml, err, tc.want)
		}
	}
}

// Every bad field is reported at once, each naming the file and the field.
func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Parse("u.yaml", []byte("keep: 1\ninterval: 1ms\nlog: {level: loud, format: xml}\nmeta_urls: ['ftp://x']\n"))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{"keep", "interval", "log.level", "log.format", "meta_urls[0]"} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "u.yaml: "+want+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line \"u.yaml: %s: ...\" in\n%v", want, err)
		}
	}
	if len(lines) != 5 {
		t.Errorf("%d errors, want 5:\n%v", len(lines), err)
	}
}

// The public keys are read with the config: a bad key file is a config
// error naming the entry.
func TestPublicKeyFiles(t *testing.T) {
	dir := t.TempDir()
	good := base64.StdEncoding.EncodeToString(make([]byte, ed25519.PublicKeySize))
	os.WriteFile(filepath.Join(dir, "good.pub"), []byte(good+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.pub"), []byte("not a key\n"), 0o644)
	p := filepath.Join(dir, "u.yaml")
	os.WriteFile(p, []byte("public_key_files: [good.pub]\n"), 0o644)
	c, err := Load(p)
	if err != nil || len(c.PublicKeys) != 1 || len(c.PublicKeys[0]) != ed25519.PublicKeySize {
		t.Fatalf("%v %d keys", err, len(c.PublicKeys))
	}
	os.WriteFile(p, []byte("public_key_files: [good.pub, bad.pub, missing.pub]\n"), 0o644)
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), p+": public_key_files[1]: ") || !strings.Contains(err.Error(), p+": public_key_files[2]: ") {
		t.Fatalf("bad key files: %v", err)
	}
}

func TestHTTPDisabled(t *testing.T) {
	c, err := Parse("u.yaml", []byte("http: {listen: ''}"))
	if err != nil || c.HTTP.Listen != "" {
		t.Fatalf("%v %+v", err, c.HTTP)
	}
}
