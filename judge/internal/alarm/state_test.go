package alarm

import "testing"

func TestDecide(t *testing.T) {
	const min = 300
	p := func(step int, et int64) State { return State{Status: Problem, CurrentStep: step, EventTime: et} }
	cases := []struct {
		name string
		st   State
		in   Input
		want State
		fire bool
	}{
		{"first trigger", State{}, Input{Triggered: true, MaxStep: 3, OldestTS: 0, PointTS: 1000}, p(1, 1000), true},
		{"trigger after OK", State{Status: OK, CurrentStep: 1, EventTime: 500}, Input{Triggered: true, MaxStep: 3, OldestTS: 400, PointTS: 1000}, p(1, 1000), true},
		{"muted", State{}, Input{Triggered: true, MaxStep: 0, PointTS: 1000}, State{}, false},
		{"muted after OK", State{Status: OK, CurrentStep: 1, EventTime: 5}, Input{Triggered: true, MaxStep: 0, PointTS: 1000}, State{Status: OK, CurrentStep: 1, EventTime: 5}, false},
		{"repeat too soon", p(1, 1000), Input{Triggered: true, MaxStep: 3, OldestTS: 1060, PointTS: 1240}, p(1, 1000), false},
		{"repeat with stale points", p(1, 1000), Input{Triggered: true, MaxStep: 3, OldestTS: 1000, PointTS: 1400}, p(1, 1000), false},
		{"repeat", p(1, 1000), Input{Triggered: true, MaxStep: 3, OldestTS: 1060, PointTS: 1300}, p(2, 1300), true},
		{"repeat at maxStep", p(3, 1000), Input{Triggered: true, MaxStep: 3, OldestTS: 2000, PointTS: 5000}, p(3, 1000), false},
		{"recovery", p(2, 1000), Input{Triggered: false, MaxStep: 3, PointTS: 1060}, State{Status: OK, CurrentStep: 1, EventTime: 1060}, true},
		{"ok stays quiet", State{Status: OK, CurrentStep: 1, EventTime: 5}, Input{Triggered: false, PointTS: 1060}, State{Status: OK, CurrentStep: 1, EventTime: 5}, false},
		{"nothing stays quiet", State{}, Input{Triggered: false, PointTS: 1060}, State{}, false},
		{"muted rule still recovers", p(1, 1000), Input{Triggered: false, MaxStep: 0, PointTS: 1060}, State{Status: OK, CurrentStep: 1, EventTime: 1060}, true},
	}
	for _, c := range cases {
		c.in.MinInterval = min
		got, fire := Decide(c.st, c.in)
		if got != c.want || fire != c.fire {
			t.Errorf("%s: got %+v %v want %+v %v", c.name, got, fire, c.want, c.fire)
		}
	}
}
