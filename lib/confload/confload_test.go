package confload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Interval time.Duration `yaml:"interval"`
	Download struct {
		Timeout time.Duration `yaml:"timeout"`
		MaxSize int64         `yaml:"max_size"`
	} `yaml:"download"`
	URLs []string `yaml:"urls"`
	Log  struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
	Agents []struct {
		Name string        `yaml:"name"`
		Soak time.Duration `yaml:"soak"`
	} `yaml:"agents"`
}

func TestDecodeDurationsAndDefaults(t *testing.T) {
	var c sample
	c.Log.Level = "info" // a default the file does not set
	err := Decode("x.yaml", []byte("interval: 1m30s\ndownload: {timeout: 250ms, max_size: 10}\nagents:\n  - name: a\n    soak: 2h\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != 90*time.Second || c.Download.Timeout != 250*time.Millisecond || c.Download.MaxSize != 10 ||
		len(c.Agents) != 1 || c.Agents[0].Soak != 2*time.Hour || c.Log.Level != "info" {
		t.Fatalf("decoded %+v", c)
	}
	if err := Decode("x.yaml", []byte(""), &c); err != nil || c.Interval != 90*time.Second {
		t.Fatalf("empty document: %v %+v", err, c)
	}
}

// Every error names the file, the line and the field.
func TestDecodeErrorsNameFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"bogus: 1", []string{"x.yaml: line 1: bogus: field bogus not found"}},
		{"download:\n  timeout: 5s\n  color: red", []string{"x.yaml: line 3: download.color: field color not found"}},
		{"interval: 5", []string{"x.yaml: line 1: interval: cannot unmarshal !!int `5` into time.Duration (write a duration with its unit, e.g. \"30s\", \"500ms\", \"0s\")"}},
		{"interval: soon", []string{"x.yaml: line 1: interval: cannot unmarshal !!str `soon` into time.Duration"}},
		{"download: {max_size: 10, timeout: forever-and-a-day}", []string{"line 1: download.timeout: cannot unmarshal !!str `forever...` into time.Duration"}},
		{"urls: [a, {b: 1}]", []string{"line 1: urls[1]: cannot unmarshal !!map into string"}},
		{"agents:\n  - name: a\n    soak: 3\n  - name: b\n    speed: 1", []string{
			"x.yaml: line 3: agents[0].soak: cannot unmarshal !!int `3`",
			"x.yaml: line 5: agents[1].speed: field speed not found",
		}},
		{"log: [1]", []string{"x.yaml: line 1: log: cannot unmarshal !!seq into"}},
		{"interval: [", []string{"x.yaml: yaml: "}},
	} {
		var c sample
		err := Decode("x.yaml", []byte(tc.yaml), &c)
		if err == nil {
			t.Errorf("%q: no error", tc.yaml)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error\n%v\nwant it to contain %q", tc.yaml, err, w)
			}
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "x.yaml: ") {
				t.Errorf("%q: error line %q does not name the file", tc.yaml, line)
			}
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("interval: 3s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var c sample
	if err := Load(p, &c); err != nil || c.Interval != 3*time.Second {
		t.Fatalf("%v %+v", err, c)
	}
	err := Load(filepath.Join(t.TempDir(), "missing.yaml"), &c)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestInFile(t *testing.T) {
	if InFile("x.yaml", nil) != nil {
		t.Fatal("nil must stay nil")
	}
	a, b := errors.New("http.listen: bad"), errors.New("keep: too small")
	err := InFile("x.yaml", errors.Join(a, b))
	if got, want := err.Error(), "x.yaml: http.listen: bad\nx.yaml: keep: too small"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if !errors.Is(err, a) || !errors.Is(err, b) {
		t.Fatal("the field errors must stay wrapped")
	}
	if got := InFile("x.yaml", a).Error(); got != "x.yaml: http.listen: bad" {
		t.Fatal(got)
	}
	c := errors.New("log.level: loud")
	nested := InFile("x.yaml", errors.Join(errors.Join(a, b), c))
	if got, want := nested.Error(), "x.yaml: http.listen: bad\nx.yaml: keep: too small\nx.yaml: log.level: loud"; got != want {
		t.Fatalf("nested joins: %q, want %q", got, want)
	}
}
