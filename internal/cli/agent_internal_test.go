package cli

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// TestAgentLogDurationsAreStrings: slog's JSON handler writes a duration
// as nanoseconds and its text handler as "5s"; the agent's logger writes
// "5s" in both, so a key has one type whatever the format.
func TestAgentLogDurationsAreStrings(t *testing.T) {
	for _, format := range []config.LogFormat{config.LogJSON, config.LogText} {
		var b bytes.Buffer
		log, err := agentLogger(&b, config.Log{Level: config.LogInfo, Format: format})
		if err != nil {
			t.Fatal(err)
		}
		log.With("instance", "i-1").Info("heartbeat failed", "retry_in", 5*time.Second, "n", 3)
		if format == config.LogText {
			if !bytes.Contains(b.Bytes(), []byte("retry_in=5s n=3")) {
				t.Errorf("text: %s", b.String())
			}
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["retry_in"] != "5s" || rec["n"] != 3.0 || rec["instance"] != "i-1" {
			t.Errorf("json: %s, want retry_in \"5s\"", b.String())
		}
	}
}
