package config

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem with one field of a configuration.
type FieldError struct {
	// Path names the field as the YAML spells it, such as
	// "terminate.steps[1].timeout"; "" means the document as a whole.
	Path string
	// Problem says what is wrong, Fix how to put it right (may be empty).
	Problem, Fix string
	// File is the configuration file (set by LoadAgent). Line is the 1-based
	// line of the field, or of its nearest enclosing block, in the YAML
	// (set by ParseAgent and LoadAgent when known; 0 otherwise).
	File string
	Line int
}

// Error formats the problem as "path: problem; fix", prefixed with
// "file:line: " when File is set.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// join returns the problems as one error (nil when there are none), one
// problem a line; Unwrap() []error gives back each *FieldError.
func join(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
