// Package config loads and validates ops-meta's YAML file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
)

// Config is the whole file.
type Config struct {
	HTTP HTTP `yaml:"http"`
	Log  Log  `yaml:"log"`
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
	PublicURL string         `yaml:"public_url"`
	MySQL     MySQL          `yaml:"mysql"`
	Inventory Inventory      `yaml:"inventory"`
	Rollout   RolloutDefault `yaml:"rollout"`
	Agents    []Agent        `yaml:"agents"`
	Rollouts  []RolloutSpec  `yaml:"rollouts"`
}

// HTTP is the listener.
type HTTP struct {
	Listen       string   `yaml:"listen"`
	MaxBodyBytes int64    `yaml:"max_body_bytes"`
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
}

// Log settings.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
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
	StaleAfter Duration `yaml:"stale_after"`
}

// RolloutDefault are the defaults of every rollout and the evaluation loop.
type RolloutDefault struct {
	Waves            []float64 `yaml:"waves"`
	Soak             Duration  `yaml:"soak"`
	Deadline         Duration  `yaml:"deadline"`
	FailureThreshold string    `yaml:"failure_threshold"`
	EvaluateEvery    Duration  `yaml:"evaluate_every"`
}

// Agent is one agent's desired state: a default and prefix overrides.
type Agent struct {
	Default AgentSpec  `yaml:"default"`
	Others  []Override `yaml:"others"`
	// Versions holds sha256 and signature per version when ops-meta does
	// not serve the artifacts itself.
	Versions map[string]VersionInfo `yaml:"versions"`
}

// AgentSpec is Open-Falcon's desired agent plus Kestrel's health check.
type AgentSpec struct {
	Name    string  `yaml:"name"`
	Version string  `yaml:"version"`
	Tarball string  `yaml:"tarball"`
	Md5     string  `yaml:"md5"`
	Cmd     string  `yaml:"cmd"`
	Health  *Health `yaml:"health"`
}

// Override applies to hostnames starting with Prefix; empty fields inherit
// the default. Last match wins.
type Override struct {
	Prefix    string `yaml:"prefix"`
	AgentSpec `yaml:",inline"`
}

// Cmd values of an AgentSpec.
const (
	CmdStart = "start"
	CmdStop  = "stop"
)

// SpecFor returns the agent's effective spec for a host, ignoring rollouts:
// the default merged with the last override whose prefix matches the
// hostname (the override's empty fields inherit the default); the default
// when none matches.
func (a *Agent) SpecFor(hostname string) AgentSpec {
	spec := a.Default
	for _, o := range a.Others {
		if strings.HasPrefix(hostname, o.Prefix) {
			spec = merge(a.Default, o.AgentSpec)
		}
	}
	return spec
}

// Stopped reports whether the host's effective spec keeps the agent stopped
// (cmd stop). Such a host stays out of the agent's rollouts.
func (a *Agent) Stopped(hostname string) bool {
	return a.SpecFor(hostname).Cmd == CmdStop
}

func merge(s AgentSpec, o AgentSpec) AgentSpec {
	if o.Version != "" {
		s.Version = o.Version
	}
	if o.Tarball != "" {
		s.Tarball = o.Tarball
	}
	if o.Md5 != "" {
		s.Md5 = o.Md5
	}
	if o.Cmd != "" {
		s.Cmd = o.Cmd
	}
	if o.Health != nil {
		s.Health = o.Health
	}
	return s
}

// Health is the check the updater runs before keeping a version.
type Health struct {
	HTTP    string `yaml:"http"`
	Timeout int    `yaml:"timeout"`
}

// VersionInfo is a version's sha256 and signature from the config.
type VersionInfo struct {
	Sha256    string `yaml:"sha256"`
	Signature string `yaml:"signature"`
}

