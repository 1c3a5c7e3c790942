// Package mysqltest starts a throw-away MariaDB server for tests:
// mariadb-install-db into a temporary directory, then mariadbd on a random
// 127.0.0.1 port, with a user that has a password. One server is shared by
// a test binary (see Lazy); each test gets its own database.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Install is the hint printed when MariaDB is missing.
const Install = "install mariadb-server: apt-get install mariadb-server"

// Server is a running mariadbd.
type Server struct {
	dir      string
	port     int
	password string
	cmd      *exec.Cmd
	done     chan error
	dbs      atomic.Int64
}

// Lazy starts one server on first use and stops it in Stop (call from
// TestMain after m.Run).
type Lazy struct {
	once sync.Once
	srv  *Server
	err  error
}

// Get returns the shared server, failing the test when it cannot start.
func (l *Lazy) Get(t testing.TB) *Server {
	t.Helper()
	l.once.Do(func() { l.srv, l.err = Start() })
	if l.err != nil {
		t.Fatalf("mariadb: %v", l.err)
	}
	return l.srv
}

// Stop stops the server if it was started.
func (l *Lazy) Stop() {
	if l.srv != nil {
		l.srv.Stop()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start installs a data directory and starts mariadbd.
func Start() (*Server, error) {
	mariadbd, err := exec.LookPath("mariadbd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/mariadbd"); err2 == nil {
			mariadbd = "/usr/sbin/mariadbd"
		} else {
			return nil, errors.New("mariadbd not found: " + Install)
		}
	}
	installDB, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		return nil, errors.New("mariadb-install-db not found: " + Install)
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mysqltest")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(installDB, "--no-defaults", "--auth-root-authentication-method=normal",
		"--datadir="+data, "--skip-test-db", "--user="+u.Username).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	var pw [12]byte
	rand.Read(pw[:])
	s := &Server{dir: dir, password: hex.EncodeToString(pw[:]), done: make(chan error, 1)}
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.start(mariadbd, u.Username); err == nil {
			return s, nil
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (s *Server) socket() string { return filepath.Join(s.dir, "mysqld.sock") }

func (s *Server) start(mariadbd, username string) error {
	logFile := filepath.Join(s.dir, "error.log")
	s.cmd = exec.Command(mariadbd, "--no-defaults",
		"--datadir="+filepath.Join(s.dir, "data"),
		"--socket="+s.socket(),
		"--port="+strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(s.dir, "mysqld.pid"),
		"--log-error="+logFile,
		"--user="+username,
		"--skip-name-resolve",
		"--skip-log-bin",
		"--innodb-buffer-pool-size=16M",
		"--innodb-flush-log-at-trx-commit=2",
		"--max-connections=500",
	)
	setProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("cannot start mariadbd: %w", err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	root, _ := sql.Open("mysql", "root@unix("+s.socket()+")/")
	defer root.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-s.done:
			b, _ := os.ReadFile(logFile)
			return fmt.Errorf("mariadbd exited: %v: %s", err, tail(b))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := root.PingContext(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("mariadbd not ready after 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, q := range []string{
		"CREATE USER 'kestrel'@'127.0.0.1' IDENTIFIED BY '" + s.password + "'",
		"GRANT ALL ON *.* TO 'kestrel'@'127.0.0.1'",
	} {
		if _, err := root.Exec(q); err != nil {
			s.Stop()
			return fmt.Errorf("mariadb setup %q: %w", q, err)
		}
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop terminates mariadbd and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		terminate(s.cmd)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// NewDatabase creates a fresh database and returns a DSN for it (TCP, the
// kestrel user with its password). The database is dropped on cleanup.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", s.dbs.Add(1))
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "kestrel", s.password, "tcp", s.Addr()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			db.Exec("DROP DATABASE " + name)
			db.Close()
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
