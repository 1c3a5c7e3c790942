package spawn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process can take it before a child binds it: a Spawner checks
// that what answers on the port is its child, and moves to another port
// when it is not.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// LocalAddr is 127.0.0.1:port.
func LocalAddr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// TCPUp reports whether something accepts TCP connections at addr.
func TCPUp(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// HTTPCheck gets url (1 s timeout): nil when the answer is 200 OK, else
// why not.
func HTTPCheck(url string) error {
	code, err := httpStatus(url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, code, http.StatusText(code))
	}
	return nil
}

// HTTPOK reports whether GET url answers 200 OK.
func HTTPOK(url string) bool { return HTTPCheck(url) == nil }

// HTTPAnswers reports whether an HTTP server answers GET url, whatever the
// status.
func HTTPAnswers(url string) bool {
	_, err := httpStatus(url)
	return err == nil
}

// HealthOK reports whether GET http://127.0.0.1:port/health answers 200
// OK: a Spec's Up for Kestrel's binaries (the transfer's /health is 200
// once it is connected and sees a judge).
func HealthOK(port int) bool { return HTTPOK("http://" + LocalAddr(port) + "/health") }

func httpStatus(url string) (int, error) {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// RedisPing reports whether a Redis answers PING at addr.
func RedisPing(ctx context.Context, addr string) bool {
	var reply string
	err := redisCall(ctx, addr, "*1\r\n$4\r\nPING\r\n", func(r *bufio.Reader) (err error) {
		reply, err = r.ReadString('\n')
		return err
	})
	return err == nil && reply == "+PONG\r\n"
}

// RedisProcessID asks the Redis at addr for INFO server and returns its
// process_id.
func RedisProcessID(addr string) (int, error) {
	var id int
	err := redisCall(context.Background(), addr, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n", func(r *bufio.Reader) error {
		head, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
		if !strings.HasPrefix(head, "$") || err != nil || n < 0 || n > 1<<20 {
			return fmt.Errorf("INFO reply %q is not a bulk string", head)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(body), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
				id, err = strconv.Atoi(v)
				return err
			}
		}
		return errors.New("INFO server has no process_id")
	})
	return id, err
}

// redisCall sends one command in plain RESP (so that nothing is logged
// when nothing listens, as a client library would) and lets read read
// the reply, all within a second.
func redisCall(ctx context.Context, addr, cmd string, read func(*bufio.Reader) error) error {
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, cmd); err != nil {
		return err
	}
	return read(bufio.NewReader(conn))
}