// RolloutSpec describes a rollout (file or API).
type RolloutSpec struct {
	ID               string    `yaml:"id" json:"id"`
	Agent            string    `yaml:"agent" json:"agent"`
	From             string    `yaml:"from" json:"from"`
	To               string    `yaml:"to" json:"to"`
	Waves            []float64 `yaml:"waves" json:"waves"`
	Soak             Duration  `yaml:"soak" json:"soak"`
	Deadline         Duration  `yaml:"deadline" json:"deadline"`
	FailureThreshold string    `yaml:"failure_threshold" json:"failure_threshold"`
}

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses "5s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the string form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalJSON parses "5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("duration must be a string like \"10m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the string form.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// Defaults.
var (
	DefaultWaves = []float64{1, 10, 50, 100}
)

const (
	DefaultListen        = ":2000"
	DefaultMaxBody       = 1 << 20
	DefaultSoak          = 10 * time.Minute
	DefaultDeadline      = 15 * time.Minute
	DefaultEvaluateEvery = 5 * time.Second
	DefaultStaleAfter    = 15 * time.Minute
	DefaultHealthTimeout = 30
)

// Load reads, defaults and validates a file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes strictly, fills defaults and validates.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultListen
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = DefaultMaxBody
	}
	if c.HTTP.ReadTimeout == 0 {
		c.HTTP.ReadTimeout = Duration(30 * time.Second)
	}
	if c.HTTP.WriteTimeout == 0 {
		c.HTTP.WriteTimeout = Duration(30 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.MySQL.MaxOpenConns == 0 {
		c.MySQL.MaxOpenConns = 10
	}
	if c.Inventory.StaleAfter == 0 {
		c.Inventory.StaleAfter = Duration(DefaultStaleAfter)
	}
	if len(c.Rollout.Waves) == 0 {
		c.Rollout.Waves = append([]float64(nil), DefaultWaves...)
	}
	if c.Rollout.Soak == 0 {
		c.Rollout.Soak = Duration(DefaultSoak)
	}
	if c.Rollout.Deadline == 0 {
		c.Rollout.Deadline = Duration(DefaultDeadline)
	}
	if c.Rollout.EvaluateEvery == 0 {
		c.Rollout.EvaluateEvery = Duration(DefaultEvaluateEvery)
	}
	for i := range c.Agents {
		a := &c.Agents[i]
		if a.Default.Cmd == "" {
			a.Default.Cmd = "start"
		}
		if a.Default.Health != nil && a.Default.Health.Timeout == 0 {
			a.Default.Health.Timeout = DefaultHealthTimeout
		}
		for j := range a.Others {
			if h := a.Others[j].Health; h != nil && h.Timeout == 0 {
				h.Timeout = DefaultHealthTimeout
			}
		}
	}
	for i := range c.Rollouts {
		c.FillRollout(&c.Rollouts[i])
	}
}

// FillRollout fills a rollout's empty fields from the defaults and the
// agent's default version (From).
func (c *Config) FillRollout(r *RolloutSpec) {
	if len(r.Waves) == 0 {
		r.Waves = append([]float64(nil), c.Rollout.Waves...)
	}
	if r.Soak == 0 {
		r.Soak = c.Rollout.Soak
	}
	if r.Deadline == 0 {
		r.Deadline = c.Rollout.Deadline
	}
	if r.FailureThreshold == "" {
		r.FailureThreshold = c.Rollout.FailureThreshold
	}
	if r.From == "" {
		if a := c.Agent(r.Agent); a != nil {
			r.From = a.Default.Version
		}
	}
}

// Agent returns the named agent or nil.
func (c *Config) Agent(name string) *Agent {
	for i := range c.Agents {
		if c.Agents[i].Default.Name == name {
			return &c.Agents[i]
		}
	}
	return nil
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidID reports whether s is a valid rollout id.
func ValidID(s string) bool { return idRe.MatchString(s) }

// Validate checks everything; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.HTTP.MaxBodyBytes < 1024 {
		add("http.max_body_bytes: %d is below 1024", c.HTTP.MaxBodyBytes)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: %q is not debug|info|warn|error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format: %q is not text|json", c.Log.Format)
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
		if err := checkURL(c.PublicURL); err != nil {
			add("public_url: %v", err)
		}
	}
	if c.Inventory.StaleAfter < 0 {
		add("inventory.stale_after: negative")
	}
	if c.Rollout.EvaluateEvery <= 0 {
		add("rollout.evaluate_every: must be positive")
	}
	if err := checkRolloutParams("rollout", c.Rollout.Waves, c.Rollout.Soak, c.Rollout.Deadline, c.Rollout.FailureThreshold); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i := range c.Agents {
		a := &c.Agents[i]
		p := fmt.Sprintf("agents[%d]", i)
		if !sign.ValidName(a.Default.Name) {
			add("%s.default.name: %q is not a valid agent name ([A-Za-z0-9._-], up to 128)", p, a.Default.Name)
		} else if seen[a.Default.Name] {
			add("%s.default.name: agent %q appears twice", p, a.Default.Name)
		}
		seen[a.Default.Name] = true
		if err := c.checkSpec(p+".default", a.Default, true); err != nil {
			errs = append(errs, err)
		}
		for j, o := range a.Others {
			q := fmt.Sprintf("%s.others[%d]", p, j)
			if o.Prefix == "" {
				add("%s.prefix: required", q)
			}
			if o.Name != "" && o.Name != a.Default.Name {
				add("%s.name: %q differs from the default's %q", q, o.Name, a.Default.Name)
			}
			if err := c.checkSpec(q, o.AgentSpec, false); err != nil {
				errs = append(errs, err)
			}
		}
		for v, vi := range a.Versions {
			q := fmt.Sprintf("%s.versions[%q]", p, v)
			if !sign.ValidVersion(v) {
				add("%s: invalid version", q)
			}
			if vi.Sha256 != "" && !sign.ValidSha256(vi.Sha256) {
				add("%s.sha256: want 64 lower-case hex characters", q)
			}
			if vi.Signature != "" && vi.Sha256 == "" {
				add("%s.signature: needs sha256", q)
			}
		}
	}
	ids := map[string]bool{}
	for i := range c.Rollouts {
		if err := c.ValidateRollout(&c.Rollouts[i]); err != nil {
			add("rollouts[%d]: %v", i, err)
			continue
		}
		if ids[c.Rollouts[i].ID] {
			add("rollouts[%d].id: %q appears twice", i, c.Rollouts[i].ID)
		}
		ids[c.Rollouts[i].ID] = true
	}
	return errors.Join(errs...)
}

