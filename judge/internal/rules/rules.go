// Package rules loads the judge's strategies and expressions from YAML,
// validates them, indexes them by metric, and evaluates Open-Falcon's
// functions (see funcs.go).
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync/atomic"

	"github.com/kestrel-mon/kestrel/proto"
	"go.yaml.in/yaml/v3"
)

// File is the YAML rules file.
type File struct {
	Strategies  []StrategySpec   `yaml:"strategies" json:"strategies"`
	Expressions []ExpressionSpec `yaml:"expressions" json:"expressions"`
}

// StrategySpec is one strategy as written in YAML.
type StrategySpec struct {
	ID           int               `yaml:"id" json:"id"`
	Endpoints    []string          `yaml:"endpoints" json:"endpoints"`
	AllEndpoints bool              `yaml:"allEndpoints" json:"allEndpoints"`
	Metric       string            `yaml:"metric" json:"metric"`
	Tags         map[string]string `yaml:"tags" json:"tags"`
	Func         string            `yaml:"func" json:"func"`
	Operator     string            `yaml:"operator" json:"operator"`
	RightValue   float64           `yaml:"rightValue" json:"rightValue"`
	MaxStep      int               `yaml:"maxStep" json:"maxStep"`
	Priority     int               `yaml:"priority" json:"priority"`
	Note         string            `yaml:"note" json:"note"`
	Tpl          *TemplateSpec     `yaml:"tpl" json:"tpl"`
}

// TemplateSpec is the optional template of a strategy.
type TemplateSpec struct {
	ID       int    `yaml:"id" json:"id"`
	Name     string `yaml:"name" json:"name"`
	ParentID int    `yaml:"parentId" json:"parentId"`
	ActionID int    `yaml:"actionId" json:"actionId"`
	Creator  string `yaml:"creator" json:"creator"`
}

// ExpressionSpec is one expression as written in YAML.
type ExpressionSpec struct {
	ID         int               `yaml:"id" json:"id"`
	Metric     string            `yaml:"metric" json:"metric"`
	Tags       map[string]string `yaml:"tags" json:"tags"`
	Func       string            `yaml:"func" json:"func"`
	Operator   string            `yaml:"operator" json:"operator"`
	RightValue float64           `yaml:"rightValue" json:"rightValue"`
	MaxStep    int               `yaml:"maxStep" json:"maxStep"`
	Priority   int               `yaml:"priority" json:"priority"`
	Note       string            `yaml:"note" json:"note"`
	ActionID   int               `yaml:"actionId" json:"actionId"`
}

// RuleKind tells strategies from expressions.
type RuleKind uint8

// Rule kinds.
const (
	Strategy RuleKind = iota + 1
	Expression
)

// Rule is one compiled strategy or expression.
type Rule struct {
	Kind     RuleKind
	ID       int
	Metric   string
	MaxStep  int
	Priority int
	Fn       Func

	endpoints    map[string]struct{} // strategy: listed endpoints
	allEndpoints bool
	tags         []proto.Tag // sorted; must all be in the point's tags
	endpointSel  string      // expression: the "endpoint" pseudo-tag
	hasEndpoint  bool

	// Exactly one is set; shared (read-only) by every event of the rule.
	Strategy   *proto.EventStrategy
	Expression *proto.EventExpression
}

// Name returns "strategy 15" or "expression 1".
func (r *Rule) Name() string {
	if r.Kind == Strategy {
		return fmt.Sprintf("strategy %d", r.ID)
	}
	return fmt.Sprintf("expression %d", r.ID)
}

// Matches reports whether a point of endpoint with sorted tags is judged by
// the rule (its metric is assumed to match). It allocates nothing.
func (r *Rule) Matches(endpoint string, tags []proto.Tag) bool {
	if r.Kind == Strategy {
		if !r.allEndpoints {
			if _, ok := r.endpoints[endpoint]; !ok {
				return false
			}
		}
	} else if r.hasEndpoint && r.endpointSel != endpoint {
		return false
	}
	// Both lists are sorted by key: one merge pass.
	j := 0
	for _, want := range r.tags {
		for j < len(tags) && tags[j].Key < want.Key {
			j++
		}
		if j == len(tags) || tags[j].Key != want.Key || tags[j].Value != want.Value {
			return false
		}
		j++
	}
	return true
}

// Set is an immutable, validated rule set indexed by metric.
type Set struct {
	File     File // as loaded (for the /rules endpoint)
	byMetric map[string][]*Rule
	count    int
}

// ForMetric returns the rules of a metric (nil when none): one map lookup.
func (s *Set) ForMetric(metric string) []*Rule { return s.byMetric[metric] }

// Len returns the number of rules.
func (s *Set) Len() int { return s.count }

// LoadFile reads and compiles a rules file for windows of windowSize
// points.
func LoadFile(path string, windowSize int) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read rules: %w", err)
	}
	s, err := Parse(b, windowSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes strictly and compiles a rules file.
func Parse(b []byte, windowSize int) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(b, err)
	}
	return Compile(f, windowSize)
}

