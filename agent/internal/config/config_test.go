package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c.Hostname != host || c.Step != 60 || c.HTTP.Listen != "127.0.0.1:1988" ||
		c.NATS.URLs[0] != "nats://127.0.0.1:4222" || c.NATS.SubjectPrefix != "kestrel" ||
		c.Publish.Timeout != 5*time.Second || c.Publish.MaxPayload != 0 ||
		c.Retry.MaxBatches != 1000 || c.Retry.MaxBytes != 64<<20 ||
		c.Retry.InitialBackoff != 500*time.Millisecond || c.Retry.MaxBackoff != 30*time.Second ||
		c.Log.Level != "info" || c.Log.Format != "text" || c.HTTP.MaxBodyBytes != 8<<20 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

// The example file documents every default: loading it must give exactly
// the defaults.
func TestExampleFile(t *testing.T) {
	c, err := Load("../../kestrel-agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("example differs from defaults:\n got %+v\nwant %+v", c, d)
	}
}

// The config shipped in the fleet package loads.
func TestPackagedConfig(t *testing.T) {
	if _, err := Load("../../package/agent.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadValues(t *testing.T) {
	p := write(t, `
hostname: web01
tags: {dc: eu1, role: web}
step: 30
nats:
  urls: [nats://a:4222, nats://b:4222]
  token: s3cret
retry: {max_batches: 5, initial_backoff: 10ms, max_backoff: 1s}
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "web01" || c.Step != 30 || len(c.NATS.URLs) != 2 || c.NATS.Token != "s3cret" ||
		c.Tags["dc"] != "eu1" || c.Retry.MaxBatches != 5 || c.Retry.MaxBytes != DefaultMaxBytes ||
		c.Retry.InitialBackoff != 10*time.Millisecond {
		t.Fatalf("bad values: %+v", c)
	}
}

func TestBadFiles(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "stepp: 10\n", "field stepp not found"},
		{"unknown nested key", "nats:\n  url: x\n", "field url not found"},
		{"bad step", "step: 0\n", "step:"},
		{"huge step", "step: 100000\n", "step:"},
		{"step type", "step: abc\n", "cannot unmarshal"},
		{"bad duration", "publish:\n  timeout: 5\n", "line 2: publish.timeout: cannot unmarshal !!int `5` into time.Duration"},
		{"duration not string", "publish:\n  timeout: [1]\n", "publish.timeout: cannot unmarshal !!seq into time.Duration"},
		{"duration typo", "retry:\n  max_backoff: 30 s\n", "retry.max_backoff"},
		{"zero timeout", "publish:\n  timeout: 0s\n", "publish.timeout"},
		{"no urls", "nats:\n  urls: []\n", "nats.urls"},
		{"empty url", "nats:\n  urls: [\"\"]\n", "nats.urls[0]"},
		{"bad prefix", "nats:\n  subject_prefix: a..b\n", "nats.subject_prefix"},
		{"two credentials", "nats:\n  token: t\n  user: u\n  password: p\n", "give only one of"},
		{"password without user", "nats:\n  password: p\n", "nats.user"},
		{"cert without key", "nats:\n  tls:\n    cert_file: c.pem\n", "nats.tls"},
		{"bad listen", "http:\n  listen: nope\n", "http.listen"},
		{"small max payload", "publish:\n  max_payload: 100\n", "publish.max_payload"},
		{"zero batches", "retry:\n  max_batches: 0\n", "retry.max_batches"},
		{"zero bytes", "retry:\n  max_bytes: 0\n", "retry.max_bytes"},
		{"backoff order", "retry:\n  initial_backoff: 2s\n  max_backoff: 1s\n", "retry.max_backoff"},
		{"bad level", "log:\n  level: loud\n", "log.level"},
		{"bad format", "log:\n  format: xml\n", "log.format"},
		{"bad tag", "tags: {\"a,b\": c}\n", "tags:"},
		{"bad tag value", "tags: {a: \"b c\"}\n", "tags:"},
		{"control in hostname", "hostname: \"web\\x0001\"\n", `hostname: "web\x0001" holds a control character`},
		{"newline in hostname", "hostname: \"web\\n01\"\n", "hostname:"},
		{"C1 in hostname", "hostname: \"web\\u008501\"\n", "hostname:"},
		{"control in tag value", "tags: {dc: \"eu\\t1\"}\n", `tags: "dc"="eu\t1" holds a control character`},
		{"control in tag key", "tags: {\"d\\x7fc\": eu1}\n", "tags:"},
		{"malformed nats url", "nats:\n  urls: [\"htp:/bad url\"]\n", `nats.urls[0]: "htp:/bad url" is not a NATS URL`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.yaml)
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Validate reports every bad field at once, each with the file.
func TestAllErrorsAtOnce(t *testing.T) {
	p := write(t, "step: 0\nhttp: {listen: nope}\nlog: {level: loud}\nnats: {urls: [\"htp:/bad url\"]}\n")
	_, err := Load(p)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 errors, got %q", err)
	}
	for i, field := range []string{"step:", "nats.urls[0]:", "http.listen:", "log.level:"} {
		if !strings.HasPrefix(lines[i], p+": "+field) {
			t.Errorf("error %d = %q, want it to start with the file and %s", i, lines[i], field)
		}
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("want error naming the file, got %v", err)
	}
}

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
