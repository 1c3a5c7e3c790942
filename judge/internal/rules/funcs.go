package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Op is a comparison operator.
type Op uint8

// Operators (Open-Falcon's checkIsTriggered).
const (
	OpEq Op = iota + 1 // "==" or "=": |l-r| < 0.0001
	OpNe               // "!=": |l-r| > 0.0001
	OpLt
	OpLe
	OpGt
	OpGe
)

// ParseOp parses an operator.
func ParseOp(s string) (Op, error) {
	switch s {
	case "==", "=":
		return OpEq, nil
	case "!=":
		return OpNe, nil
	case "<":
		return OpLt, nil
	case "<=":
		return OpLe, nil
	case ">":
		return OpGt, nil
	case ">=":
		return OpGe, nil
	}
	return 0, fmt.Errorf("unknown operator %q (want one of == = != < <= > >=)", s)
}

// Check reports whether "l op r" holds.
func (o Op) Check(l, r float64) bool {
	switch o {
	case OpEq:
		return math.Abs(l-r) < 0.0001
	case OpNe:
		return math.Abs(l-r) > 0.0001
	case OpLt:
		return l < r
	case OpLe:
		return l <= r
	case OpGt:
		return l > r
	case OpGe:
		return l >= r
	}
	return false
}

// Kind is a function name.
type Kind uint8

// Functions.
const (
	FuncAll Kind = iota + 1
	FuncMax
	FuncMin
	FuncSum
	FuncAvg
	FuncDiff
	FuncPDiff
	FuncLookup
	FuncStdDev
	FuncKDiff
	FuncKPDiff
)

var funcNames = map[string]Kind{
	"all": FuncAll, "max": FuncMax, "min": FuncMin, "sum": FuncSum, "avg": FuncAvg,
	"diff": FuncDiff, "pdiff": FuncPDiff, "lookup": FuncLookup, "stddev": FuncStdDev,
	"kdiff": FuncKDiff, "kpdiff": FuncKPDiff,
}

// Func is a parsed rule function with its operator and threshold.
type Func struct {
	Kind  Kind
	N     int // points (the "#N", or the N of lookup/kdiff "#M,N")
	M     int // lookup: how many of the N must match; kdiff/kpdiff: the older points
	Op    Op
	Right float64
}

// ParseFunc parses "name(#N)" or "name(#M,N)" (spaces ignored).
func ParseFunc(expr, op string, right float64) (Func, error) {
	s := strings.ReplaceAll(expr, " ", "")
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") || !strings.HasPrefix(s[open+1:], "#") {
		return Func{}, fmt.Errorf("func %q: want name(#N) or name(#M,N)", expr)
	}
	kind, ok := funcNames[s[:open]]
	if !ok {
		return Func{}, fmt.Errorf("func %q: unknown function %q (want all max min sum avg diff pdiff lookup stddev kdiff kpdiff)", expr, s[:open])
	}
	args := strings.Split(s[open+2:len(s)-1], ",")
	nums := make([]int, len(args))
	for i, a := range args {
		v, err := strconv.Atoi(a)
		if err != nil {
			return Func{}, fmt.Errorf("func %q: %q is not an integer", expr, a)
		}
		if v <= 0 {
			return Func{}, fmt.Errorf("func %q: counts must be > 0, got %d", expr, v)
		}
		if v > 1<<20 {
			return Func{}, fmt.Errorf("func %q: count %d is too large", expr, v)
		}
		nums[i] = v
	}
	f := Func{Kind: kind, Right: right}
	two := kind == FuncLookup || kind == FuncKDiff || kind == FuncKPDiff
	switch {
	case two && len(nums) != 2:
		return Func{}, fmt.Errorf("func %q: %s takes (#M,N)", expr, s[:open])
	case !two && len(nums) != 1:
		return Func{}, fmt.Errorf("func %q: %s takes (#N)", expr, s[:open])
	case two:
		f.M, f.N = nums[0], nums[1]
		if kind == FuncLookup && f.M > f.N {
			return Func{}, fmt.Errorf("func %q: lookup needs M <= N, got M=%d N=%d", expr, f.M, f.N)
		}
	default:
		f.N = nums[0]
	}
	if kind == FuncStdDev {
		// Open-Falcon writes stddev as "stddev(#N) = 3": the operator is ignored.
		f.Op = OpEq
		if op != "" {
			if _, err := ParseOp(op); err != nil {
				return Func{}, err
			}
		}
		return f, nil
	}
	o, err := ParseOp(op)
	if err != nil {
		return Func{}, err
	}
	f.Op = o
	return f, nil
}

