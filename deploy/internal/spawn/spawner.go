package spawn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Spec says how to start one child on a port and when it is ready.
type Spec struct {
	Name, Path string
	Args       func(port int) ([]string, error) // may write a config file
	// Up reports whether the server on 127.0.0.1:port answers as ready.
	// nil: a TCP connect.
	Up func(port int) bool
	// Owner reports whether the child (pid) is the server answering on
	// port; other is set when another process answers there. nil: the
	// socket listening on 127.0.0.1:port must be one of the child's.
	Owner func(port, pid int) (ok bool, other error)
}

// Spawner starts children on free ports, each ready only when the server
// answering on its port is that child. Children's logs are <dir>/<name>.log.
type Spawner struct {
	Attempts int           // ports tried per child (default 3)
	Wait     time.Duration // per attempt, start to ready (default 30s)

	dir      string
	log      *slog.Logger
	freePort func() (int, error)
	// holds reports whether process pid holds the socket listening on
	// 127.0.0.1:port.
	holds    func(pid, port int) (bool, error)
	children []*Child
}

// NewSpawner returns a Spawner whose children run in dir.
func NewSpawner(dir string, log *slog.Logger) *Spawner {
	return &Spawner{Attempts: 3, Wait: 30 * time.Second, dir: dir, log: log, freePort: FreePort, holds: holdsListener}
}

// Children returns the children started so far, oldest first.
func (s *Spawner) Children() []*Child { return s.children }

// errPortTaken marks a start that failed because another process holds
// the child's port.
var errPortTaken = errors.New("port taken by another process")

// Start starts sp on a free port and returns the child and its port once
// it is ready. When the child exits because another process took the port
// first, it tries another port (Attempts in all).
func (s *Spawner) Start(ctx context.Context, sp Spec) (*Child, int, error) {
	if sp.Up == nil {
		sp.Up = func(port int) bool { return TCPUp(LocalAddr(port)) }
	}
	if sp.Owner == nil {
		sp.Owner = s.listening
	}
	var err error
	for range s.Attempts {
		var port int
		if port, err = s.freePort(); err != nil {
			return nil, 0, err
		}
		var c *Child
		if c, err = s.startOn(ctx, sp, port); err == nil {
			return c, port, nil
		}
		if !errors.Is(err, errPortTaken) {
			return nil, 0, err
		}
		s.log.Warn("another process took the port before the child could listen; trying another port", "name", sp.Name, "port", port, "err", err)
	}
	return nil, 0, fmt.Errorf("%s: %d ports in a row were taken by other processes: %w", sp.Name, s.Attempts, err)
}

// startOn starts sp on port and waits until it is ready.
func (s *Spawner) startOn(ctx context.Context, sp Spec, port int) (*Child, error) {
	args, err := sp.Args(port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sp.Name, err)
	}
	c := &Child{Name: sp.Name, Path: sp.Path, Args: args, Dir: s.dir, LogPath: filepath.Join(s.dir, sp.Name+".log")}
	if err := c.Start(); err != nil {
		return nil, err
	}
	var other error // another process answered on the port
	err = WaitReady(ctx, c, s.Wait, func() bool {
		if !sp.Up(port) {
			return false
		}
		ok, o := sp.Owner(port, c.Pid())
		if o != nil {
			other = o
		}
		return ok
	})
	switch {
	case err == nil:
		s.children = append(s.children, c)
		s.log.Info("spawned", "name", sp.Name, "pid", c.Pid(), "addr", LocalAddr(port), "log", c.LogPath)
		return c, nil
	case errors.Is(err, ErrDied) && (other != nil || portBusy(port)):
		// Another process took the port between FreePort and the child's
		// bind.
		return nil, fmt.Errorf("%w (%v): port %d: %w", errPortTaken, other, port, err)
	case errors.Is(err, ErrDied):
		return nil, fmt.Errorf("port %d: %w", port, err)
	}
	c.Stop(5 * time.Second)
	if other != nil {
		return nil, fmt.Errorf("port %d (%v): %w", port, other, err)
	}
	return nil, fmt.Errorf("port %d: %w", port, err)
}

// listening is the default Owner: the socket listening on
// 127.0.0.1:port is the child's.
func (s *Spawner) listening(port, pid int) (bool, error) {
	held, err := s.holds(pid, port)
	if err != nil {
		return false, fmt.Errorf("cannot tell which process listens on port %d: %w", port, err)
	}
	if !held {
		return false, fmt.Errorf("127.0.0.1:%d answers, but the child (pid %d) does not listen there", port, pid)
	}
	return true, nil
}

// portBusy reports whether another process holds 127.0.0.1:port.
func portBusy(port int) bool {
	ln, err := net.Listen("tcp", LocalAddr(port))
	if err == nil {
		ln.Close()
		return false
	}
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)
}

// RedisOwner is the Owner of a redis-server Spec: its INFO process_id is
// the child's pid, another process when it is not.
func RedisOwner(port, pid int) (bool, error) {
	id, err := RedisProcessID(LocalAddr(port))
	if err != nil {
		return false, nil // not up (yet), or not answering like a Redis
	}
	if id != pid {
		return false, fmt.Errorf("the Redis answering on port %d is process %d, not the child (pid %d)", port, id, pid)
	}
	return true, nil
}

// RedisSpec is a redis-server on 127.0.0.1 with its data in dir (made if
// missing), no RDB snapshots, and args added (e.g. --appendonly yes).
func RedisSpec(path, dir string, args ...string) Spec {
	return Spec{
		Name: "redis-server", Path: path,
		Args: func(port int) ([]string, error) {
			return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir}, args...),
				os.MkdirAll(dir, 0o755)
		},
		Owner: RedisOwner,
	}
}

// NATSSpec is kestrel-nats (path) with its JetStream store in store, and
// args added (e.g. -log.level warn).
func NATSSpec(path, store string, args ...string) Spec {
	return Spec{
		Name: "kestrel-nats", Path: path,
		Args: func(port int) ([]string, error) {
			return append([]string{"-addr", LocalAddr(port), "-store", store}, args...), nil
		},
	}
}

// ServiceSpec is one of Kestrel's binaries (path) started as name with
// -c confPath: conf (YAML without an http: block) and http.listen on
// 127.0.0.1:<port>, written there before each start; ready when /health
// answers 200 (HealthOK).
func ServiceSpec(name, path, confPath, conf string) Spec {
	return Spec{
		Name: name, Path: path,
		Args: func(port int) ([]string, error) {
			body := conf + fmt.Sprintf("http:\n  listen: %q\n", LocalAddr(port))
			return []string{"-c", confPath}, os.WriteFile(confPath, []byte(body), 0o644)
		},
		Up: HealthOK,
	}
}
