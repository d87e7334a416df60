package messaging

import (
	"fmt"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
)

// This file shapes what a target receives: the whole event, a constant
// (Input), one part of the event (InputPath), or a template filled from
// the event (TargetInputTransformer). The paths and the template language
// are package pattern's.

// ebTransform returns what target t of rule r receives for ev.
func ebTransform(t *EventTarget, r *ebRule, ev ebEvent, now time.Time) (string, error) {
	switch {
	case t.Input != "":
		return t.Input, nil
	case t.InputPath != "":
		p, err := pattern.CompileInputPath(t.InputPath)
		if err != nil {
			return "", err
		}
		if len(p) == 0 {
			return string(ev.body), nil
		}
		v, ok := p.Lookup(ev.decoded)
		if !ok {
			return "", fmt.Errorf("InputPath %s selects nothing in the event", t.InputPath)
		}
		return string(pattern.Marshal(v)), nil
	case t.InputTransformer != nil:
		vars := map[string]pattern.TemplateValue{
			"aws.events.rule-arn":             {V: r.ARN, OK: true},
			"aws.events.rule-name":            {V: r.Name, OK: true},
			"aws.events.event.ingestion-time": {V: now.UTC().Format(ebTimeFormat), OK: true},
			"aws.events.event":                {V: ev.decoded, OK: true},
			"aws.events.event.json":           {V: ev.decoded, OK: true},
		}
		for k, path := range t.InputTransformer.InputPathsMap {
			p, err := pattern.CompileInputPath(path)
			if err != nil {
				return "", err
			}
			v, ok := p.Lookup(ev.decoded)
			vars[k] = pattern.TemplateValue{V: v, OK: ok}
		}
		return pattern.RenderTemplate(t.InputTransformer.InputTemplate, vars), nil
	default:
		return string(ev.body), nil
	}
}
