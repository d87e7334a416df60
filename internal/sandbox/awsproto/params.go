// Package awsproto holds the sandbox's wire protocols: the two service
// types every sandbox API is built on (QueryService for awsquery and
// ec2query, JSONService for awsJson1_0 and awsJson1_1: routing to an
// operation table, decoding, response and error envelopes), the query
// protocols' form parameters, their XML writers, and AWS's error
// envelopes. A service package is a table of operations and their
// handlers over its state owner. It is written from the protocols'
// documentation and captured bodies, never from the SDK's generated
// serializers, so the sandbox and the client under test cannot share a
// misunderstanding.
package awsproto

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Params are the decoded form parameters of one query-protocol request,
// seen under a prefix (the whole request at the top level).
type Params struct {
	v      url.Values
	prefix string
}

// NewParams wraps a request's form values.
func NewParams(v url.Values) Params { return Params{v: v} }

func (p Params) key(name string) string { return p.prefix + name }

// Has reports whether the parameter was sent at all (even empty).
func (p Params) Has(name string) bool {
	_, ok := p.v[p.key(name)]
	return ok
}

// Sent reports whether the parameter, or anything nested under it
// ("name.…"), was sent.
func (p Params) Sent(name string) bool {
	if p.Has(name) {
		return true
	}
	under := p.key(name) + "."
	for k := range p.v {
		if strings.HasPrefix(k, under) {
			return true
		}
	}
	return false
}

// SentUnder returns the names of the members sent under name: for
// "LaunchTemplateData", {"ImageId", "MetadataOptions", …}.
func (p Params) SentUnder(name string) map[string]bool {
	out := map[string]bool{}
	for k := range p.v {
		if rest, ok := strings.CutPrefix(k, p.key(name)+"."); ok {
			member, _, _ := strings.Cut(rest, ".")
			out[member] = true
		}
	}
	return out
}

// String returns the parameter's value, or "" when absent.
func (p Params) String(name string) string { return p.v.Get(p.key(name)) }

// Optional returns the value and whether it was sent.
func (p Params) Optional(name string) (string, bool) {
	vs, ok := p.v[p.key(name)]
	if !ok || len(vs) == 0 {
		return "", ok
	}
	return vs[0], true
}

// Int returns the integer parameter, whether it was sent, and a
// ParamError naming it when it is not a whole number.
func (p Params) Int(name string) (int, bool, error) {
	s, ok := p.Optional(name)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, true, &ParamError{Name: p.key(name), Value: s, Want: "an integer"}
	}
	return n, true, nil
}

// Bool returns the boolean parameter, whether it was sent, and a ParamError
// when it is neither true nor false.
func (p Params) Bool(name string) (bool, bool, error) {
	s, ok := p.Optional(name)
	if !ok {
		return false, false, nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, true, &ParamError{Name: p.key(name), Value: s, Want: "true or false"}
}

// Time parses an ISO-8601 timestamp parameter.
func (p Params) Time(name string) (time.Time, bool, error) {
	s, ok := p.Optional(name)
	if !ok {
		return time.Time{}, false, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(secs*float64(time.Second))).UTC(), true, nil
	}
	return time.Time{}, true, &ParamError{Name: p.key(name), Value: s, Want: "an ISO-8601 timestamp"}
}

// Sub returns the parameters nested under name ("A" → "A.…").
func (p Params) Sub(name string) Params { return Params{v: p.v, prefix: p.key(name) + "."} }

// Members returns the awsquery list "name.member.N" in index order. A list
// sent as the bare key with an empty value (how the Go SDK encodes an empty
// slice) yields an empty, non-nil result; an absent list yields nil.
func (p Params) Members(name string) []Params { return p.indexed(name+".member", name) }

// Flat returns a flattened list "name.N" (ec2query lists, SQS query lists).
func (p Params) Flat(name string) []Params { return p.indexed(name, name) }

// Strings returns a list of scalar members (awsquery "name.member.N").
func (p Params) Strings(name string) []string { return scalars(p.Members(name)) }

// FlatStrings returns a flattened list of scalars ("name.N").
func (p Params) FlatStrings(name string) []string { return scalars(p.Flat(name)) }

func scalars(ms []Params) []string {
	if ms == nil {
		return nil
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.v.Get(strings.TrimSuffix(m.prefix, ".")))
	}
	return out
}

// indexed collects "<base>.N[.…]" for N = 1, 2, … in numeric order. Each
// element is returned as Params positioned at "<base>.N." and can be read as
// a scalar with scalars, or as a structure with String etc.
func (p Params) indexed(base, bare string) []Params {
	full := p.key(base) + "."
	seen := map[int]bool{}
	for k := range p.v {
		if !strings.HasPrefix(k, full) {
			continue
		}
		rest := k[len(full):]
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			rest = rest[:i]
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			continue
		}
		seen[n] = true
	}
	if len(seen) == 0 {
		if p.Has(bare) {
			return []Params{}
		}
		return nil
	}
	idx := make([]int, 0, len(seen))
	for n := range seen {
		idx = append(idx, n)
	}
	sort.Ints(idx)
	out := make([]Params, 0, len(idx))
	for _, n := range idx {
		out = append(out, Params{v: p.v, prefix: full + strconv.Itoa(n) + "."})
	}
	return out
}

// Map returns an awsquery map "name.entry.N.key/value".
func (p Params) Map(name string) map[string]string {
	es := p.indexed(name+".entry", name)
	if es == nil {
		return nil
	}
	out := make(map[string]string, len(es))
	for _, e := range es {
		out[e.String("key")] = e.String("value")
	}
	return out
}

// ParamError is a malformed parameter value.
type ParamError struct {
	Name, Value, Want string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("parameter %s: value %q is not %s", e.Name, e.Value, e.Want)
}
