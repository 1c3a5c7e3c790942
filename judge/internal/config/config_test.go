package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/proto"
)

func TestExampleLoads(t *testing.T) {
	c, err := Load("../../kestrel-judge.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.HTTP.Listen != ":6081" || c.Window.Size != 11 || c.Window.IdleEvict.D() != 24*time.Hour ||
		c.Alarm.MinInterval.D() != 300*time.Second || c.Alarm.EventListFormat != "event:p%d" ||
		c.Alarm.StreamMaxLen != 100000 || c.HeartbeatInterval.D() != time.Second || c.Redis.Addr != d.Redis.Addr ||
		c.Ring != d.Ring || c.Membership != d.Membership || c.Ownership != d.Ownership {
		t.Fatalf("example differs from defaults: %+v", c)
	}
	if err := proto.ValidateNodeID(c.NodeID); err != nil || !strings.HasSuffix(c.NodeID, "-6081") {
		t.Fatalf("default node id %q: %v", c.NodeID, err)
	}
}

func TestDefaultNodeID(t *testing.T) {
	h, _ := os.Hostname()
	want := proto.SubjectToken(h) + "-7000"
	if got := DefaultNodeID("127.0.0.1:7000"); got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestBadConfigs(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"rules_file: r.yaml\nbogus: 1\n", "field bogus not found"},
		{"", "rules_file: required"},
		{"rules_file: r\nnode_id: members\n", "node_id:"},
		{"rules_file: r\nnode_id: a.b\n", "node_id:"},
		{"rules_file: r\nwindow: {size: 0}\n", "window.size"},
		{"rules_file: r\nwindow: {idle_evict: 5}\n", "not a duration"},
		{"rules_file: r\nalarm: {event_list_format: \"events\"}\n", "alarm.event_list_format"},
		{"rules_file: r\nalarm: {event_list_len: -1}\n", "alarm.event_list_len"},
		{"rules_file: r\nredis: {addr: nope}\n", "redis.addr"},
		{"rules_file: r\nredis: {tls: {cert_file: a}}\n", "redis.tls"},
		{"rules_file: r\nnats: {urls: []}\n", "nats.urls"},
		{"rules_file: r\nnats: {token: a, user: b}\n", "only one of"},
		{"rules_file: r\nlog: {level: loud}\n", "log.level"},
		{"rules_file: r\nheartbeat_interval: 0s\n", "heartbeat_interval"},
		{"rules_file: r\nring: {partition_count: 0}\n", "ring.partition_count"},
		{"rules_file: r\nring: {load: 1}\n", "ring.load"},
		{"rules_file: r\nring: {hasher: md5}\n", "ring.hasher"},
		{"rules_file: r\nring: {bucket_replicas: 7}\n", "ring.bucket_replicas"},
		{"rules_file: r\nmembership: {timeout: 1s}\n", "membership.timeout: must be longer than heartbeat_interval"},
		{"rules_file: r\nmembership: {rejoin_hold: -1s}\n", "membership.rejoin_hold"},
		{"rules_file: r\nownership: {settle: 500ms}\n", "ownership.settle: must be at least heartbeat_interval"},
	}
	for _, c := range cases {
		_, err := Parse("judge.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "judge.yaml") {
			t.Errorf("%q: got %v, want error naming judge.yaml and %q", c.yaml, err, c.want)
		}
	}
}
