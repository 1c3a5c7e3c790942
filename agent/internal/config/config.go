// Package config loads and validates the agent's YAML configuration.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/kestrel-mon/kestrel/lib/confload"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/proto"
)

// Config is agent.yaml.
type Config struct {
	Hostname string            `yaml:"hostname"`
	Tags     map[string]string `yaml:"tags"`
	Step     int               `yaml:"step"`
	NATS     natsconn.Config   `yaml:"nats"`
	HTTP     HTTP              `yaml:"http"`
	Publish  Publish           `yaml:"publish"`
	Retry    Retry             `yaml:"retry"`
	Log      logging.Config    `yaml:"log"`
}

// HTTP is the push/health/metrics listener.
type HTTP struct {
	Listen       string `yaml:"listen"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
}

// Publish tunes JetStream publishing.
type Publish struct {
	Timeout      time.Duration `yaml:"timeout"`
	MaxPayload   int           `yaml:"max_payload"`
	FlushTimeout time.Duration `yaml:"flush_timeout"`
}

// Retry bounds the in-memory queue of unacknowledged batches.
type Retry struct {
	MaxBatches     int           `yaml:"max_batches"`
	MaxBytes       int64         `yaml:"max_bytes"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// Defaults.
const (
	DefaultStep         = 60
	DefaultListen       = "127.0.0.1:1988"
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxBatches   = 1000
	DefaultMaxBytes     = 64 << 20
)

// Default returns the configuration used when no file is given. The
// hostname is the operating system's.
func Default() Config {
	host, _ := os.Hostname()
	return Config{
		Hostname: host,
		Step:     DefaultStep,
		NATS:     natsconn.Default(),
		HTTP:     HTTP{Listen: DefaultListen, MaxBodyBytes: DefaultMaxBodyBytes},
		Publish:  Publish{Timeout: 5 * time.Second, FlushTimeout: 10 * time.Second},
		Retry: Retry{
			MaxBatches:     DefaultMaxBatches,
			MaxBytes:       DefaultMaxBytes,
			InitialBackoff: 500 * time.Millisecond,
			MaxBackoff:     30 * time.Second,
		},
		Log: logging.Default(),
	}
}

// Load reads path over the defaults and validates the result. An empty
// path means the defaults alone. Every error names the file and the field;
// Validate's are all reported at once.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.Validate()
	}
	if err := confload.Load(path, &cfg); err != nil {
		return Config{}, err
	}
	if cfg.Hostname == "" { // hostname: "" means the OS's
		cfg.Hostname, _ = os.Hostname()
	}
	if err := confload.InFile(path, cfg.Validate()); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks every field and returns one error per bad field (joined),
// each starting with the field's name.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Hostname == "":
		bad("hostname", "is empty and the OS hostname is unknown")
	case len(c.Hostname) > proto.MaxEndpointLen:
		bad("hostname", "longer than %d bytes", proto.MaxEndpointLen)
	case hasControl(c.Hostname):
		// The transfer would reject every point of this agent.
		bad("hostname", "%q holds a control character", c.Hostname)
	}
	for k, v := range c.Tags {
		switch {
		case k == "" || strings.ContainsAny(k, "=, ") || strings.ContainsAny(v, ", "):
			bad("tags", "%q=%q: a key must be non-empty without '=', ',' or spaces; a value without ',' or spaces", k, v)
		case hasControl(k) || hasControl(v):
			bad("tags", "%q=%q holds a control character", k, v)
		}
	}
	if len(c.Tags) > proto.MaxTags {
		bad("tags", "more than %d tags", proto.MaxTags)
	}
	if c.Step <= 0 || c.Step > 86400 {
		bad("step", "must be between 1 and 86400 seconds, got %d", c.Step)
	}
	for _, e := range c.NATS.Validate() {
		bad(e.Field, "%s", e.Msg)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		bad("http.max_body_bytes", "must be > 0")
	}
	if c.Publish.Timeout <= 0 {
		bad("publish.timeout", "must be > 0")
	}
	if c.Publish.MaxPayload < 0 || (c.Publish.MaxPayload > 0 && c.Publish.MaxPayload < MinMaxPayload) {
		bad("publish.max_payload", "must be 0 (the server's) or at least %d bytes", MinMaxPayload)
	}
	if c.Publish.FlushTimeout < 0 {
		bad("publish.flush_timeout", "must be >= 0")
	}
	if c.Retry.MaxBatches <= 0 {
		bad("retry.max_batches", "must be > 0")
	}
	if c.Retry.MaxBytes <= 0 {
		bad("retry.max_bytes", "must be > 0")
	}
	if c.Retry.InitialBackoff <= 0 {
		bad("retry.initial_backoff", "must be > 0")
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		bad("retry.max_backoff", "must be >= retry.initial_backoff")
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hasControl reports whether s holds a control character (C0, DEL or C1,
// as proto rejects them in endpoints and tags).
func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// MinMaxPayload is the smallest publish.max_payload accepted: room for a
// batch of a few maximal points plus headers.
const MinMaxPayload = 4096
