package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseMetric returns the value of an unlabelled sample named name in a
// Prometheus text exposition.
func ParseMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// ScrapeCPU returns the sum of process_cpu_seconds_total over urls.
func ScrapeCPU(ctx context.Context, urls []string) (float64, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	var sum float64
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, fmt.Errorf("scrape %s: %w", u, err)
		}
		v, err := ParseMetric(resp.Body, "process_cpu_seconds_total")
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("scrape %s: %w", u, err)
		}
		sum += v
	}
	return sum, nil
}
