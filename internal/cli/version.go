package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X github.com/lifeguardhq/lifeguard/internal/cli.Version=v1.2.3
// -X …/cli.Commit=abc123 -X …/cli.BuildDate=2026-01-02T15:04:05Z". A build
// without them (go install, go run) falls back on what the Go toolchain
// recorded in the binary.
var (
	Version   = ""
	Commit    = ""
	BuildDate = ""
)

// BuildInfo is what `lifeguard version` reports.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Build returns this binary's build information: the ldflags values where
// set, else the module version and VCS stamps recorded by the Go
// toolchain, else "dev"/"unknown".
func Build() BuildInfo {
	b := BuildInfo{Version: Version, Commit: Commit, BuildDate: BuildDate,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.BuildDate == "" {
					b.BuildDate = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Commit != "" && Commit == "" {
			b.Commit += "-dirty"
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.BuildDate == "" {
		b.BuildDate = "unknown"
	}
	return b
}

func (b BuildInfo) String() string {
	return fmt.Sprintf("lifeguard %s (commit %s, built %s, %s, %s)", b.Version, b.Commit, b.BuildDate, b.GoVersion, b.Platform)
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := Build()
			if out.json() {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			}
			_, err := fmt.Fprintln(stdout, b)
			return err
		},
	}
	out.register(cmd)
	return cmd
}
