package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/config"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/kestrel-mon/kestrel/lib/testutil/redistest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A judge whose ring parameters differ from the KV bucket's neither
// heartbeats nor serves and says why on /health; once the bucket holds its
// parameters it joins.
func TestRingParamsMismatchRefusesToServe(t *testing.T) {
	ns := natstest.StartServer(t)
	rs := redistest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	cfg := config.Default()
	other := ringparams.Params{PartitionCount: 512, ReplicationFactor: 20, Load: 1.25, Hasher: "xxhash64",
		MemberTimeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold}
	if err := ringparams.Set(ctx, js, "KESTREL_RING", 1, other); err != nil {
		t.Fatal(err)
	}
	subj, _ := proto.NewSubjects("")
	beats := make(chan proto.MemberMsg, 1000)
	leaves := make(chan proto.MemberMsg, 10)
	sub, err := nc.Subscribe(subj.Members(), func(m *nats.Msg) {
		mm, err := proto.DecodeMemberMsg(m.Data)
		switch {
		case err != nil:
		case mm.Kind == proto.MemberBeat:
			beats <- mm
		case mm.Kind == proto.MemberLeave:
			leaves <- mm
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	cfg, _ = testConfig(t, ns.ClientURL(), rs.Addr, "judge-ring")
	a, stop := start(t, cfg)
	defer func() { _ = stop() }()

	health := "http://" + a.HTTPAddr() + "/health"
	wait.Until(t, "/health naming the differing ring parameters", 10*time.Second, func() error {
		code, body := httpGet(t, health)
		if code == 503 && strings.Contains(body, "partition_count") && strings.Contains(body, "512") && strings.Contains(body, "271") {
			return nil
		}
		return fmt.Errorf("/health with other ring parameters: %d %s", code, body)
	})
	select {
	case b := <-beats:
		t.Fatalf("a judge with other ring parameters heartbeats: %+v", b)
	default:
	}

	// The bucket now holds the judge's parameters: it joins and serves.
	other.PartitionCount = 271
	if err := ringparams.Set(ctx, js, "KESTREL_RING", 1, other); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-beats:
		if b.Node != "judge-ring" {
			t.Fatalf("beat from %s", b.Node)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no heartbeat after the bucket matched")
	}
	if code, body := httpGet(t, health); code != 200 || !strings.Contains(body, `"ring":"ok"`) {
		t.Fatalf("/health after the bucket matched: %d %s", code, body)
	}

	// The parameters change under the running judge: it stops serving and
	// leaves the ring (a leave, no more beats), so transfers do not keep
	// sending it series to refuse; when they match again it rejoins.
	other.PartitionCount = 512
	if err := ringparams.Set(ctx, js, "KESTREL_RING", 1, other); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-leaves:
		if l.Node != "judge-ring" {
			t.Fatalf("leave from %s", l.Node)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no leave after the bucket's parameters changed")
	}
	for len(beats) > 0 {
		<-beats
	}
	time.Sleep(300 * time.Millisecond) // 6 heartbeat intervals
	if n := len(beats); n != 0 {
		t.Fatalf("%d heartbeats after leaving for differing ring parameters", n)
	}
	other.PartitionCount = 271
	if err := ringparams.Set(ctx, js, "KESTREL_RING", 1, other); err != nil {
		t.Fatal(err)
	}
	select {
	case <-beats:
	case <-time.After(15 * time.Second):
		t.Fatal("no heartbeat after the parameters matched again")
	}
}
