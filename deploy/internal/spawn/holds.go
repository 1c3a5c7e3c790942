package spawn

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// holdsListener reports whether process pid holds a socket listening on
// 127.0.0.1:port (or on the wildcard address, when nothing listens on
// 127.0.0.1 itself): the socket a connection to 127.0.0.1:port reaches.
func holdsListener(pid, port int) (bool, error) {
	if runtime.GOOS == "linux" {
		return holdsListenerProc("/proc", pid, port)
	}
	return holdsListenerLsof(pid, port)
}

// holdsListenerProc reads the listening sockets of port from
// <proc>/net/tcp and tcp6 and looks for one of their inodes among the
// process's file descriptors.
func holdsListenerProc(proc string, pid, port int) (bool, error) {
	local, wildcard := map[string]bool{}, map[string]bool{}
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "net", name))
		if errors.Is(err, fs.ErrNotExist) && name == "tcp6" {
			continue // no IPv6
		}
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			ip, portHex, ok := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(portHex, 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			switch ip {
			case "0100007F", "0000000000000000FFFF00000100007F": // 127.0.0.1, ::ffff:127.0.0.1
				local[f[9]] = true
			case "00000000", "00000000000000000000000000000000": // 0.0.0.0, ::
				wildcard[f[9]] = true
			}
		}
	}
	want := local
	if len(want) == 0 {
		want = wildcard
	}
	if len(want) == 0 {
		return false, nil
	}
	fdDir := filepath.Join(proc, strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(l, "socket:["); ok && want[strings.TrimSuffix(inode, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// holdsListenerLsof asks lsof (macOS, the BSDs) for the process's
// listening TCP sockets on port.
func holdsListenerLsof(pid, port int) (bool, error) {
	out, err := exec.Command("lsof", "-nP", "-a", "-p", strconv.Itoa(pid), "-iTCP:"+strconv.Itoa(port), "-sTCP:LISTEN", "-Fn").Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && len(out) == 0 {
		return false, nil // lsof found nothing
	}
	if err != nil {
		return false, fmt.Errorf("lsof: %w", err)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		name, ok := strings.CutPrefix(line, "n")
		if !ok {
			continue
		}
		host, _, err := net.SplitHostPort(name)
		if err == nil && (host == "127.0.0.1" || host == "*" || host == "::ffff:127.0.0.1") {
			return true, nil
		}
	}
	return false, nil
}
