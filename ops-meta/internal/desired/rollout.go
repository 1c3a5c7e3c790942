package desired

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kestrel-mon/kestrel/ops-meta/internal/sign"
)

// RolloutSpec describes a rollout, from the file's rollouts or from the
// API (JSON, durations as strings like "10m").
type RolloutSpec struct {
	ID               string        `yaml:"id" json:"id"`
	Agent            string        `yaml:"agent" json:"agent"`
	From             string        `yaml:"from" json:"from"`
	To               string        `yaml:"to" json:"to"`
	Waves            []float64     `yaml:"waves" json:"waves"`
	Soak             time.Duration `yaml:"soak" json:"soak"`
	Deadline         time.Duration `yaml:"deadline" json:"deadline"`
	FailureThreshold string        `yaml:"failure_threshold" json:"failure_threshold"`
}

// rolloutSpecFields is RolloutSpec without its JSON methods.
type rolloutSpecFields RolloutSpec

// rolloutSpecJSON is RolloutSpec on the wire: its durations shadowed by
// string forms.
type rolloutSpecJSON struct {
	*rolloutSpecFields
	Soak     json.RawMessage `json:"soak"`
	Deadline json.RawMessage `json:"deadline"`
}

// MarshalJSON writes the durations as strings ("10m0s").
func (r RolloutSpec) MarshalJSON() ([]byte, error) {
	f := rolloutSpecFields(r)
	return json.Marshal(rolloutSpecJSON{&f, durationJSON(r.Soak), durationJSON(r.Deadline)})
}

// UnmarshalJSON reads a rollout object strictly (an unknown field is an
// error), durations as strings ("10m"); an absent duration stays 0.
func (r *RolloutSpec) UnmarshalJSON(b []byte) error {
	var f rolloutSpecFields
	j := rolloutSpecJSON{rolloutSpecFields: &f}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	var err error
	if f.Soak, err = parseDurationJSON(j.Soak); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if f.Deadline, err = parseDurationJSON(j.Deadline); err != nil {
		return fmt.Errorf("deadline: %w", err)
	}
	*r = RolloutSpec(f)
	return nil
}

func durationJSON(d time.Duration) json.RawMessage {
	return json.RawMessage(strconv.Quote(d.String()))
}

func parseDurationJSON(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	s, err := strconv.Unquote(string(raw))
	if err != nil {
		return 0, fmt.Errorf("duration must be a string like \"10m\"")
	}
	return time.ParseDuration(s)
}

// FillRollout fills a rollout's empty fields from the defaults and the
// agent's default version (From).
func (s *Set) FillRollout(r *RolloutSpec) {
	if len(r.Waves) == 0 {
		r.Waves = append([]float64(nil), s.defaults.Waves...)
	}
	if r.Soak == 0 {
		r.Soak = s.defaults.Soak
	}
	if r.Deadline == 0 {
		r.Deadline = s.defaults.Deadline
	}
	if r.FailureThreshold == "" {
		r.FailureThreshold = s.defaults.FailureThreshold
	}
	if r.From == "" {
		if a := s.Agent(r.Agent); a != nil {
			r.From = a.Default.Version
		}
	}
}

// ValidateRollout checks a filled rollout spec against the set.
func (s *Set) ValidateRollout(r *RolloutSpec) error {
	if s.Agent(r.Agent) == nil {
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

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidID reports whether s is a valid rollout id.
func ValidID(s string) bool { return idRe.MatchString(s) }

func checkRolloutParams(p string, waves []float64, soak, deadline time.Duration, threshold string) error {
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
