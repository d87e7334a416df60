package pattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// This file is the pure part of EventBridge's input transformation: the
// dot-notation JSONPath of InputPath and InputPathsMap, and the template
// of an InputTransformer.

// InputPath is a compiled JSONPath in the dot notation EventBridge takes
// ("$", "$.detail", "$.detail.EC2InstanceId"): the field names from the
// root. The empty path is "$", the whole event.
type InputPath []string

// CompileInputPath parses a dot-notation JSONPath. Bracket notation and
// wildcards are refused, as EventBridge documents.
func CompileInputPath(p string) (InputPath, error) {
	if len(p) > 256 {
		return nil, errors.New("the path is longer than 256 characters")
	}
	if p == "$" {
		return InputPath{}, nil
	}
	rest, ok := strings.CutPrefix(p, "$.")
	if !ok {
		return nil, fmt.Errorf("%q must be $ or start with $.", p)
	}
	if strings.ContainsAny(rest, "[]*") {
		return nil, fmt.Errorf("%q: use JSON dot notation, not bracket notation or wildcards", p)
	}
	parts := strings.Split(rest, ".")
	for _, s := range parts {
		if s == "" {
			return nil, fmt.Errorf("%q has an empty field name", p)
		}
	}
	return parts, nil
}

// Lookup returns the value at the path in a decoded event.
func (p InputPath) Lookup(v any) (any, bool) {
	for _, k := range p {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TemplateValue is a value for a template variable; OK is false when the
// variable's path found nothing.
type TemplateValue struct {
	V  any
	OK bool
}

// RenderTemplate replaces each <name> of the template that names a
// variable. Inside a JSON string a value goes in as escaped text (a string
// without its quotes); elsewhere as JSON (a string with its quotes). A
// path that found nothing gives "" inside a string and null elsewhere.
func RenderTemplate(tmpl string, vars map[string]TemplateValue) string {
	var out strings.Builder
	inString, escaped := false, false
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c == '<' {
			if end := strings.IndexByte(tmpl[i+1:], '>'); end >= 0 {
				name := tmpl[i+1 : i+1+end]
				if tv, ok := vars[name]; ok {
					out.WriteString(renderValue(tv, inString))
					i += end + 1
					escaped = false
					continue
				}
			}
		}
		out.WriteByte(c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
	}
	return out.String()
}

func renderValue(tv TemplateValue, inString bool) string {
	if !inString {
		if !tv.OK {
			return "null"
		}
		return string(Marshal(tv.V))
	}
	if !tv.OK {
		return ""
	}
	s, isString := tv.V.(string)
	if !isString {
		s = string(Marshal(tv.V))
	}
	quoted := Marshal(s)
	return string(quoted[1 : len(quoted)-1])
}

// Marshal marshals v compactly without escaping <, > and &, as AWS
// writes JSON.
func Marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
