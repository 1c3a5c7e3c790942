package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// migrations are applied in order; schema_version holds how many ran.
// Never edit a released migration: append a new one.
var migrations = [][]string{
	1: {
		`CREATE TABLE IF NOT EXISTS hosts (
			hostname VARCHAR(255) NOT NULL,
			addr VARCHAR(64) NOT NULL DEFAULT '',
			first_seen BIGINT NOT NULL,
			last_seen BIGINT NOT NULL,
			PRIMARY KEY (hostname)
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		`CREATE TABLE IF NOT EXISTS host_agents (
			hostname VARCHAR(255) NOT NULL,
			name VARCHAR(128) NOT NULL,
			version VARCHAR(128) NOT NULL,
			status VARCHAR(64) NOT NULL,
			ts BIGINT NOT NULL,
			error TEXT NOT NULL,
			pending VARCHAR(128) NOT NULL DEFAULT '',
			PRIMARY KEY (hostname, name)
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
		`CREATE TABLE IF NOT EXISTS rollouts (
			seq BIGINT NOT NULL AUTO_INCREMENT,
			id VARCHAR(128) NOT NULL,
			agent VARCHAR(128) NOT NULL,
			status VARCHAR(16) NOT NULL,
			revision BIGINT NOT NULL DEFAULT 0,
			data MEDIUMTEXT NOT NULL,
			PRIMARY KEY (seq),
			UNIQUE KEY rollouts_id (id)
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	},
	2: {
		`CREATE INDEX hosts_last_seen ON hosts (last_seen)`,
		`CREATE INDEX rollouts_agent ON rollouts (agent, status)`,
	},
}

// SchemaVersion is the schema version this binary migrates to.
func SchemaVersion() int { return len(migrations) - 1 }

// MySQL is the MySQL/MariaDB Store.
type MySQL struct {
	db *sql.DB
}

// OpenMySQL connects, and creates or migrates the schema.
func OpenMySQL(ctx context.Context, dsn string, maxOpen int) (*MySQL, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql.dsn: %w", err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("cannot open mysql: %w", err)
	}
	if maxOpen > 0 {
		db.SetMaxOpenConns(maxOpen + 1)
		db.SetMaxIdleConns(maxOpen)
	}
	db.SetConnMaxLifetime(5 * time.Minute)
	m := &MySQL{db: db}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach mysql %s: %w", cfg.Addr, err)
	}
	if err := m.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

// DB exposes the pool (tests).
func (m *MySQL) DB() *sql.DB { return m.db }

func (m *MySQL) migrate(ctx context.Context) error {
	return m.WithLock(ctx, "kestrel_ops_meta_migrate", func(ctx context.Context) error {
		if _, err := m.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL) ENGINE=InnoDB`); err != nil {
			return fmt.Errorf("cannot create schema_version: %w", err)
		}
		var v int
		err := m.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := m.db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return fmt.Errorf("cannot init schema_version: %w", err)
			}
		case err != nil:
			return fmt.Errorf("cannot read schema_version: %w", err)
		}
		if v > SchemaVersion() {
			return fmt.Errorf("database schema version %d is newer than this ops-meta's %d", v, SchemaVersion())
		}
		for n := v + 1; n <= SchemaVersion(); n++ {
			for _, stmt := range migrations[n] {
				if _, err := m.db.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", n, err)
				}
			}
			if _, err := m.db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, n); err != nil {
				return fmt.Errorf("migration %d: cannot record version: %w", n, err)
			}
		}
		return nil
	})
}

// Version returns the schema version recorded in the database.
func (m *MySQL) Version(ctx context.Context) (int, error) {
	var v int
	err := m.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	return v, err
}

