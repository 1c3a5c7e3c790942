// Package config loads and validates ops-meta's YAML file: the service's
// own settings here, the desired state (the rollout, agents and rollouts
// blocks) compiled by package desired.
package config

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kestrel-mon/kestrel/lib/confload"
	"github.com/kestrel-mon/kestrel/lib/logging"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/desired"
)

// Config is the whole file: the service's settings and the compiled
// desired state.
type Config struct {
	HTTP HTTP           `yaml:"http"`
	Log  logging.Config `yaml:"log"`
	// AdminToken guards every changing endpoint (Authorization: Bearer).
	// Empty disables those endpoints (403).
	AdminToken string `yaml:"admin_token"`
	// FleetToken, when set, must be sent by every heartbeat in the header
	// X-Kestrel-Fleet-Token (or Authorization: Bearer).
	FleetToken string `yaml:"fleet_token"`
	// ArtifactsDir is served at /artifacts/; sha256 and signature are read
	// from its sidecars.
	ArtifactsDir string `yaml:"artifacts_dir"`
	// PublicURL is how updaters reach this ops-meta; with ArtifactsDir it
	// derives the tarball base URL <public_url>/artifacts.
	PublicURL string    `yaml:"public_url"`
	MySQL     MySQL     `yaml:"mysql"`
	Inventory Inventory `yaml:"inventory"`

	// Desired is the file's rollout, agents and rollouts blocks, compiled
	// by Load and Parse (an empty set in Default).
	Desired *desired.Set `yaml:"-"`

	file string
}

// File is the path the config was loaded from ("" for Default).
func (c *Config) File() string { return c.file }

// HTTP is the listener.
type HTTP struct {
	Listen       string        `yaml:"listen"`
	MaxBodyBytes int64         `yaml:"max_body_bytes"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// MySQL inventory; empty DSN keeps everything in memory.
type MySQL struct {
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
}

// Inventory settings.
type Inventory struct {
	// StaleAfter: hosts not seen for this long do not count in rollouts and
	// are shown as stale.
	StaleAfter time.Duration `yaml:"stale_after"`
}

// Defaults of the service's settings (the desired state's are package
// desired's).
const (
	DefaultListen       = ":2000"
	DefaultMaxBody      = 1 << 20
	DefaultHTTPTimeout  = 30 * time.Second
	DefaultMaxOpenConns = 10
	DefaultStaleAfter   = 15 * time.Minute
)

// file is the YAML document: the service's settings and the desired
// state side by side.
type file struct {
	Config       `yaml:",inline"`
	desired.File `yaml:",inline"`
}

// Default returns the config of an empty file: every default filled in,
// no agents.
func Default() Config {
	c, err := build(file{})
	if err != nil {
		panic("config: the defaults do not validate: " + err.Error())
	}
	return c
}

// Load reads, decodes strictly, fills the defaults and validates a file.
// Every error names the file and the field; all of them come at once.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load of b, the contents of the file named path.
func Parse(path string, b []byte) (Config, error) {
	var f file
	if err := confload.Decode(path, b, &f); err != nil {
		return Config{}, err
	}
	c, err := build(f)
	if err != nil {
		return Config{}, confload.InFile(path, err)
	}
	c.file = path
	return c, nil
}

func build(f file) (Config, error) {
	c := f.Config
	c.defaults()
	errs := []error{c.Validate()}
	set, err := desired.Compile(f.File, desired.Options{ServesArtifacts: c.ArtifactsDir != "" && c.PublicURL != ""})
	errs = append(errs, err)
	c.Desired = set
	return c, errors.Join(errs...)
}

func (c *Config) defaults() {
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultListen
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = DefaultMaxBody
	}
	if c.HTTP.ReadTimeout == 0 {
		c.HTTP.ReadTimeout = DefaultHTTPTimeout
	}
	if c.HTTP.WriteTimeout == 0 {
		c.HTTP.WriteTimeout = DefaultHTTPTimeout
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.MySQL.MaxOpenConns == 0 {
		c.MySQL.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.Inventory.StaleAfter == 0 {
		c.Inventory.StaleAfter = DefaultStaleAfter
	}
}

// Validate checks the service's settings (Compile checks the desired
// state) and reports every bad field at once, each error naming it.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.HTTP.MaxBodyBytes < 1024 {
		add("http.max_body_bytes: %d is below 1024", c.HTTP.MaxBodyBytes)
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		add("admin_token: too short (%d characters, want at least 16)", len(c.AdminToken))
	}
	if c.FleetToken != "" && len(c.FleetToken) < 16 {
		add("fleet_token: too short (%d characters, want at least 16)", len(c.FleetToken))
	}
	if c.ArtifactsDir != "" {
		if st, err := os.Stat(c.ArtifactsDir); err != nil || !st.IsDir() {
			add("artifacts_dir: %q is not a readable directory", c.ArtifactsDir)
		}
	}
	if c.PublicURL != "" {
		if err := desired.CheckURL(c.PublicURL); err != nil {
			add("public_url: %v", err)
		}
	}
	if c.Inventory.StaleAfter < 0 {
		add("inventory.stale_after: negative")
	}
	return errors.Join(errs...)
}