// Need returns how many points (values seen by the function, i.e. rates
// for a COUNTER/DERIVE series) the function needs.
func (f *Func) Need() int {
	switch f.Kind {
	case FuncDiff, FuncPDiff:
		return f.N + 1
	case FuncKDiff, FuncKPDiff:
		return f.N + f.M
	}
	return f.N
}

// Result is the outcome of one evaluation.
type Result struct {
	Left      float64 // Open-Falcon's leftValue
	Triggered bool
	Used      int // points used: vals[Used-1] is the oldest one
}

// Eval runs the function over vals, newest first. ok is false when there
// are too few points (the rule is not evaluated).
func (f *Func) Eval(vals []float64) (res Result, ok bool) {
	need := f.Need()
	if len(vals) < need {
		return Result{}, false
	}
	res.Used = need
	op, r := f.Op, f.Right
	switch f.Kind {
	case FuncAll:
		res.Triggered = true
		for i := 0; i < f.N; i++ {
			if !op.Check(vals[i], r) {
				res.Triggered = false
				break
			}
		}
		res.Left = vals[0]
	case FuncMax:
		m := vals[0]
		for _, v := range vals[1:f.N] {
			m = max(m, v)
		}
		res.Left, res.Triggered = m, op.Check(m, r)
	case FuncMin:
		m := vals[0]
		for _, v := range vals[1:f.N] {
			m = min(m, v)
		}
		res.Left, res.Triggered = m, op.Check(m, r)
	case FuncSum, FuncAvg:
		s := 0.0
		for _, v := range vals[:f.N] {
			s += v
		}
		if f.Kind == FuncAvg {
			s /= float64(f.N)
		}
		res.Left, res.Triggered = s, op.Check(s, r)
	case FuncDiff:
		first := vals[0]
		for i := 1; i <= f.N; i++ {
			res.Left = first - vals[i]
			if op.Check(res.Left, r) {
				res.Triggered = true
				break
			}
		}
	case FuncPDiff:
		first := vals[0]
		for i := 1; i <= f.N; i++ {
			if vals[i] == 0 {
				continue
			}
			res.Left = (first - vals[i]) / vals[i] * 100
			if op.Check(res.Left, r) {
				res.Triggered = true
				break
			}
		}
	case FuncLookup:
		res.Left = vals[0]
		n := 0
		for i := 0; i < f.N; i++ {
			if op.Check(vals[i], r) {
				n++
				if n == f.M {
					res.Triggered = true
					break
				}
			}
		}
	case FuncStdDev:
		res.Left = vals[0]
		mean := 0.0
		for _, v := range vals[:f.N] {
			mean += v
		}
		mean /= float64(f.N)
		variance := 0.0
		for _, v := range vals[:f.N] {
			variance += (v - mean) * (v - mean)
		}
		sd := math.Sqrt(variance / float64(f.N))
		res.Triggered = res.Left < mean-r*sd || res.Left > mean+r*sd
	case FuncKDiff, FuncKPDiff:
		// Every one of the newest N points against every one of the M
		// points before them.
		res.Triggered = true
		for j := f.N; j < f.N+f.M; j++ {
			if vals[j] == 0 {
				res.Triggered = false
				return res, true
			}
		}
		for i := 0; i < f.N && res.Triggered; i++ {
			for j := f.N; j < f.N+f.M; j++ {
				if f.Kind == FuncKDiff {
					res.Left = vals[i] - vals[j]
				} else {
					res.Left = (vals[i] - vals[j]) / vals[j] * 100
				}
				if !op.Check(res.Left, r) {
					res.Triggered = false
					break
				}
			}
		}
	}
	return res, true
}
