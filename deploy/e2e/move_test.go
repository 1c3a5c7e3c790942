//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
)

const moveRules = `expressions:
  - id: 9
    metric: e2e.move
    tags: {}
    func: "all(#1)"
    operator: ">"
    rightValue: 50
    maxStep: 1
    priority: 4
    note: moves between judges
    actionId: 1
`

// transferSum sums a metric (no labels) over the transfers.
func (c *cluster) transferSum(t *testing.T, name string) int {
	t.Helper()
	total := 0
	for _, tr := range c.transfers {
		sc := bufio.NewScanner(strings.NewReader(get("http://" + listenOf(t, c, tr) + "/metrics")))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += int(f)
			}
		}
	}
	return total
}

// settled: at least want points acknowledged by judges, and nothing
// pending or held in any transfer, so the next step's points cannot
// overtake this step's.
func (c *cluster) settled(t *testing.T, want int) bool {
	return c.transferSum(t, "kestrel_transfer_points_forwarded_total") >= want &&
		c.transferSum(t, "kestrel_transfer_pending_points") == 0 &&
		c.transferSum(t, "kestrel_transfer_messages_held") == 0
}

type modelState struct {
	status    string
	eventTime int64
	events    int
}

// Series move back and forth between three judges under a steady load
// (judges leaving and rejoining, one killed, one evicted by an observer
// while it keeps heartbeating); every alarm ends in Redis exactly as one
// judge fed the points in order would have left it, with exactly its
// events: none missed, none twice.
func TestSeriesMovingBetweenJudges(t *testing.T) {
	c := startCluster(t, clusterSpec{transfers: 2, judges: 3, rules: moveRules})
	c.waitJudgesInRings(t)
	nc, err := nats.Connect(c.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	incarnations := map[string]int64{}
	var incMu = make(chan struct{}, 1)
	incMu <- struct{}{}
	sub, err := nc.Subscribe("kestrel.judge.members", func(m *nats.Msg) {
		mm, err := proto.DecodeMemberMsg(m.Data)
		if err == nil && mm.Kind == proto.MemberBeat {
			<-incMu
			incarnations[mm.Node] = mm.Incarnation
			incMu <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	const nSeries, steps = 300, 44
	rng := rand.New(rand.NewPCG(7, 11))
	base := proto.AlignTimestamp(time.Now().Unix(), 60) - 60*steps
	model := make([]modelState, nSeries)
	bad := make([]bool, nSeries)
	pushed := 0
	for step := 0; step < steps; step++ {
		switch step {
		case 5:
			t.Log("SIGTERM judge 1 (leave)")
			syscall.Kill(c.judges[1].Pid(), syscall.SIGTERM)
		case 9:
			c.restartJudge(1)
		case 14:
			t.Log("SIGKILL judge 2")
			syscall.Kill(c.judges[2].Pid(), syscall.SIGKILL)
		case 19:
			c.restartJudge(2)
		case 24, 32:
			<-incMu
			inc := incarnations["e2e-judge-0"]
			incMu <- struct{}{}
			t.Logf("evict judge 0 (incarnation %d) while it keeps heartbeating", inc)
			ev := proto.MemberMsg{Node: "e2e-judge-0", Kind: proto.MemberEvict, Incarnation: inc, By: "e2e-test", Reason: "suspect"}
			if err := nc.Publish("kestrel.judge.members", ev.Encode()); err != nil {
				t.Fatal(err)
			}
		case 28:
			t.Log("SIGTERM judge 1 again")
			syscall.Kill(c.judges[1].Pid(), syscall.SIGTERM)
		case 30:
			c.restartJudge(1)
		}
		ts := base + int64(step)*60
		var items []string
		for s := 0; s < nSeries; s++ {
			if rng.IntN(3) == 0 { // flap about a third of the time
				bad[s] = !bad[s]
			}
			v := 10.0
			if bad[s] {
				v = 90
			}
			items = append(items, mv(fmt.Sprintf("move-host-%03d", s), "e2e.move", "", v, ts))
			m := &model[s]
			switch {
			case bad[s] && m.status != "PROBLEM":
				*m = modelState{status: "PROBLEM", eventTime: ts, events: m.events + 1}
			case !bad[s] && m.status == "PROBLEM":
				*m = modelState{status: "OK", eventTime: ts, events: m.events + 1}
			}
			if len(items) == 100 {
				c.push("[" + strings.Join(items, ",") + "]")
				items = items[:0]
			}
		}
		pushed += nSeries
		want := pushed
		waitRunning(t, fmt.Sprintf("step %d: %d points judged", step, want), 90*time.Second, func() bool {
			return c.settled(t, want)
		}, c.transfers...)
	}

	// Compare Redis with the model.
	events := map[string]int{}
	type evKey struct {
		id, status string
		et         float64
	}
	seen := map[evKey]int{}
	for _, s := range c.streamEvents(t) {
		id, _ := s.event["id"].(string)
		st, _ := s.event["status"].(string)
		et, _ := s.event["eventTime"].(float64)
		events[id]++
		seen[evKey{id, st, et}]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("event %+v written %d times", k, n)
		}
	}
	wrong := 0
	for s := 0; s < nSeries; s++ {
		id := proto.ExpressionEventID(9, proto.SeriesKey(fmt.Sprintf("move-host-%03d", s), "e2e.move", nil))
		h, err := c.rdb.HGetAll(context.Background(), "kestrel:alarm:"+id).Result()
		if err != nil {
			t.Fatal(err)
		}
		m := model[s]
		got := fmt.Sprintf("%s@%s step %s, %d events", h["status"], h["eventTime"], h["currentStep"], events[id])
		want := fmt.Sprintf("%s@%d step 1, %d events", m.status, m.eventTime, m.events)
		if m.status == "" {
			want = fmt.Sprintf("@ step , %d events", m.events)
		}
		if got != want {
			wrong++
			if wrong <= 10 {
				t.Errorf("series %d: got %s, want %s (one judge, in order)", s, got, want)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d series differ from in-order judging", wrong, nSeries)
	}
}
