package desired

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
)

// Options are what Compile needs to know of the rest of the config.
type Options struct {
	// ServesArtifacts is true when ops-meta serves the artifacts itself
	// (artifacts_dir and public_url set): an agent's tarball may then be
	// omitted.
	ServesArtifacts bool
}

// Set is a compiled, valid desired state. It is never changed after
// Compile: the slices and agents it returns are shared, read them only.
type Set struct {
	opts     Options
	defaults Defaults
	agents   []Agent
	byName   map[string]*Agent
	rollouts []RolloutSpec
}

// Compile fills f's defaults (in a copy: f is not changed), checks every
// field and indexes the agents. The error joins one error per bad field,
// each naming it as written in the file ("agents[0].default.version: ...").
func Compile(f File, o Options) (*Set, error) {
	s := &Set{opts: o, defaults: f.Rollout, byName: map[string]*Agent{}}
	s.defaults.Waves = append([]float64(nil), f.Rollout.Waves...)
	fillDefaults(&s.defaults)
	s.agents = make([]Agent, len(f.Agents))
	for i, a := range f.Agents {
		s.agents[i] = copyAgent(a)
	}
	var errs []error
	if err := s.checkDefaults(); err != nil {
		errs = append(errs, err)
	}
	for i := range s.agents {
		a := &s.agents[i]
		if err := s.checkAgent(fmt.Sprintf("agents[%d]", i), a); err != nil {
			errs = append(errs, err)
		}
		if _, dup := s.byName[a.Default.Name]; !dup {
			s.byName[a.Default.Name] = a
		}
	}
	ids := map[string]bool{}
	for i, r := range f.Rollouts {
		r.Waves = append([]float64(nil), r.Waves...)
		s.FillRollout(&r)
		if err := s.ValidateRollout(&r); err != nil {
			errs = append(errs, fmt.Errorf("rollouts[%d]: %w", i, err))
			continue
		}
		if ids[r.ID] {
			errs = append(errs, fmt.Errorf("rollouts[%d].id: %q appears twice", i, r.ID))
		}
		ids[r.ID] = true
		s.rollouts = append(s.rollouts, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Defaults returns the rollout defaults, filled.
func (s *Set) Defaults() Defaults { return s.defaults }

// Agents returns the configured agents in file order.
func (s *Set) Agents() []Agent { return s.agents }

// Agent returns the named agent or nil.
func (s *Set) Agent(name string) *Agent { return s.byName[name] }

// Rollouts returns the file's rollouts, filled and valid.
func (s *Set) Rollouts() []RolloutSpec { return s.rollouts }

func fillDefaults(d *Defaults) {
	if len(d.Waves) == 0 {
		d.Waves = append([]float64(nil), DefaultWaves...)
	}
	if d.Soak == 0 {
		d.Soak = DefaultSoak
	}
	if d.Deadline == 0 {
		d.Deadline = DefaultDeadline
	}
	if d.EvaluateEvery == 0 {
		d.EvaluateEvery = DefaultEvaluateEvery
	}
}

// copyAgent copies what Compile fills in (cmd, health timeouts), so the
// caller's File stays as it was.
func copyAgent(a Agent) Agent {
	a.Others = append([]Override(nil), a.Others...)
	if a.Default.Cmd == "" {
		a.Default.Cmd = CmdStart
	}
	a.Default.Health = copyHealth(a.Default.Health)
	for j := range a.Others {
		a.Others[j].Health = copyHealth(a.Others[j].Health)
	}
	return a
}

func copyHealth(h *Health) *Health {
	if h == nil {
		return nil
	}
	c := *h
	if c.Timeout == 0 {
		c.Timeout = DefaultHealthTimeout
	}
	return &c
}

func (s *Set) checkDefaults() error {
	var errs []error
	if s.defaults.EvaluateEvery <= 0 {
		errs = append(errs, errors.New("rollout.evaluate_every: must be positive"))
	}
	if err := checkRolloutParams("rollout", s.defaults.Waves, s.defaults.Soak, s.defaults.Deadline, s.defaults.FailureThreshold); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Set) checkAgent(p string, a *Agent) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !sign.ValidName(a.Default.Name) {
		add("%s.default.name: %q is not a valid agent name ([A-Za-z0-9._-], up to 128)", p, a.Default.Name)
	} else if _, dup := s.byName[a.Default.Name]; dup {
		add("%s.default.name: agent %q appears twice", p, a.Default.Name)
	}
	if err := s.checkSpec(p+".default", a.Default, true); err != nil {
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
		if err := s.checkSpec(q, o.AgentSpec, false); err != nil {
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
	return errors.Join(errs...)
}

func (s *Set) checkSpec(p string, sp AgentSpec, isDefault bool) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if isDefault || sp.Version != "" {
		if !sign.ValidVersion(sp.Version) {
			add("%s.version: %q is not a valid version (starts with a digit; [A-Za-z0-9._+-])", p, sp.Version)
		}
	}
	if sp.Tarball == "" && isDefault && !s.opts.ServesArtifacts {
		add("%s.tarball: required unless artifacts_dir and public_url are set", p)
	}
	if sp.Tarball != "" {
		if err := CheckURL(sp.Tarball); err != nil {
			add("%s.tarball: %v", p, err)
		}
	}
	if sp.Md5 != "" {
		if err := CheckURL(sp.Md5); err != nil {
			add("%s.md5: %v", p, err)
		}
	}
	switch sp.Cmd {
	case CmdStart, CmdStop:
	case "":
		if isDefault {
			add("%s.cmd: required", p)
		}
	default:
		add("%s.cmd: %q is not start|stop", p, sp.Cmd)
	}
	if sp.Health != nil {
		if err := CheckURL(sp.Health.HTTP); err != nil {
			add("%s.health.http: %v", p, err)
		}
		if sp.Health.Timeout <= 0 || sp.Health.Timeout > 3600 {
			add("%s.health.timeout: %d is not in 1..3600 seconds", p, sp.Health.Timeout)
		}
	}
	return errors.Join(errs...)
}

// CheckURL accepts an absolute http(s) URL.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
