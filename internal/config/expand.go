package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandScalar returns n with every ${NAME} in its value replaced by the
// variable's value; "$$" stands for a literal "$". Expansion happens on
// scalar values after parsing, so a variable can never add keys or change
// the document's structure, and line numbers stay those of the file. A
// reference to an unset variable, or a malformed one, is a problem naming
// the variable. n is returned as it is when it holds no "$".
func expandScalar(n *yaml.Node, lookup func(string) (string, bool)) (*yaml.Node, string, string) {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") {
		return n, "", ""
	}
	var b strings.Builder
	s := n.Value
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return nil, fmt.Sprintf("has an unclosed variable reference %q", s), "close it with } (write $$ for a literal $)"
			}
			name := s[2:end]
			if !validEnvName(name) {
				return nil, fmt.Sprintf("refers to ${%s}, which is not a variable name", name), "use letters, digits and _ only, not starting with a digit (write $$ for a literal $)"
			}
			v, ok := lookup(name)
			if !ok {
				return nil, fmt.Sprintf("refers to the environment variable %s, which is not set", name), fmt.Sprintf("set %s in the agent's environment (for systemd: Environment= or EnvironmentFile=), or write the value here", name)
			}
			b.WriteString(v)
			s = s[end+1:]
		default:
			b.WriteByte('$') // a lone $ is literal, as in most shells' ${} syntax
			s = s[1:]
		}
	}
	out := *n
	out.Value = b.String()
	if out.Style == 0 || out.Style == yaml.TaggedStyle {
		out.Tag = "" // let YAML resolve the expanded text: ${PORT} may be an int
	}
	return &out, "", ""
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
