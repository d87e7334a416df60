package sandbox

import (
	"fmt"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// Kinds of the events the sandbox itself records (service "sandbox").
const (
	EvClock = "clock-advanced" // the simulated clock was pushed forward
	EvFault = "fault"          // a fault was set or cleared
)

// FormatEvent renders one event as a timeline line:
//
//	10:00:05.123  web        i-0abc1234def567890  Pending:Wait         action started  hook=ready …
func FormatEvent(e eventlog.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-12s %-19s %-20s %s", e.Time.Format("15:04:05.000"), orDash(e.Group), orDash(e.Instance), e.State, describe(e))
	return strings.TrimRight(b.String(), " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func describe(e eventlog.Event) string {
	kind := strings.ReplaceAll(e.Kind, "-", " ")
	var parts []string
	parts = append(parts, kind)
	if e.Hook != "" {
		parts = append(parts, "hook="+e.Hook)
	}
	if e.Result != "" {
		parts = append(parts, "result="+e.Result)
	}
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	if e.Kind == world.EvInstanceState && e.Detail == "" {
		return "→ " + e.State
	}
	return strings.Join(parts, "  ")
}
