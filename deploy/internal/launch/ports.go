package launch

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// PortUse is one address the pipeline will listen on.
type PortUse struct {
	Addr string // host:port as configured (host may be empty: all interfaces)
	What string // who listens there, e.g. "NATS" or "kestrel-judge http.listen"
	Hint string // how to choose another port
}

// PortBusyError says a port is taken by another process.
type PortBusyError struct {
	Port PortUse
	Err  error
}

func (e *PortBusyError) Error() string {
	_, port, _ := net.SplitHostPort(e.Port.Addr)
	return fmt.Sprintf("port %s (%s, %s) is in use by another process; stop it or %s", port, e.Port.What, e.Port.Addr, e.Port.Hint)
}

func (e *PortBusyError) Unwrap() error { return e.Err }

// CheckPort reports whether addr can be listened on now: nil when free,
// a *PortBusyError when another process holds it, another error when the
// address itself is bad.
func CheckPort(p PortUse) error {
	host, portStr, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return fmt.Errorf("%s: bad listen address %q: %w", p.What, p.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("%s: bad port in listen address %q", p.What, p.Addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
			return &PortBusyError{Port: p, Err: err}
		}
		return fmt.Errorf("%s: cannot listen on %s: %w", p.What, p.Addr, err)
	}
	return ln.Close()
}

// CheckPorts checks every port and returns all problems joined.
func CheckPorts(ports []PortUse) error {
	var errs []error
	for _, p := range ports {
		if err := CheckPort(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dialAddr turns a listen address into one to connect to: an empty or
// unspecified host becomes 127.0.0.1.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
