package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLevelsAndFormats(t *testing.T) {
	for _, tc := range []struct {
		cfg       Config
		wantDebug bool
		wantInfo  bool
		wantWarn  bool
		json      bool
	}{
		{Config{}, false, true, true, false},
		{Default(), false, true, true, false},
		{Config{Level: "debug"}, true, true, true, false},
		{Config{Level: "warn", Format: "json"}, false, false, true, true},
		{Config{Level: "error", Format: "text"}, false, false, false, false},
	} {
		var buf bytes.Buffer
		log, err := New(tc.cfg, &buf)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		log.Debug("d-msg")
		log.Info("i-msg", "k", "v")
		log.Warn("w-msg")
		out := buf.String()
		for msg, want := range map[string]bool{"d-msg": tc.wantDebug, "i-msg": tc.wantInfo, "w-msg": tc.wantWarn} {
			if got := strings.Contains(out, msg); got != want {
				t.Errorf("%+v: %s logged = %v, want %v; output:\n%s", tc.cfg, msg, got, want, out)
			}
		}
		if out == "" {
			continue
		}
		first := strings.SplitN(out, "\n", 2)[0]
		var m map[string]any
		isJSON := json.Unmarshal([]byte(first), &m) == nil
		if isJSON != tc.json {
			t.Errorf("%+v: first line %q is JSON = %v, want %v", tc.cfg, first, isJSON, tc.json)
		}
		if !isJSON && !strings.Contains(first, "level=") {
			t.Errorf("%+v: text line %q has no level=", tc.cfg, first)
		}
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{Config{}, nil},
		{Config{Level: "debug", Format: "json"}, nil},
		{Config{Level: "verbose"}, []string{`log.level: must be debug, info, warn or error, got "verbose"`}},
		{Config{Level: "INFO"}, []string{"log.level"}},
		{Config{Format: "xml"}, []string{`log.format: must be text or json, got "xml"`}},
		{Config{Level: "loud", Format: "xml"}, []string{"log.level", "log.format"}},
	} {
		err := tc.cfg.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", tc.cfg, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error, want %q", tc.cfg, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not contain %q", tc.cfg, err, w)
			}
		}
		if _, nerr := New(tc.cfg, &bytes.Buffer{}); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("%+v: New error = %v, want Validate's %v", tc.cfg, nerr, err)
		}
	}
}

func TestWithLevel(t *testing.T) {
	c := Config{Level: "info", Format: "json"}
	if got := c.WithLevel(""); got != c {
		t.Fatalf("empty override changed %+v to %+v", c, got)
	}
	if got := c.WithLevel("debug"); got != (Config{Level: "debug", Format: "json"}) || c.Level != "info" {
		t.Fatalf("override: %+v (original %+v)", got, c)
	}
}
