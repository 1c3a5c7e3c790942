package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/owner"
	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/lib/ringparams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// cluster is the judge's view of the shared ring: the parameters from the
// KV bucket, the members from their messages, and the partitions this
// judge owns (owner.Tracker).
type cluster struct {
	a       *App
	want    ringparams.Params
	mem     *membership.Membership
	tracker *owner.Tracker

	mu     sync.Mutex
	ringOK error // nil once the bucket's parameters equal the config's

	owned  prometheus.Gauge
	gained prometheus.Counter
	lost   prometheus.Counter
}

func newCluster(a *App) (*cluster, error) {
	cfg := a.cfg
	rc := ring.Config{PartitionCount: cfg.Ring.PartitionCount, ReplicationFactor: cfg.Ring.ReplicationFactor, Load: cfg.Ring.Load, Hasher: cfg.Ring.Hasher}
	mem, err := membership.New(membership.Config{
		Timeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold,
		SuspectAfter: 1 << 30, // judges send no requests to judges
		Ring:         rc, Self: cfg.NodeID,
	}, a.log, membership.NewMetrics(a.reg, "kestrel_judge"))
	if err != nil {
		return nil, err
	}
	c := &cluster{
		a: a, mem: mem, tracker: owner.New(cfg.NodeID, cfg.Ownership.Settle),
		want: ringparams.Params{
			PartitionCount: rc.PartitionCount, ReplicationFactor: rc.ReplicationFactor, Load: rc.Load, Hasher: rc.Hasher,
			MemberTimeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold,
		},
		ringOK: errors.New("ring parameters not read from the KV bucket yet"),
		owned:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "kestrel_judge_partitions_owned", Help: "Ring partitions this judge owns (served once settled)."}),
		gained: prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_judge_partitions_gained_total", Help: "Partitions this judge gained (each starts a new ownership period: windows dropped, states re-read)."}),
		lost:   prometheus.NewCounter(prometheus.CounterOpts{Name: "kestrel_judge_partitions_lost_total", Help: "Partitions this judge stopped owning (ring change, lost NATS connection)."}),
	}
	a.reg.MustRegister(c.owned, c.gained, c.lost)
	return c, nil
}

// check is the /health check of the ring parameters.
func (c *cluster) check(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ringOK
}

func (c *cluster) setRingErr(err error) {
	c.mu.Lock()
	c.ringOK = err
	c.mu.Unlock()
}

// ensureParams reads (or, first, writes) the ring parameters in the KV
// bucket and waits until they equal the config's: a judge with other
// parameters computes another ring and must not serve. It returns when
// they match or ctx ends.
func (c *cluster) ensureParams(ctx context.Context, nc *nats.Conn, bucket string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	logged := ""
	for {
		stored, err := ringparams.Ensure(ctx, js, bucket, c.a.cfg.Ring.BucketReplicas, c.want)
		if err == nil {
			err = ringparams.Mismatch(stored, c.want)
			if err == nil {
				c.setRingErr(nil)
				c.a.log.Info("ring parameters match the KV bucket", "bucket", bucket, "partition_count", stored.PartitionCount,
					"replication_factor", stored.ReplicationFactor, "load", stored.Load)
				go c.watchParams(ctx, js, bucket)
				return nil
			}
			err = fmt.Errorf("config differs from %s, not serving: %w", bucket, err)
		}
		c.setRingErr(err)
		if err.Error() != logged {
			c.a.log.Error("ring parameters", "err", err)
			logged = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// watchParams stops serving when the bucket's parameters change under a
// running judge (the documented procedure stops every judge first).
func (c *cluster) watchParams(ctx context.Context, js jetstream.JetStream, bucket string) {
	err := ringparams.Watch(ctx, js, bucket, func(p ringparams.Params) {
		if merr := ringparams.Mismatch(p, c.want); merr != nil {
			err := fmt.Errorf("%s changed, not serving until restarted with matching ring.* and membership.*: %w", bucket, merr)
			c.setRingErr(err)
			c.a.log.Error("ring parameters", "err", err)
			c.suspend(owner.ParamsDiffer, "ring parameters changed")
			// Out of the ring too, or the transfers keep sending its
			// series here to be refused.
			if perr := c.a.svc.Pause(ctx); perr != nil {
				c.a.log.Warn("cannot leave the ring", "err", perr)
			}
			return
		}
		c.setRingErr(nil)
		c.resume(owner.ParamsDiffer, "ring parameters match again")
		c.a.svc.Rejoin()
	})
	if err != nil && ctx.Err() == nil {
		c.a.log.Warn("cannot watch the ring parameters, retrying", "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
			c.watchParams(ctx, js, bucket)
		}
	}
}

// follow applies every ring change to the tracker until ctx ends. Until
// the membership has heard every member (its warm-up after start or a
// reconnect) the judge owns nothing: its ring may lack members or miss an
// evict.
func (c *cluster) follow(ctx context.Context) {
	for {
		ch := c.mem.Changed()
		r := c.mem.Ring()
		now := time.Now()
		if c.mem.Ready() {
			c.record(c.tracker.Resume(owner.WarmingUp, now), "members warmed up", r.Len())
		} else {
			c.record(c.tracker.Suspend(owner.WarmingUp, now), "members warming up", r.Len())
		}
		c.record(c.tracker.Apply(r, now), "ring changed", r.Len())
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func (c *cluster) record(ch owner.Change, why string, members int) {
	c.owned.Set(float64(c.tracker.Table().Owned()))
	c.gained.Add(float64(ch.Gained))
	c.lost.Add(float64(ch.Lost))
	if ch.Gained > 0 || ch.Lost > 0 {
		c.a.log.Info("partitions changed", "why", why, "gained", ch.Gained, "lost", ch.Lost,
			"owned", c.tracker.Table().Owned(), "members", members, "settle", c.tracker.Settle())
	}
}

// suspend makes the judge own nothing for reason r until resume(r).
func (c *cluster) suspend(r owner.Reason, why string) {
	c.record(c.tracker.Suspend(r, time.Now()), why, c.mem.Ring().Len())
}

func (c *cluster) resume(r owner.Reason, why string) {
	c.record(c.tracker.Resume(r, time.Now()), why, c.mem.Ring().Len())
}
