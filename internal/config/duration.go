package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as Go writes durations: "90s",
// "5m", "1h30m". A bare number is an error ("write 30s, not 30"): a
// configuration file should never leave its reader guessing the unit.
// Convert with time.Duration(d).
type Duration time.Duration

// String formats d like time.Duration without zero trailing units: "5m",
// "1h", "1m30s", "0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalYAML writes d as a string such as "5m".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string; a number without a unit is an error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, problem, fix := parseDurationNode(n)
	if problem != "" {
		return errors.New(problem + "; " + fix)
	}
	*d = v
	return nil
}

// MarshalText writes d as a string such as "5m" (JSON, for /status).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string such as "5m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, problem, fix := parseDuration(string(b))
	if problem != "" {
		return errors.New(problem + "; " + fix)
	}
	*d = v
	return nil
}

// parseDurationNode reads a YAML scalar as a Duration, or says what is wrong
// and how to fix it.
func parseDurationNode(n *yaml.Node) (d Duration, problem, fix string) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Sprintf("is %s, not a duration", describe(n)), "write it like 30s, 5m or 1h30m"
	}
	return parseDuration(n.Value)
}

func parseDuration(s string) (d Duration, problem, fix string) {
	if isDecimal(s) {
		return 0, fmt.Sprintf("%s has no unit", s), fmt.Sprintf("write %ss, not %s", s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("%q is not a duration", s), "write it like 30s, 5m or 1h30m"
	}
	return Duration(v), "", ""
}

// isDecimal reports whether s is a plain decimal number such as 30, -1 or 1.5,
// which becomes a duration by appending a unit.
func isDecimal(s string) bool {
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
