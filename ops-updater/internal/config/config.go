// Package config loads and validates ops-updater.yaml.
package config

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/lib/confload"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/artifact"
)

// Defaults. Every one is documented in ops-updater.example.yaml.
const (
	DefaultMetaURL          = "http://127.0.0.1:2000"
	DefaultInstallDir       = "/opt/kestrel"
	DefaultInterval         = 300 * time.Second
	DefaultHeartbeatTimeout = 10 * time.Second
	DefaultDownloadTimeout  = 5 * time.Minute
	DefaultMaxSize          = 256 << 20 // compressed tarball
	DefaultMaxUnpackedSize  = 1 << 30   // sum of the regular files in a tarball
	DefaultMaxFiles         = 10000
	DefaultControlTimeout   = 60 * time.Second
	DefaultHealthTimeout    = 60 * time.Second
	DefaultKeep             = 3
	DefaultListen           = "127.0.0.1:2001"
)

// Config is the whole ops-updater.yaml.
type Config struct {
	// Hostname reported to ops-meta; default os.Hostname().
	Hostname string `yaml:"hostname"`
	// MetaURLs are ops-meta base URLs, tried in turn for every heartbeat
	// (POST <url>/heartbeat).
	MetaURLs []string `yaml:"meta_urls"`
	// FleetToken is sent as header X-Kestrel-Fleet-Token on heartbeats and
	// on artifact downloads from an ops-meta URL. FleetTokenFile, if set,
	// holds it instead (one line).
	FleetToken     string `yaml:"fleet_token"`
	FleetTokenFile string `yaml:"fleet_token_file"`
	// InstallDir holds <name>/.version and <name>/<version>/.
	InstallDir string `yaml:"install_dir"`
	// Interval between heartbeats; the first one comes after a random
	// delay in [0, Interval).
	Interval         time.Duration `yaml:"interval"`
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// PublicKeyFiles each hold one base64 line: a 32-byte ed25519 public key.
	PublicKeyFiles []string `yaml:"public_key_files"`
	// PublicKeys are the keys of PublicKeyFiles, read by Load and Parse.
	PublicKeys       []ed25519.PublicKey `yaml:"-"`
	RequireSignature bool                `yaml:"require_signature"`
	Download         Download            `yaml:"download"`
	// ControlTimeout bounds every "./control <cmd>" run.
	ControlTimeout time.Duration `yaml:"control_timeout"`
	// HealthTimeout is how long a new version may take to become healthy
	// when ops-meta gives no health timeout.
	HealthTimeout time.Duration `yaml:"health_timeout"`
	// Keep is how many installed versions are kept per agent.
	Keep int            `yaml:"keep"`
	HTTP HTTP           `yaml:"http"`
	Log  logging.Config `yaml:"log"`

	file string
}

// Download limits.
type Download struct {
	Timeout         time.Duration `yaml:"timeout"`
	MaxSize         int64         `yaml:"max_size"`
	MaxUnpackedSize int64         `yaml:"max_unpacked_size"`
	MaxFiles        int           `yaml:"max_files"`
}

// HTTP is the local status server.
type HTTP struct {
	Listen string `yaml:"listen"` // "" disables it
}