func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// RecordHeartbeat implements Store.
func (m *MySQL) RecordHeartbeat(ctx context.Context, h Host) error {
	var err error
	for range 5 {
		if err = m.recordOnce(ctx, h); err == nil || !isDeadlock(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cannot record heartbeat of %q: %w", h.Name, err)
	}
	return nil
}

func (m *MySQL) recordOnce(ctx context.Context, h Host) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ts := h.LastSeen.UnixNano()
	if _, err := tx.ExecContext(ctx, `INSERT INTO hosts (hostname, addr, first_seen, last_seen) VALUES (?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE addr = VALUES(addr), last_seen = VALUES(last_seen)`, h.Name, h.Addr, ts, ts); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM host_agents WHERE hostname = ?`, h.Name); err != nil {
		return err
	}
	if len(h.Agents) > 0 {
		var sb strings.Builder
		args := make([]any, 0, 7*len(h.Agents))
		sb.WriteString(`INSERT INTO host_agents (hostname, name, version, status, ts, error, pending) VALUES `)
		for i, a := range h.Agents {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, h.Name, a.Name, a.Version, a.Status, a.Timestamp, a.Error, a.Pending)
		}
		sb.WriteString(` ON DUPLICATE KEY UPDATE version = VALUES(version), status = VALUES(status), ts = VALUES(ts), error = VALUES(error), pending = VALUES(pending)`)
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (m *MySQL) loadHosts(ctx context.Context, where string, args ...any) ([]Host, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT hostname, addr, first_seen, last_seen FROM hosts`+where+` ORDER BY hostname`, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read hosts: %w", err)
	}
	defer rows.Close()
	var hosts []Host
	idx := map[string]int{}
	for rows.Next() {
		var h Host
		var fs, ls int64
		if err := rows.Scan(&h.Name, &h.Addr, &fs, &ls); err != nil {
			return nil, fmt.Errorf("cannot read hosts: %w", err)
		}
		h.FirstSeen, h.LastSeen = time.Unix(0, fs), time.Unix(0, ls)
		idx[h.Name] = len(hosts)
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read hosts: %w", err)
	}
	rows.Close()
	arows, err := m.db.QueryContext(ctx, `SELECT hostname, name, version, status, ts, error, pending FROM host_agents`+where+` ORDER BY hostname, name`, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read host agents: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var hn string
		var a Agent
		if err := arows.Scan(&hn, &a.Name, &a.Version, &a.Status, &a.Timestamp, &a.Error, &a.Pending); err != nil {
			return nil, fmt.Errorf("cannot read host agents: %w", err)
		}
		if i, ok := idx[hn]; ok {
			hosts[i].Agents = append(hosts[i].Agents, a)
		}
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read host agents: %w", err)
	}
	return hosts, nil
}

// Hosts implements Store.
func (m *MySQL) Hosts(ctx context.Context) ([]Host, error) {
	h, err := m.loadHosts(ctx, "")
	if h == nil && err == nil {
		h = []Host{}
	}
	return h, err
}

// Host implements Store.
func (m *MySQL) Host(ctx context.Context, name string) (Host, bool, error) {
	hs, err := m.loadHosts(ctx, " WHERE hostname = ?", name)
	if err != nil || len(hs) == 0 {
		return Host{}, false, err
	}
	return hs[0], true, nil
}

// CreateRollout implements Store.
func (m *MySQL) CreateRollout(ctx context.Context, r Rollout) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = m.db.ExecContext(ctx, `INSERT INTO rollouts (id, agent, status, revision, data) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.Agent, r.Status, r.Revision, data)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 {
		return fmt.Errorf("rollout %q: %w", r.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("cannot create rollout %q: %w", r.ID, err)
	}
	return nil
}

func (m *MySQL) scanRollouts(rows *sql.Rows) ([]Rollout, error) {
	defer rows.Close()
	out := []Rollout{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("cannot read rollouts: %w", err)
		}
		var r Rollout
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("cannot decode a stored rollout: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Rollouts implements Store.
func (m *MySQL) Rollouts(ctx context.Context) ([]Rollout, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT data FROM rollouts ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("cannot read rollouts: %w", err)
	}
	return m.scanRollouts(rows)
}

// Rollout implements Store.
func (m *MySQL) Rollout(ctx context.Context, id string) (Rollout, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT data FROM rollouts WHERE id = ?`, id)
	if err != nil {
		return Rollout{}, fmt.Errorf("cannot read rollout: %w", err)
	}
	rs, err := m.scanRollouts(rows)
	if err != nil {
		return Rollout{}, err
	}
	if len(rs) == 0 {
		return Rollout{}, fmt.Errorf("rollout %q: %w", id, ErrNotFound)
	}
	return rs[0], nil
}

// UpdateRollout implements Store.
func (m *MySQL) UpdateRollout(ctx context.Context, r Rollout) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	res, err := m.db.ExecContext(ctx, `UPDATE rollouts SET status = ?, revision = ?, data = ? WHERE id = ?`, r.Status, r.Revision, data, r.ID)
	if err != nil {
		return fmt.Errorf("cannot update rollout %q: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := m.Rollout(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

// WithLock implements Store with GET_LOCK on a dedicated connection.
func (m *MySQL) WithLock(ctx context.Context, name string, fn func(context.Context) error) error {
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("cannot get a connection for lock %s: %w", name, err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 30)`, name).Scan(&got); err != nil {
		return fmt.Errorf("cannot take lock %s: %w", name, err)
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("cannot take lock %s: timed out", name)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DO RELEASE_LOCK(?)`, name)
	return fn(ctx)
}

// Close implements Store.
func (m *MySQL) Close() error { return m.db.Close() }
