// Package alarm holds Open-Falcon's alarm state machine (Decide) and the
// Redis store that writes a transition as one compare-and-set Lua script.
package alarm

import "github.com/kestrel-mon/kestrel/proto"

// Status of an alarm id.
type Status uint8

// Statuses. None means no state is stored.
const (
	None Status = iota
	OK
	Problem
)

// String returns the Redis/event form ("" for None).
func (s Status) String() string {
	switch s {
	case OK:
		return proto.StatusOK
	case Problem:
		return proto.StatusProblem
	}
	return ""
}

// ParseStatus parses the stored status; unknown strings give None, false.
func ParseStatus(s string) (Status, bool) {
	switch s {
	case proto.StatusOK:
		return OK, true
	case proto.StatusProblem:
		return Problem, true
	case "":
		return None, true
	}
	return None, false
}

// State is the stored state of one alarm id.
type State struct {
	Status      Status
	CurrentStep int
	EventTime   int64 // point time of the last event
	// Unreadable is set when the stored state cannot be read (a
	// hand-edited status, a number that does not parse, a key of another
	// type): the judge decides as if there were no state, and the next
	// transition overwrites exactly what is stored (compare-and-set on
	// the raw values), so one bad key never stalls the pipeline.
	Unreadable string
}

// Input is what one evaluation of a rule over a series gives.
type Input struct {
	Triggered   bool
	MaxStep     int
	OldestTS    int64 // timestamp of the oldest point the function used
	PointTS     int64 // the (aligned) timestamp of the point being judged
	MinInterval int64 // seconds, compared with point time
}

// Decide applies Open-Falcon's rules (REFERENCE section 5) and returns the
// next state and whether an event is sent.
//
//   - triggered, no state or OK: PROBLEM with currentStep 1, unless maxStep
//     is 0 (muted: nothing happens).
//   - triggered, PROBLEM: again with currentStep+1 only when currentStep <
//     maxStep, the oldest point used is newer than the last eventTime and
//     pointTS >= eventTime + minInterval.
//   - not triggered, PROBLEM: OK with currentStep 1.
func Decide(st State, in Input) (State, bool) {
	if !in.Triggered {
		if st.Status == Problem {
			return State{Status: OK, CurrentStep: 1, EventTime: in.PointTS}, true
		}
		return st, false
	}
	if st.Status != Problem {
		if in.MaxStep == 0 {
			return st, false
		}
		return State{Status: Problem, CurrentStep: 1, EventTime: in.PointTS}, true
	}
	if st.CurrentStep >= in.MaxStep {
		return st, false
	}
	if in.OldestTS <= st.EventTime {
		return st, false
	}
	if in.PointTS-st.EventTime < in.MinInterval {
		return st, false
	}
	return State{Status: Problem, CurrentStep: st.CurrentStep + 1, EventTime: in.PointTS}, true
}