// Default returns a config with every default filled in (hostname
// excepted: Load and Parse fill in the OS hostname).
func Default() Config {
	c := Config{HTTP: HTTP{Listen: DefaultListen}, Log: logging.Default()}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if len(c.MetaURLs) == 0 {
		c.MetaURLs = []string{DefaultMetaURL}
	}
	if c.InstallDir == "" {
		c.InstallDir = DefaultInstallDir
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.Download.Timeout == 0 {
		c.Download.Timeout = DefaultDownloadTimeout
	}
	if c.Download.MaxSize == 0 {
		c.Download.MaxSize = DefaultMaxSize
	}
	if c.Download.MaxUnpackedSize == 0 {
		c.Download.MaxUnpackedSize = DefaultMaxUnpackedSize
	}
	if c.Download.MaxFiles == 0 {
		c.Download.MaxFiles = DefaultMaxFiles
	}
	if c.ControlTimeout == 0 {
		c.ControlTimeout = DefaultControlTimeout
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Load reads, defaults and validates a config file. The HTTP listen address
// defaults to 127.0.0.1:2001 only when the key is absent. Every error names
// the file and the field; all of them are reported at once.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes a config strictly (unknown keys are errors), fills the
// defaults, reads fleet_token_file and public_key_files (relative to the
// directory of file) and validates.
func Parse(file string, b []byte) (Config, error) {
	c := Config{HTTP: HTTP{Listen: DefaultListen}, file: file}
	if err := confload.Decode(file, b, &c); err != nil {
		return Config{}, err
	}
	c.file = file
	c.setDefaults()
	var errs []error
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			errs = append(errs, fmt.Errorf("hostname: empty and os.Hostname failed: %w", err))
		}
		c.Hostname = h
	}
	if c.FleetTokenFile != "" {
		if !filepath.IsAbs(c.FleetTokenFile) {
			c.FleetTokenFile = filepath.Join(filepath.Dir(file), c.FleetTokenFile)
		}
		if tb, err := os.ReadFile(c.FleetTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("fleet_token_file: %w", err))
		} else {
			c.FleetToken = strings.TrimSpace(string(tb))
		}
	}
	for i, k := range c.PublicKeyFiles {
		if k != "" && !filepath.IsAbs(k) {
			c.PublicKeyFiles[i] = filepath.Join(filepath.Dir(file), k)
		}
	}
	for i, k := range c.PublicKeyFiles {
		if k == "" {
			continue // Validate names it
		}
		key, err := artifact.LoadPublicKeys([]string{k})
		if err != nil {
			errs = append(errs, fmt.Errorf("public_key_files[%d]: %w", i, err))
			continue
		}
		c.PublicKeys = append(c.PublicKeys, key...)
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := confload.InFile(file, errors.Join(errs...)); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field and reports every bad one (errors.Join),
// each error naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	switch {
	case c.Hostname == "":
		bad("hostname", "must not be empty")
	case len(c.Hostname) > 255 || strings.ContainsAny(c.Hostname, " \t\r\n/"):
		bad("hostname", "%q is not a valid hostname", c.Hostname)
	}
	if len(c.MetaURLs) == 0 {
		bad("meta_urls", "at least one ops-meta URL is required")
	}
	for i, s := range c.MetaURLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Sprintf("meta_urls[%d]", i), "%q is not an http(s) URL", s)
		}
	}
	if strings.ContainsAny(c.FleetToken, "\r\n") {
		bad("fleet_token", "must be one line")
	}
	if c.InstallDir == "" || !filepath.IsAbs(c.InstallDir) {
		bad("install_dir", "%q must be an absolute path", c.InstallDir)
	}
	if c.Interval < 10*time.Millisecond {
		bad("interval", "%s is too short", c.Interval)
	}
	if c.HeartbeatTimeout <= 0 {
		bad("heartbeat_timeout", "must be positive")
	}
	for i, k := range c.PublicKeyFiles {
		if k == "" {
			bad(fmt.Sprintf("public_key_files[%d]", i), "empty path")
		}
	}
	if c.RequireSignature && len(c.PublicKeyFiles) == 0 {
		bad("require_signature", "true needs at least one public_key_files entry")
	}
	if c.Download.Timeout <= 0 {
		bad("download.timeout", "must be positive")
	}
	if c.Download.MaxSize <= 0 {
		bad("download.max_size", "must be positive")
	}
	if c.Download.MaxUnpackedSize <= 0 {
		bad("download.max_unpacked_size", "must be positive")
	}
	if c.Download.MaxFiles <= 0 {
		bad("download.max_files", "must be positive")
	}
	if c.ControlTimeout <= 0 {
		bad("control_timeout", "must be positive")
	}
	if c.HealthTimeout <= 0 {
		bad("health_timeout", "must be positive")
	}
	if c.Keep < 2 {
		bad("keep", "%d: must be at least 2 (the active version and the rollback target)", c.Keep)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "%q: %v", c.HTTP.Listen, err)
		}
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// File is the path the config was loaded from.
func (c *Config) File() string { return c.file }
