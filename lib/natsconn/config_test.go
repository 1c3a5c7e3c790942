package natsconn

import (
	"strings"
	"testing"
	"time"
)

// The URL a new user once wrote: accepted, then retried for ever.
func TestMalformedURLIsAConfigError(t *testing.T) {
	c := Default()
	c.URLs = []string{"nats://ok:4222", "htp:/bad url"}
	errs := c.Validate()
	if len(errs) != 1 || errs[0].Field != "nats.urls[1]" {
		t.Fatalf("want one error naming nats.urls[1], got %v", errs)
	}
	if !strings.Contains(errs[0].Error(), `nats.urls[1]: "htp:/bad url" is not a NATS URL`) {
		t.Errorf("unclear error: %v", errs[0])
	}
}

func TestURLs(t *testing.T) {
	f := func(url, wantErr string) {
		t.Helper()
		err := checkURLs(url)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", url, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: want error containing %q, got %v", url, wantErr, err)
		}
	}
	f("nats://127.0.0.1:4222", "")
	f("nats://nats.example.com", "")
	f("127.0.0.1:4222", "") // nats.go reads it as nats://
	f("localhost", "")
	f("localhost:", "") // nats.go adds 4222
	f("tls://a:4443/", "")
	f("ws://a:8080/nats", "")
	f("wss://a", "")
	f("NATS://a:4222", "")
	f("nats://user:pw@a:4222", "")
	f("nats://[::1]:4222", "")
	f("nats://a:4222, nats://b:4222", "") // one entry, two URLs, as nats.go splits them

	f("", "is empty")
	f("  ", "is empty")
	f("nats://a:4222,,nats://b:4222 ,", "") // nats.go leaves out empty ones
	f(" , ", "is empty")
	f("htp:/bad url", `contains ' '`)
	f("nats://a:42\n22", `contains '\n'`)
	f("htp://a:4222", `unknown scheme "htp"`)
	f("http://a:4222", `unknown scheme "http"`)
	f("htp:/bad", "has no path")
	f("nats://a:4222/x", "has no path")
	f("nats://a:4222?x=1", "has no path")
	f("nats://:4222", "no host")
	f("nats://", "no host")
	f("nats://a:99999", `port "99999"`)
	f("nats://a:0", `port "0"`)
	f("nats://a:x", "invalid port")
	f("nats://[::1", "missing ']'")
}

func TestURLErrorsHideSecrets(t *testing.T) {
	for _, u := range []string{"nats://user:s3cret@a:4222/x", "nats://s3cret@a b", "htp://user:s3cret@a"} {
		err := checkURLs(u)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error missing or shows the secret: %v", u, err)
		}
	}
	if got := Redact("tls://u:p@h:1"); got != "tls://xxxxx@h:1" {
		t.Errorf("Redact = %q", got)
	}
	if got := Redact("h:1"); got != "h:1" {
		t.Errorf("Redact = %q", got)
	}
}

func TestValidate(t *testing.T) {
	d := Default()
	if errs := d.Validate(); errs != nil {
		t.Fatalf("defaults invalid: %v", errs)
	}
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.URLs = nil }, "nats.urls: at least one URL is required"},
		{func(c *Config) { c.URLs = []string{""} }, "nats.urls[0]: is empty"},
		{func(c *Config) { c.SubjectPrefix = "a..b" }, "nats.subject_prefix:"},
		{func(c *Config) { c.Password = "p" }, "nats.user: is required with nats.password"},
		{func(c *Config) { c.Token, c.User, c.Password = "t", "u", "p" }, "nats: give only one of"},
		{func(c *Config) { c.CredsFile, c.NkeySeedFile = "c", "n" }, "nats: give only one of"},
		{func(c *Config) { c.TLS.CertFile = "c.pem" }, "nats.tls: cert_file and key_file go together"},
		{func(c *Config) { c.TLS.KeyFile = "k.pem" }, "nats.tls: cert_file and key_file go together"},
		{func(c *Config) { c.ConnectTimeout = 0 }, "nats.connect_timeout: must be > 0"},
	}
	for _, tc := range cases {
		c := Default()
		tc.mod(&c)
		errs := c.Validate()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("want one error containing %q, got %v", tc.want, errs)
		}
	}
	// Every problem is reported at once.
	c := Config{URLs: []string{"x y"}, SubjectPrefix: "a b", Password: "p", ConnectTimeout: -time.Second}
	if errs := c.Validate(); len(errs) != 4 {
		t.Errorf("want 4 errors (url, prefix, user, timeout), got %v", errs)
	}
}
