//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/rpc/jsonrpc"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/deploy/internal/spawn"
	"github.com/kestrel-mon/kestrel/proto"
)

// Open-Falcon's client types, exactly as REFERENCE sections 1 and 3 give
// them (falcon-agent sends these with net/rpc/jsonrpc).
type falconMetricValue struct {
	Endpoint  string      `json:"endpoint"`
	Metric    string      `json:"metric"`
	Value     interface{} `json:"value"`
	Step      int64       `json:"step"`
	Type      string      `json:"counterType"`
	Tags      string      `json:"tags"`
	Timestamp int64       `json:"timestamp"`
}

type falconTransferResponse struct {
	Message string
	Total   int
	Invalid int
	Latency int64
}

const ingestRules = `strategies:
  - id: 21
    allEndpoints: true
    metric: door.value
    func: "all(#2)"
    operator: ">"
    rightValue: 90
    maxStep: 3
    priority: 1
    note: door test
`

// Every client door of the transfer, used as its real clients use it: a
// net/rpc/jsonrpc client with Open-Falcon's types (Transfer.Update, and a
// request with an invalid item), HTTP POST /api/push, telnet update
// lines, OpenTSDB put lines and HTTP /api/put on the same port. The points
// of each reach a judge and raise an alarm.
func TestClientDoors(t *testing.T) {
	ports := make([]int, 3)
	for i := range ports {
		p, err := spawn.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	rpcAddr, telnetAddr, tsdbAddr := spawn.LocalAddr(ports[0]), spawn.LocalAddr(ports[1]), spawn.LocalAddr(ports[2])
	c := startCluster(t, clusterSpec{transfers: 1, judges: 1, rules: ingestRules, transferYAML: fmt.Sprintf(`ingest:
  jsonrpc: {enabled: true, listen: %q}
  http_push: {enabled: true}
  telnet: {enabled: true, listen: %q}
  opentsdb: {enabled: true, listen: %q}
`, rpcAddr, telnetAddr, tsdbAddr)})
	c.waitJudgesInRings(t)
	base := proto.AlignTimestamp(time.Now().Unix(), 60) - 600
	ts := func(k int) int64 { return base + int64(k)*60 }

	// JSON-RPC, as falcon-agent calls it.
	client, err := jsonrpc.Dial("tcp", rpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var resp falconTransferResponse
	items := []*falconMetricValue{
		{Endpoint: "door-rpc", Metric: "door.value", Value: 95, Step: 60, Type: "GAUGE", Timestamp: ts(0)},
		{Endpoint: "door-rpc", Metric: "door.value", Value: "96.5", Step: 60, Type: "GAUGE", Timestamp: ts(1)},
		{Endpoint: "door-rpc", Metric: "door.value", Value: 97, Step: 60, Type: "NOPE", Timestamp: ts(2)},
	}
	if err := client.Call("Transfer.Update", items, &resp); err != nil {
		t.Fatalf("Transfer.Update: %v", err)
	}
	if resp.Message != "ok" || resp.Total != 3 || resp.Invalid != 1 {
		t.Fatalf("Transfer.Update reply %+v, want ok, Total 3, Invalid 1", resp)
	}
	var pong map[string]int
	if err := client.Call("Transfer.Ping", struct{}{}, &pong); err != nil || pong["code"] != 0 {
		t.Fatalf("Transfer.Ping: %v %v", pong, err)
	}

	// HTTP /api/push on the transfer's HTTP port.
	body := "[" + mv("door-push", "door.value", "", 95, ts(0)) + "," + mv("door-push", "door.value", "", 99, ts(1)) + "]"
	r, err := http.Post("http://"+listenOf(t, c, c.transfers[0])+"/api/push", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("/api/push: %s", r.Status)
	}

	// Telnet update lines.
	tc, err := net.Dial("tcp", telnetAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "update door-telnet door.value %d 95 GAUGE 60\nupdate door-telnet door.value %d 98 GAUGE 60\n", ts(0), ts(1))

	// OpenTSDB put lines (millisecond timestamps, endpoint from the host tag).
	oc, err := net.Dial("tcp", tsdbAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(oc, "put door.value %d 95 host=door-tsdb dc=eu\nput door.value %d 97 host=door-tsdb dc=eu\n", ts(0)*1000, ts(1)*1000)
	// And HTTP /api/put on the same port.
	put := fmt.Sprintf(`[{"metric":"door.value","timestamp":%d,"value":95,"tags":{"endpoint":"door-tsdbhttp"}},`+
		`{"metric":"door.value","timestamp":%d,"value":"99","tags":{"endpoint":"door-tsdbhttp"}}]`, ts(0), ts(1))
	r, err = http.Post("http://"+tsdbAddr+"/api/put", "application/json", strings.NewReader(put))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("/api/put: %s", r.Status)
	}

	want := map[string]string{
		"door-rpc":      proto.StrategyEventID(21, "door-rpc/door.value"),
		"door-push":     proto.StrategyEventID(21, "door-push/door.value"),
		"door-telnet":   proto.StrategyEventID(21, "door-telnet/door.value"),
		"door-tsdb":     proto.StrategyEventID(21, "door-tsdb/door.value/dc=eu"),
		"door-tsdbhttp": proto.StrategyEventID(21, "door-tsdbhttp/door.value"),
	}
	waitRunning(t, "a PROBLEM event from every door", 60*time.Second, func() bool {
		evs := c.listEvents(t, "event:p1")
		for _, id := range want {
			if findEvent(evs, id, "PROBLEM") == nil {
				return false
			}
		}
		return true
	}, c.judges[0], c.transfers[0])

	// The telnet sessions end as their protocols say.
	fmt.Fprintf(tc, "quit\n")
	fmt.Fprintf(oc, "version\n")
	if l, err := bufio.NewReader(oc).ReadString('\n'); err != nil || l == "" {
		t.Errorf("OpenTSDB version: %q %v", l, err)
	}
	tc.Close()
	oc.Close()
}
