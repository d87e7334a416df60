package systest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsAgentBlocks runs the command lines of docs/agent.md's ```sh
// blocks as written, each with --check-config added where it would start a
// long-running agent: the flags exist, the file is found where the block
// says, and the environment the block exports reaches the configuration.
// The file each block names holds the page's full example (the first
// ```yaml block), or the configuration its comment gives.
func TestDocsAgentBlocks(t *testing.T) {
	bin := lifeguardBinary(t)
	doc, err := os.ReadFile("../../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	full := firstYAMLBlock(string(doc))
	if full == "" {
		t.Fatal("docs/agent.md has no yaml block")
	}
	blocks := shellBlocks(t, "../../docs/agent.md")
	if len(blocks) == 0 {
		t.Fatal("docs/agent.md has no sh blocks")
	}
	for i, block := range blocks {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		var script strings.Builder
		script.WriteString("set -eu\n")
		for line := range strings.SplitSeq(strings.TrimSpace(block), "\n") {
			cmd, comment, _ := strings.Cut(line, "#")
			cmd = strings.TrimSpace(cmd)
			if !strings.HasPrefix(cmd, "lifeguard agent") {
				script.WriteString(line + "\n")
				continue
			}
			// The file the line names: absolute paths live under root.
			f := strings.Fields(cmd)
			for j, w := range f {
				if w == "--config" && j+1 < len(f) {
					path := f[j+1]
					local := filepath.Join(dir, path)
					if filepath.IsAbs(path) {
						local = filepath.Join(root, path)
					}
					content := full
					if _, cfg, ok := strings.Cut(comment, " has: "); ok {
						content = strings.TrimSpace(cfg) + "\n"
					}
					if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
					f[j+1] = local
				}
			}
			if !strings.Contains(cmd, "--check-config") {
				f = append(f, "--check-config")
			}
			f[0] = bin
			script.WriteString(strings.Join(f, " ") + "\n")
		}
		c := exec.Command("bash", "-c", script.String())
		c.Dir = dir
		c.Env = append(cleanShellEnv(t), "HOME="+dir)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Run(); err != nil {
			t.Errorf("docs/agent.md sh block %d failed: %v\nscript:\n%s\noutput:\n%s", i+1, err, script.String(), out.String())
			continue
		}
		// A block that exports a variable must see it expanded.
		for line := range strings.SplitSeq(block, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
				_, val, _ := strings.Cut(strings.Fields(rest)[0], "=")
				if !strings.Contains(out.String(), val) {
					t.Errorf("docs/agent.md sh block %d: the effective configuration does not show the exported %s:\n%s", i+1, val, out.String())
				}
			}
		}
	}
}

func firstYAMLBlock(doc string) string {
	_, rest, ok := strings.Cut(doc, "\n```yaml\n")
	if !ok {
		return ""
	}
	block, _, _ := strings.Cut(rest, "\n```")
	return block + "\n"
}
