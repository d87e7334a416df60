package world

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file shapes what a target receives: the whole event, a constant
// (Input), one part of the event (InputPath), or a template filled from
// the event (TargetInputTransformer).

// ebInputPath is a compiled JSONPath in the dot notation EventBridge takes
// ("$", "$.detail", "$.detail.EC2InstanceId"): the field names from the
// root.
type ebInputPath []string

// ebCompileInputPath parses a dot-notation JSONPath. Bracket notation and
// wildcards are refused, as EventBridge documents.
func ebCompileInputPath(p string) (ebInputPath, error) {
	if len(p) > 256 {
		return nil, errors.New("the path is longer than 256 characters")
	}
	if p == "$" {
		return ebInputPath{}, nil
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

// lookup returns the value at the path in a decoded event.
func (p ebInputPath) lookup(v any) (any, bool) {
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

// ebTransform returns what target t of rule r receives for ev.
func ebTransform(t *EventTarget, r *ebRule, ev ebEvent, now time.Time) (string, error) {
	switch {
	case t.Input != "":
		return t.Input, nil
	case t.InputPath != "":
		p, err := ebCompileInputPath(t.InputPath)
		if err != nil {
			return "", err
		}
		if len(p) == 0 {
			return string(ev.body), nil
		}
		v, ok := p.lookup(ev.decoded)
		if !ok {
			return "", fmt.Errorf("InputPath %s selects nothing in the event", t.InputPath)
		}
		return string(ebMarshal(v)), nil
	case t.InputTransformer != nil:
		vars := map[string]ebTemplateValue{
			"aws.events.rule-arn":             {v: r.ARN, ok: true},
			"aws.events.rule-name":            {v: r.Name, ok: true},
			"aws.events.event.ingestion-time": {v: now.UTC().Format(ebTimeFormat), ok: true},
			"aws.events.event":                {v: ev.decoded, ok: true},
			"aws.events.event.json":           {v: ev.decoded, ok: true},
		}
		for k, path := range t.InputTransformer.InputPathsMap {
			p, err := ebCompileInputPath(path)
			if err != nil {
				return "", err
			}
			v, ok := p.lookup(ev.decoded)
			vars[k] = ebTemplateValue{v: v, ok: ok}
		}
		return ebRenderTemplate(t.InputTransformer.InputTemplate, vars), nil
	default:
		return string(ev.body), nil
	}
}

type ebTemplateValue struct {
	v  any
	ok bool // the path found a value
}

// ebRenderTemplate replaces each <name> of the template that names a
// variable. Inside a JSON string a value goes in as escaped text (a string
// without its quotes); elsewhere as JSON (a string with its quotes). A
// path that found nothing gives "" inside a string and null elsewhere.
func ebRenderTemplate(tmpl string, vars map[string]ebTemplateValue) string {
	var out strings.Builder
	inString, escaped := false, false
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c == '<' {
			if end := strings.IndexByte(tmpl[i+1:], '>'); end >= 0 {
				name := tmpl[i+1 : i+1+end]
				if tv, ok := vars[name]; ok {
					out.WriteString(ebRenderValue(tv, inString))
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

func ebRenderValue(tv ebTemplateValue, inString bool) string {
	if !inString {
		if !tv.ok {
			return "null"
		}
		return string(ebMarshal(tv.v))
	}
	if !tv.ok {
		return ""
	}
	s, isString := tv.v.(string)
	if !isString {
		s = string(ebMarshal(tv.v))
	}
	quoted := ebMarshal(s)
	return string(quoted[1 : len(quoted)-1])
}
