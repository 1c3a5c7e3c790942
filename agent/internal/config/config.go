// Package config loads and validates the agent's YAML configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/proto"
	"go.yaml.in/yaml/v3"
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
	Log      Log               `yaml:"log"`
}

// HTTP is the push/health/metrics listener.
type HTTP struct {
	Listen       string `yaml:"listen"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
}

// Publish tunes JetStream publishing.
type Publish struct {
	Timeout      Duration `yaml:"timeout"`
	MaxPayload   int      `yaml:"max_payload"`
	FlushTimeout Duration `yaml:"flush_timeout"`
}

// Retry bounds the in-memory queue of unacknowledged batches.
type Retry struct {
	MaxBatches     int      `yaml:"max_batches"`
	MaxBytes       int64    `yaml:"max_bytes"`
	InitialBackoff Duration `yaml:"initial_backoff"`
	MaxBackoff     Duration `yaml:"max_backoff"`
}

// Log selects the slog handler.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as a Go duration string ("5s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"5s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

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
		Publish:  Publish{Timeout: Duration(5 * time.Second), FlushTimeout: Duration(10 * time.Second)},
		Retry: Retry{
			MaxBatches:     DefaultMaxBatches,
			MaxBytes:       DefaultMaxBytes,
			InitialBackoff: Duration(500 * time.Millisecond),
			MaxBackoff:     Duration(30 * time.Second),
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// Load reads path over the defaults and validates the result. An empty
// path means the defaults alone.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	if err := Decode(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Decode decodes YAML strictly (unknown keys are errors) into cfg, which
// holds the defaults. Fields absent from the YAML keep their defaults; an
// empty hostname falls back to the OS hostname.
func Decode(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.NATS.SubjectPrefix == "" {
		cfg.NATS.SubjectPrefix = proto.DefaultPrefix
	}
	return nil
}

// Validate checks every field; the error names the field.
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
	}
	for k, v := range c.Tags {
		if k == "" || strings.ContainsAny(k, "=, ") || strings.ContainsAny(v, ", ") {
			bad("tags", "%q=%q: a key must be non-empty without '=', ',' or spaces; a value without ',' or spaces", k, v)
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
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// MinMaxPayload is the smallest publish.max_payload accepted: room for a
// batch of a few maximal points plus headers.
const MinMaxPayload = 4096
