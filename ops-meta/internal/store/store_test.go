package store_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/testutil/mysqltest"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
)

var maria mysqltest.Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	maria.Stop()
	os.Exit(code)
}

func openMySQL(t *testing.T) *store.MySQL {
	t.Helper()
	dsn := maria.Get(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := store.OpenMySQL(ctx, dsn, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// each runs a test against both implementations.
func each(t *testing.T, f func(t *testing.T, s store.Store)) {
	t.Run("memory", func(t *testing.T) { f(t, store.NewMemory()) })
	t.Run("mysql", func(t *testing.T) { f(t, openMySQL(t)) })
}

func TestInventoryRoundTrip(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		t0 := time.Unix(1700000000, 123456789)
		h := store.Host{Name: "web-01", Addr: "10.0.0.1", LastSeen: t0, Agents: []store.Agent{
			{Name: "kestrel-agent", Version: "1.0.0", Status: "started", Timestamp: 1700000000},
			{Name: "a-plugin", Version: "2.0", Status: "stoped", Timestamp: 1700000001, Error: "health: 500 ünïcode", Pending: "2.1"},
		}}
		if err := s.RecordHeartbeat(ctx, h); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Host(ctx, "web-01")
		if err != nil || !ok {
			t.Fatalf("Host: %v %v", ok, err)
		}
		if !got.FirstSeen.Equal(t0) || !got.LastSeen.Equal(t0) || got.Addr != "10.0.0.1" {
			t.Fatalf("times/addr: %+v", got)
		}
		if len(got.Agents) != 2 || got.Agents[0].Name != "a-plugin" || got.Agents[0] != h.Agents[1] || got.Agents[1] != h.Agents[0] {
			t.Fatalf("agents: %+v", got.Agents)
		}
		// Second heartbeat replaces agents, keeps FirstSeen.
		t1 := t0.Add(time.Minute)
		h2 := store.Host{Name: "web-01", Addr: "10.0.0.2", LastSeen: t1, Agents: []store.Agent{{Name: "kestrel-agent", Version: "1.1.0", Status: "started"}}}
		if err := s.RecordHeartbeat(ctx, h2); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordHeartbeat(ctx, store.Host{Name: "Web-01", LastSeen: t1}); err != nil {
			t.Fatal(err)
		}
		hosts, err := s.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 2 || hosts[0].Name != "Web-01" || hosts[1].Name != "web-01" {
			t.Fatalf("hosts: %+v", hosts)
		}
		w := hosts[1]
		if !w.FirstSeen.Equal(t0) || !w.LastSeen.Equal(t1) || w.Addr != "10.0.0.2" || len(w.Agents) != 1 || w.Agents[0].Version != "1.1.0" {
			t.Fatalf("after second heartbeat: %+v", w)
		}
		if len(hosts[0].Agents) != 0 {
			t.Fatalf("Web-01 must have no agents: %+v", hosts[0])
		}
		if _, ok, err := s.Host(ctx, "nope"); ok || err != nil {
			t.Fatalf("unknown host: %v %v", ok, err)
		}
	})
}

func TestRolloutState(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		now := time.Unix(1700000000, 5).UTC()
		r := store.Rollout{ID: "r1", Agent: "kestrel-agent", From: "1.0.0", To: "1.1.0", Waves: []float64{1, 10, 50, 100},
			Soak: time.Second, Deadline: time.Minute, Source: "api", Status: store.Running, Wave: 1,
			WaveOpenedAt: []time.Time{now}, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateRollout(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRollout(ctx, r); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate: %v", err)
		}
		r2 := r
		r2.ID = "r0"
		if err := s.CreateRollout(ctx, r2); err != nil {
			t.Fatal(err)
		}
		got, err := s.Rollout(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "r1" || got.Wave != 1 || !got.WaveOpenedAt[0].Equal(now) || got.Soak != time.Second || len(got.Waves) != 4 {
			t.Fatalf("got %+v", got)
		}
		got.Wave = 2
		got.WaveOpenedAt = append(got.WaveOpenedAt, now.Add(time.Second))
		got.Status = store.Halted
		got.Reason = "wave 2: 1 of 1 hosts failed"
		got.Revision = 3
		if err := s.UpdateRollout(ctx, got); err != nil {
			t.Fatal(err)
		}
		all, err := s.Rollouts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].ID != "r1" || all[1].ID != "r0" {
			t.Fatalf("order: %+v", all)
		}
		if all[0].Status != store.Halted || all[0].Wave != 2 || all[0].Revision != 3 || all[0].Reason == "" || len(all[0].WaveOpenedAt) != 2 {
			t.Fatalf("updated: %+v", all[0])
		}
		if _, err := s.Rollout(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if err := s.UpdateRollout(ctx, store.Rollout{ID: "missing"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
	})
}

func TestWithLockExcludes(t *testing.T) {
	each(t, func(t *testing.T, s store.Store) {
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				err := s.WithLock(context.Background(), "test-lock", func(context.Context) error {
					n := inside.Add(1)
					if n > maxInside.Load() {
						maxInside.Store(n)
					}
					time.Sleep(20 * time.Millisecond)
					inside.Add(-1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if maxInside.Load() != 1 {
			t.Fatalf("%d holders at once", maxInside.Load())
		}
	})
}

func TestMigrations(t *testing.T) {
	dsn := maria.Get(t).NewDatabase(t)
	ctx := context.Background()
	m1, err := store.OpenMySQL(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	v, err := m1.Version(ctx)
	if err != nil || v != store.SchemaVersion() || v < 2 {
		t.Fatalf("version %d (want %d): %v", v, store.SchemaVersion(), err)
	}
	// Reopening is a no-op; a database from the future is refused.
	m2, err := store.OpenMySQL(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	m2.Close()
	var n int
	if err := m1.DB().QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_version rows %d: %v", n, err)
	}
	// A database at version 1 (before the indexes) is migrated to the
	// current version, keeping its data.
	if err := m1.RecordHeartbeat(ctx, store.Host{Name: "old-host", LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`DROP INDEX hosts_last_seen ON hosts`, `DROP INDEX rollouts_agent ON rollouts`, `UPDATE schema_version SET version = 1`} {
		if _, err := m1.DB().Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	m3, err := store.OpenMySQL(ctx, dsn, 2)
	if err != nil {
		t.Fatalf("migrating from version 1: %v", err)
	}
	if v, err := m3.Version(ctx); err != nil || v != store.SchemaVersion() {
		t.Fatalf("after migration from 1: version %d: %v", v, err)
	}
	var idx int
	if err := m3.DB().QueryRow(`SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name IN ('hosts_last_seen', 'rollouts_agent')`).Scan(&idx); err != nil || idx == 0 {
		t.Fatalf("migration 2 did not create the indexes (%d rows): %v", idx, err)
	}
	if _, ok, err := m3.Host(ctx, "old-host"); !ok || err != nil {
		t.Fatalf("data lost by the migration: %v %v", ok, err)
	}
	m3.Close()
	if _, err := m1.DB().Exec(`UPDATE schema_version SET version = 999`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenMySQL(ctx, dsn, 2); err == nil {
		t.Fatal("a newer schema must be refused")
	}
	// Two instances migrating the same fresh database at once.
	dsn2 := maria.Get(t).NewDatabase(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			m, err := store.OpenMySQL(ctx, dsn2, 2)
			if err != nil {
				t.Error(err)
				return
			}
			m.Close()
		})
	}
	wg.Wait()
}

func TestMySQLBadDSN(t *testing.T) {
	if _, err := store.OpenMySQL(context.Background(), "not a dsn", 1); err == nil {
		t.Fatal("want error")
	}
}
