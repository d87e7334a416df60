package config_test

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

func TestDurationUnmarshalYAML(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       time.Duration
		wantErr    string
	}{
		{"seconds", "d: 90s", 90 * time.Second, ""},
		{"minutes", "d: 5m", 5 * time.Minute, ""},
		{"hours and minutes", "d: 1h30m", 90 * time.Minute, ""},
		{"milliseconds", "d: 500ms", 500 * time.Millisecond, ""},
		{"fraction", "d: 1.5s", 1500 * time.Millisecond, ""},
		{"zero with a unit", "d: 0s", 0, ""},
		{"negative", "d: -5s", -5 * time.Second, ""},
		{"quoted", `d: "2m"`, 2 * time.Minute, ""},
		{"bare number", "d: 30", 0, "30 has no unit; write 30s, not 30"},
		{"bare number in quotes", `d: "30"`, 0, "30 has no unit; write 30s, not 30"},
		{"bare zero", "d: 0", 0, "0 has no unit; write 0s, not 0"},
		{"bare fraction", "d: 1.5", 0, "1.5 has no unit; write 1.5s, not 1.5"},
		{"words", "d: 5 minutes", 0, `"5 minutes" is not a duration; write it like 30s, 5m or 1h30m`},
		{"unknown unit", "d: 3d", 0, `"3d" is not a duration; write it like 30s, 5m or 1h30m`},
		{"exponent", "d: 1e3", 0, `"1e3" is not a duration; write it like 30s, 5m or 1h30m`},
		{"list", "d: [1s]", 0, "is a list, not a duration; write it like 30s, 5m or 1h30m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct{ D config.Duration }
			err := yaml.Unmarshal([]byte(tt.yaml), &v)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Unmarshal(%q) error = %v, want %q", tt.yaml, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%q): %v", tt.yaml, err)
			}
			if time.Duration(v.D) != tt.want {
				t.Errorf("Unmarshal(%q) = %s, want %s", tt.yaml, time.Duration(v.D), tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{500 * time.Millisecond, "500ms"},
		{1500 * time.Millisecond, "1.5s"},
		{90 * time.Second, "1m30s"},
		{5 * time.Minute, "5m"},
		{time.Hour, "1h"},
		{150 * time.Minute, "2h30m"},
		{time.Hour + 30*time.Second, "1h0m30s"},
		{-5 * time.Minute, "-5m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := config.Duration(tt.d).String(); got != tt.want {
				t.Errorf("Duration(%d).String() = %q, want %q", tt.d, got, tt.want)
			}
			// The short form reads back as the same duration.
			if back, err := time.ParseDuration(tt.want); err != nil || back != tt.d {
				t.Errorf("time.ParseDuration(%q) = %v, %v; want %v", tt.want, back, err, tt.d)
			}
		})
	}
}

func TestDurationMarshals(t *testing.T) {
	v := struct {
		D config.Duration `yaml:"d" json:"d"`
	}{config.Duration(90 * time.Minute)}
	t.Run("yaml writes a string", func(t *testing.T) {
		out, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(out), "d: 1h30m\n"; got != want {
			t.Errorf("yaml.Marshal = %q, want %q", got, want)
		}
	})
	t.Run("json writes a string and reads it back", func(t *testing.T) {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(out), `{"d":"1h30m"}`; got != want {
			t.Errorf("json.Marshal = %s, want %s", got, want)
		}
		var back struct {
			D config.Duration `json:"d"`
		}
		if err := json.Unmarshal(out, &back); err != nil || back.D != v.D {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", out, back.D, err, v.D)
		}
		if err := json.Unmarshal([]byte(`{"d":"30"}`), &back); err == nil {
			t.Errorf("json.Unmarshal of a bare number succeeded")
		}
	})
}
