// Package desired is ops-meta's desired-state model: which version of each
// agent every host should run, and the rollouts that move a fleet from one
// version to the next. It follows the judge's rules:
//
//	File (what the config's rollout, agents and rollouts blocks say)
//	  → Compile (defaults filled, every field checked, agents indexed)
//	  → Set (immutable; the server swaps the whole config, Set included,
//	    on reload)
//
// The wave arithmetic of a running rollout is package rollout's.
package desired

import (
	"strings"
	"time"
)

// File is the desired-state part of ops-meta.yaml, as written.
type File struct {
	Rollout  Defaults      `yaml:"rollout"`
	Agents   []Agent       `yaml:"agents"`
	Rollouts []RolloutSpec `yaml:"rollouts"`
}

// Defaults are the defaults of every rollout and the evaluation loop's
// period (the `rollout:` block).
type Defaults struct {
	Waves            []float64     `yaml:"waves"`
	Soak             time.Duration `yaml:"soak"`
	Deadline         time.Duration `yaml:"deadline"`
	FailureThreshold string        `yaml:"failure_threshold"`
	EvaluateEvery    time.Duration `yaml:"evaluate_every"`
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

// Defaults of the desired state.
var DefaultWaves = []float64{1, 10, 50, 100}

const (
	DefaultSoak          = 10 * time.Minute
	DefaultDeadline      = 15 * time.Minute
	DefaultEvaluateEvery = 5 * time.Second
	DefaultHealthTimeout = 30 // seconds
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
