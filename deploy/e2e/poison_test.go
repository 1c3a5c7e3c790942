//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

const poisonRules = `strategies:
  - id: 15
    allEndpoints: true
    metric: cpu.idle
    func: "all(#3)"
    operator: "<"
    rightValue: 5
    maxStep: 3
    priority: 0
    note: cpu idle too low
expressions:
  - id: 1
    metric: e2e.load
    tags: {}
    func: "all(#3)"
    operator: ">"
    rightValue: 90
    maxStep: 3
    priority: 2
    note: e2e load too high
    actionId: 7
`

// deadletter runs `kestrel-transfer deadletter <cmd>` against transfer 0.
func (c *cluster) deadletter(t *testing.T, cmd string) string {
	t.Helper()
	conf := filepath.Join(c.dir, "kestrel-transfer-0.yaml")
	out, err := exec.Command(filepath.Join(binDir, "kestrel-transfer"), "deadletter", cmd, "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("deadletter %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// Nothing stalls the pipeline: a corrupted alarm state and a point that
// fails every time (its priority's event list is not a list) arrive in the
// same batch as 20 healthy series. The healthy series and the corrupted one
// alarm; the failing point alone ends in the dead-letter stream, its
// message is acknowledged, and once the cause is fixed `deadletter replay`
// gets its alarm written.
func TestPoisonPointAndCorruptStateDoNotStall(t *testing.T) {
	c := startCluster(t, clusterSpec{transfers: 1, judges: 1, rules: poisonRules})
	c.waitJudgesInRings(t)
	ctx := context.Background()
	base := proto.AlignTimestamp(time.Now().Unix(), 60) - 600
	if err := c.rdb.Set(ctx, "event:p2", "hand-made, not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	corrupt := proto.StrategyEventID(15, "e2e-corrupt/cpu.idle")
	if err := c.rdb.HSet(ctx, "kestrel:alarm:"+corrupt, "status", "MAYBE", "currentStep", "x").Err(); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"e2e-corrupt"}
	for i := range 20 {
		hosts = append(hosts, fmt.Sprintf("e2e-host%02d", i))
	}
	var items []string
	for k, v := range []float64{1, 2, 1.5} {
		ts := base + int64(k)*60
		items = append(items, mv("e2e-poison", "e2e.load", "", 95+v, ts))
		for _, h := range hosts {
			items = append(items, mv(h, "cpu.idle", "", v, ts))
		}
	}
	c.push("[" + strings.Join(items, ",") + "]")

	waitRunning(t, "PROBLEM for every cpu.idle series, the corrupted one included", 60*time.Second, func() bool {
		evs := c.listEvents(t, "event:p0")
		for _, h := range hosts {
			if findEvent(evs, proto.StrategyEventID(15, h+"/cpu.idle"), "PROBLEM") == nil {
				return false
			}
		}
		return true
	}, c.judges[0], c.transfers[0], c.agent)
	if st := c.rdb.HGet(ctx, "kestrel:alarm:"+corrupt, "status").Val(); st != "PROBLEM" {
		t.Fatalf("corrupted state not overwritten: status %q", st)
	}
	var listed string
	waitRunning(t, "the failing point dead-lettered", 60*time.Second, func() bool {
		listed = c.deadletter(t, "list")
		return strings.Contains(listed, "listed 1 dead letters (1 points)")
	}, c.judges[0], c.transfers[0])
	for _, want := range []string{`"endpoint":"e2e-poison"`, `"metric":"e2e.load"`, "WRONGTYPE", "attempts=5", "judge=e2e-judge-0"} {
		if !strings.Contains(listed, want) {
			t.Errorf("dead letter lacks %q:\n%s", want, listed)
		}
	}
	if strings.Contains(listed, "cpu.idle") {
		t.Errorf("a healthy point was dead-lettered:\n%s", listed)
	}
	tr := "http://" + listenOf(t, c, c.transfers[0]) + "/metrics"
	waitRunning(t, "every message acknowledged", 30*time.Second, func() bool {
		return strings.Contains(get(tr), "kestrel_transfer_messages_held 0")
	}, c.transfers[0])

	// Fix the cause, replay: the expression alarm is written.
	if err := c.rdb.Del(ctx, "event:p2").Err(); err != nil {
		t.Fatal(err)
	}
	if out := c.deadletter(t, "replay"); !strings.Contains(out, "replayed 1 dead letters") {
		t.Fatalf("replay: %s", out)
	}
	exprID := proto.ExpressionEventID(1, "e2e-poison/e2e.load")
	waitRunning(t, "the replayed point's PROBLEM event", 60*time.Second, func() bool {
		return findEvent(c.listEvents(t, "event:p2"), exprID, "PROBLEM") != nil
	}, c.judges[0], c.transfers[0])
	if out := c.deadletter(t, "list"); !strings.Contains(out, "listed 0 dead letters") {
		t.Fatalf("dead letters left after replay:\n%s", out)
	}
}