func (c *Config) checkSpec(p string, s AgentSpec, isDefault bool) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if isDefault || s.Version != "" {
		if !sign.ValidVersion(s.Version) {
			add("%s.version: %q is not a valid version (starts with a digit; [A-Za-z0-9._+-])", p, s.Version)
		}
	}
	if s.Tarball == "" && isDefault && (c.ArtifactsDir == "" || c.PublicURL == "") {
		add("%s.tarball: required unless artifacts_dir and public_url are set", p)
	}
	if s.Tarball != "" {
		if err := checkURL(s.Tarball); err != nil {
			add("%s.tarball: %v", p, err)
		}
	}
	if s.Md5 != "" {
		if err := checkURL(s.Md5); err != nil {
			add("%s.md5: %v", p, err)
		}
	}
	switch s.Cmd {
	case "start", "stop":
	case "":
		if isDefault {
			add("%s.cmd: required", p)
		}
	default:
		add("%s.cmd: %q is not start|stop", p, s.Cmd)
	}
	if s.Health != nil {
		if err := checkURL(s.Health.HTTP); err != nil {
			add("%s.health.http: %v", p, err)
		}
		if s.Health.Timeout <= 0 || s.Health.Timeout > 3600 {
			add("%s.health.timeout: %d is not in 1..3600 seconds", p, s.Health.Timeout)
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// ValidateRollout checks a filled rollout spec against the config.
func (c *Config) ValidateRollout(r *RolloutSpec) error {
	if c.Agent(r.Agent) == nil {
		return fmt.Errorf("agent: %q is not configured in agents", r.Agent)
	}
	if !sign.ValidVersion(r.From) {
		return fmt.Errorf("from: %q is not a valid version", r.From)
	}
	if !sign.ValidVersion(r.To) {
		return fmt.Errorf("to: %q is not a valid version", r.To)
	}
	if r.From == r.To {
		return fmt.Errorf("to: equals from (%q)", r.To)
	}
	if !ValidID(r.ID) {
		return fmt.Errorf("id: %q is not a valid id ([A-Za-z0-9._-], up to 128)", r.ID)
	}
	return checkRolloutParams("", r.Waves, r.Soak, r.Deadline, r.FailureThreshold)
}

func checkRolloutParams(p string, waves []float64, soak, deadline Duration, threshold string) error {
	if p != "" {
		p += "."
	}
	if len(waves) == 0 || len(waves) > 20 {
		return fmt.Errorf("%swaves: want 1 to 20 cumulative percentages", p)
	}
	prev := 0.0
	for i, w := range waves {
		if math.IsNaN(w) || w <= prev || w > 100 {
			return fmt.Errorf("%swaves[%d]: %v must be above the previous wave and at most 100", p, i, w)
		}
		if math.Round(w*100) != w*100 {
			return fmt.Errorf("%swaves[%d]: %v has more than 2 decimals", p, i, w)
		}
		prev = w
	}
	if prev != 100 {
		return fmt.Errorf("%swaves: the last wave must be 100", p)
	}
	if soak < 0 {
		return fmt.Errorf("%ssoak: negative", p)
	}
	if deadline <= 0 {
		return fmt.Errorf("%sdeadline: must be positive", p)
	}
	if _, _, err := ParseThreshold(threshold); err != nil {
		return fmt.Errorf("%sfailure_threshold: %w", p, err)
	}
	return nil
}

// ParseThreshold parses "" (the default rule), "N" (hosts) or "P%" (of the
// wave, rounded up, at least 1).
func ParseThreshold(s string) (count int, percent float64, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 {
			return 0, 0, fmt.Errorf("%q: want a percentage in (0, 100]", s)
		}
		return 0, v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, 0, fmt.Errorf("%q: want a host count >= 1 or a percentage like \"5%%\"", s)
	}
	return n, 0, nil
}