// Compile validates f and builds the index. Every error names its rule.
func Compile(f File, windowSize int) (*Set, error) {
	s := &Set{File: f, byMetric: map[string][]*Rule{}}
	var errs []error
	seenS, seenE := map[int]bool{}, map[int]bool{}
	for i, sp := range f.Strategies {
		name := fmt.Sprintf("strategies[%d] (id %d)", i, sp.ID)
		r, err := compileStrategy(sp, windowSize)
		if err == nil && seenS[sp.ID] {
			err = fmt.Errorf("duplicate strategy id %d", sp.ID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		seenS[sp.ID] = true
		s.add(r)
	}
	for i, ex := range f.Expressions {
		name := fmt.Sprintf("expressions[%d] (id %d)", i, ex.ID)
		r, err := compileExpression(ex, windowSize)
		if err == nil && seenE[ex.ID] {
			err = fmt.Errorf("duplicate expression id %d", ex.ID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		seenE[ex.ID] = true
		s.add(r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func (s *Set) add(r *Rule) {
	s.byMetric[r.Metric] = append(s.byMetric[r.Metric], r)
	s.count++
}

type common struct {
	id                 int
	metric, fn, op     string
	right              float64
	maxStep, priority  int
	tags               map[string]string
	allowEndpointInTag bool
}

func compileCommon(c common, windowSize int) (*Rule, error) {
	if c.id <= 0 {
		return nil, fmt.Errorf("id must be > 0")
	}
	if c.metric == "" {
		return nil, fmt.Errorf("metric is required")
	}
	if c.maxStep < 0 {
		return nil, fmt.Errorf("maxStep must be >= 0 (0 mutes the rule), got %d", c.maxStep)
	}
	if c.priority < 0 || c.priority > 6 {
		return nil, fmt.Errorf("priority must be 0..6, got %d", c.priority)
	}
	fn, err := ParseFunc(c.fn, c.op, c.right)
	if err != nil {
		return nil, err
	}
	if need := fn.Need(); need > windowSize {
		return nil, fmt.Errorf("func %q needs %d points but window.size is %d", c.fn, need, windowSize)
	}
	r := &Rule{ID: c.id, Metric: c.metric, MaxStep: c.maxStep, Priority: c.priority, Fn: fn}
	for k, v := range c.tags {
		if k == "" {
			return nil, fmt.Errorf("tags: empty tag key")
		}
		if k == "endpoint" && c.allowEndpointInTag {
			r.endpointSel, r.hasEndpoint = v, true
			continue
		}
		r.tags = append(r.tags, proto.Tag{Key: k, Value: v})
	}
	sort.Slice(r.tags, func(i, j int) bool { return r.tags[i].Key < r.tags[j].Key })
	return r, nil
}

func compileStrategy(sp StrategySpec, windowSize int) (*Rule, error) {
	r, err := compileCommon(common{id: sp.ID, metric: sp.Metric, fn: sp.Func, op: sp.Operator, right: sp.RightValue,
		maxStep: sp.MaxStep, priority: sp.Priority, tags: sp.Tags}, windowSize)
	if err != nil {
		return nil, err
	}
	switch {
	case sp.AllEndpoints && len(sp.Endpoints) > 0:
		return nil, fmt.Errorf("use either endpoints or allEndpoints, not both")
	case !sp.AllEndpoints && len(sp.Endpoints) == 0:
		return nil, fmt.Errorf("endpoints (or allEndpoints: true) is required")
	}
	r.Kind = Strategy
	r.allEndpoints = sp.AllEndpoints
	r.endpoints = make(map[string]struct{}, len(sp.Endpoints))
	for _, e := range sp.Endpoints {
		if e == "" {
			return nil, fmt.Errorf("endpoints: empty endpoint")
		}
		r.endpoints[e] = struct{}{}
	}
	es := &proto.EventStrategy{ID: sp.ID, Metric: sp.Metric, Tags: copyTags(sp.Tags), Func: sp.Func, Operator: sp.Operator,
		RightValue: sp.RightValue, MaxStep: sp.MaxStep, Priority: sp.Priority, Note: sp.Note}
	if t := sp.Tpl; t != nil {
		es.Tpl = proto.EventTemplate{ID: t.ID, Name: t.Name, ParentID: t.ParentID, ActionID: t.ActionID, Creator: t.Creator}
	}
	r.Strategy = es
	return r, nil
}

func compileExpression(ex ExpressionSpec, windowSize int) (*Rule, error) {
	r, err := compileCommon(common{id: ex.ID, metric: ex.Metric, fn: ex.Func, op: ex.Operator, right: ex.RightValue,
		maxStep: ex.MaxStep, priority: ex.Priority, tags: ex.Tags, allowEndpointInTag: true}, windowSize)
	if err != nil {
		return nil, err
	}
	r.Kind = Expression
	r.Expression = &proto.EventExpression{ID: ex.ID, Metric: ex.Metric, Tags: copyTags(ex.Tags), Func: ex.Func, Operator: ex.Operator,
		RightValue: ex.RightValue, MaxStep: ex.MaxStep, Priority: ex.Priority, Note: ex.Note, ActionID: ex.ActionID}
	return r, nil
}

func copyTags(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Holder holds the current rule set; readers never block.
type Holder struct {
	path       string
	windowSize int
	cur        atomic.Pointer[Set]
}

// NewHolder loads path; the error is the load error.
func NewHolder(path string, windowSize int) (*Holder, error) {
	h := &Holder{path: path, windowSize: windowSize}
	s, err := LoadFile(path, windowSize)
	if err != nil {
		return nil, err
	}
	h.cur.Store(s)
	return h, nil
}

// HolderOf returns a holder serving s (for tests and embedding).
func HolderOf(s *Set) *Holder {
	h := &Holder{}
	h.cur.Store(s)
	return h
}

// Get returns the current set.
func (h *Holder) Get() *Set { return h.cur.Load() }

// Reload reads the file again; on error the current set stays.
func (h *Holder) Reload() (*Set, error) {
	if h.path == "" {
		return nil, fmt.Errorf("rules holder has no file")
	}
	s, err := LoadFile(h.path, h.windowSize)
	if err != nil {
		return nil, err
	}
	h.cur.Store(s)
	return s, nil
}
