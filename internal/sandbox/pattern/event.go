package pattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// This file is EventBridge's event pattern language, written from the
// EventBridge user guide ("Creating event patterns", "Comparison operators")
// and the behaviour of AWS's open-source matcher, event-ruler, whose error
// texts AWS returns after "Event pattern is not valid. Reason: ". Texts
// here omit event-ruler's trailing parser position (" at [Source: …; line:
// 1, column: N]").
//
// Semantics, as on AWS:
//   - A pattern is a JSON object. Each field names a field of the event; its
//     value is either a nested object (a pattern on a nested object of the
//     event) or a non-empty array of match values, any of which may match.
//   - All fields of a pattern object must match; "$or" takes an array of at
//     least two objects, one of which must match the same event object.
//   - Match values are strings, numbers (compared as numbers: 5 matches
//     5.0), true, false and null (which matches a null value, never a
//     missing field), or one-key objects: prefix, suffix (each a string or
//     {"equals-ignore-case": s}), equals-ignore-case, wildcard, numeric,
//     exists, cidr and anything-but (a value, a list of strings or of
//     numbers, or {prefix|suffix|equals-ignore-case|wildcard: s or [s…]}).
//   - Matching reads leaf values. An array in the event matches when any of
//     its elements does (arrays of arrays are flattened); a pattern object
//     applied to an array of objects must match within one element. A field
//     whose value is an object, an empty array, or that is missing has no
//     leaf value: only {"exists": false} matches it.
//   - anything-but over strings matches any leaf value that is not one of
//     them (numbers, booleans and null included); anything-but over numbers
//     matches only numbers.

// maxEventDepth bounds how deeply a pattern may nest, so a hostile
// pattern cannot exhaust the stack.
const maxEventDepth = 64

// Event is a compiled event pattern. It is immutable and safe for
// concurrent use.
type Event struct {
	root *evObject
}

type evObject struct {
	fields []evField // sorted by key
	ors    [][]*evObject
}

type evField struct {
	key    string
	nested *evObject   // a nested object pattern, or
	values []evMatcher // the match values (any of which may match)
	exists []bool      // and the exists match values among them
}

// evMatcher matches one leaf value: a string, json.Number, bool or nil.
type evMatcher func(v any) bool

// invalidEvent is EventBridge's error for a pattern it cannot compile.
func invalidEvent(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("InvalidEventPatternException", "Event pattern is not valid. Reason: %s", fmt.Sprintf(format, args...))
}

// ValidateEvent checks a pattern as PutRule and TestEventPattern do.
// It returns nil or an *awsproto.Error with code
// InvalidEventPatternException and EventBridge's message.
func ValidateEvent(pattern string) error {
	_, err := CompileEvent(pattern)
	return err
}

// MatchEvent reports whether the JSON event matches the pattern. It
// fails with InvalidEventPatternException when the pattern does not
// compile and with ValidationException when the event is not a JSON
// object. It never panics, whatever its input.
func MatchEvent(pattern string, event []byte) (bool, error) {
	p, err := CompileEvent(pattern)
	if err != nil {
		return false, err
	}
	ev, err := DecodeEvent(event)
	if err != nil {
		return false, err
	}
	return p.Match(ev), nil
}

// DecodeEvent decodes a JSON object, keeping numbers as json.Number.
func DecodeEvent(b []byte) (map[string]any, error) {
	v, err := DecodeJSON(b)
	if err != nil {
		return nil, awsproto.Errorf("ValidationException", "Parameter Event is not valid.")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, awsproto.Errorf("ValidationException", "Parameter Event is not valid.")
	}
	return m, nil
}

// DecodeJSON decodes exactly one JSON value, numbers as json.Number.
func DecodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// CompileEvent parses and validates a pattern.
func CompileEvent(pattern string) (*Event, error) {
	v, err := DecodeJSON([]byte(pattern))
	if err != nil {
		return nil, invalidEvent("Filter is not valid JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalidEvent("Filter is not an object")
	}
	root, err := evCompileObject(m, false, 1)
	if err != nil {
		return nil, err
	}
	return &Event{root: root}, nil
}

// evReservedInOr are the match-type names event-ruler refuses as field names
// inside $or, where they would be ambiguous.
var evReservedInOr = []string{"anything-but", "cidr", "equals-ignore-case", "exact", "exists", "numeric", "prefix", "suffix", "wildcard"}

func evCompileObject(m map[string]any, inOr bool, depth int) (*evObject, error) {
	if depth > maxEventDepth {
		return nil, invalidEvent("Filter is nested more than %d levels deep", maxEventDepth)
	}
	if len(m) == 0 {
		return nil, invalidEvent("Empty objects are not allowed")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	o := &evObject{}
	for _, k := range keys {
		v := m[k]
		if k == "$or" {
			alts, err := evCompileOr(v, depth)
			if err != nil {
				return nil, err
			}
			o.ors = append(o.ors, alts)
			continue
		}
		if inOr && slices.Contains(evReservedInOr, k) {
			return nil, invalidEvent("%s is Ruler reserved fieldName which cannot be used inside $or.", k)
		}
		switch v := v.(type) {
		case map[string]any:
			nested, err := evCompileObject(v, inOr, depth+1)
			if err != nil {
				return nil, err
			}
			o.fields = append(o.fields, evField{key: k, nested: nested})
		case []any:
			f, err := evCompileValues(k, v)
			if err != nil {
				return nil, err
			}
			o.fields = append(o.fields, f)
		default:
			return nil, invalidEvent("%q must be an object or an array", k)
		}
	}
	return o, nil
}

func evCompileOr(v any, depth int) ([]*evObject, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, invalidEvent("It must be an Array followed with $or.")
	}
	var alts []*evObject
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, invalidEvent("Only JSON object is allowed in array of $or relationship.")
		}
		alt, err := evCompileObject(m, true, depth+1)
		if err != nil {
			return nil, err
		}
		alts = append(alts, alt)
	}
	if len(alts) < 2 {
		return nil, invalidEvent("There must have at least 2 Objects in $or relationship.")
	}
	return alts, nil
}

func evCompileValues(key string, list []any) (evField, error) {
	f := evField{key: key}
	if len(list) == 0 {
		return f, invalidEvent("Empty arrays are not allowed")
	}
	for _, v := range list {
		switch v := v.(type) {
		case string:
			f.values = append(f.values, evExactString(v))
		case json.Number:
			f.values = append(f.values, evExactNumber(v))
		case bool:
			f.values = append(f.values, func(x any) bool { b, ok := x.(bool); return ok && b == v })
		case nil:
			f.values = append(f.values, func(x any) bool { return x == nil })
		case map[string]any:
			if len(v) == 0 {
				return f, invalidEvent("Match expression name not found")
			}
			if len(v) > 1 {
				return f, invalidEvent("Only one key allowed in match expression")
			}
			for op, arg := range v {
				if op == "exists" {
					b, ok := arg.(bool)
					if !ok {
						return f, invalidEvent("exists match pattern must be either true or false.")
					}
					f.exists = append(f.exists, b)
					continue
				}
				m, err := evCompileOperator(op, arg)
				if err != nil {
					return f, err
				}
				f.values = append(f.values, m)
			}
		default:
			return f, invalidEvent("Match value must be String, number, true, false, or null")
		}
	}
	return f, nil
}

func evExactString(s string) evMatcher {
	return func(x any) bool { t, ok := x.(string); return ok && t == s }
}

func evExactNumber(n json.Number) evMatcher {
	f, ferr := strconv.ParseFloat(string(n), 64)
	return func(x any) bool {
		t, ok := x.(json.Number)
		if !ok {
			return false
		}
		if t == n {
			return true
		}
		g, err := strconv.ParseFloat(string(t), 64)
		return ferr == nil && err == nil && f == g
	}
}

func evCompileOperator(op string, arg any) (evMatcher, error) {
	switch op {
	case "prefix", "suffix":
		test, err := evAffixTest(op, arg)
		if err != nil {
			return nil, err
		}
		return func(x any) bool { s, ok := x.(string); return ok && test(s) }, nil
	case "equals-ignore-case":
		s, ok := arg.(string)
		if !ok {
			return nil, invalidEvent("equals-ignore-case match pattern must be a string")
		}
		return func(x any) bool { t, ok := x.(string); return ok && strings.EqualFold(t, s) }, nil
	case "wildcard":
		s, ok := arg.(string)
		if !ok {
			return nil, invalidEvent("wildcard match pattern must be a string")
		}
		g, err := evCompileWildcard(s)
		if err != nil {
			return nil, err
		}
		return func(x any) bool { t, ok := x.(string); return ok && g.match(t) }, nil
	case "numeric":
		return evCompileNumeric(arg)
	case "cidr":
		return evCompileCIDR(arg)
	case "anything-but":
		return evAnythingBut(arg)
	default:
		return nil, invalidEvent("Unrecognized match type %s", op)
	}
}

// evAffixTest compiles a prefix or suffix argument: a string, or
// {"equals-ignore-case": string}.
func evAffixTest(op string, arg any) (func(string) bool, error) {
	has := strings.HasPrefix
	if op == "suffix" {
		has = strings.HasSuffix
	}
	switch a := arg.(type) {
	case string:
		return func(s string) bool { return has(s, a) }, nil
	case map[string]any:
		if len(a) != 1 {
			return nil, invalidEvent("Only one key allowed in match expression")
		}
		v, ok := a["equals-ignore-case"]
		if !ok {
			for k := range a {
				return nil, invalidEvent("Unsupported %s pattern: %s", op, k)
			}
		}
		s, ok := v.(string)
		if !ok {
			return nil, invalidEvent("equals-ignore-case match pattern must be a string")
		}
		low := strings.ToLower(s)
		return func(t string) bool { return has(strings.ToLower(t), low) }, nil
	default:
		return nil, invalidEvent("%s match pattern must be a string", op)
	}
}

func evCompileNumeric(arg any) (evMatcher, error) {
	list, ok := arg.([]any)
	if !ok {
		return nil, invalidEvent("Value of numeric must be an array.")
	}
	if len(list) == 0 {
		return nil, invalidEvent("Invalid member in numeric match: ]")
	}
	num := func(i int, op string) (float64, error) {
		if i >= len(list) {
			return 0, invalidEvent("Value of %s must be numeric", evOpName(op))
		}
		n, ok := list[i].(json.Number)
		if !ok {
			return 0, invalidEvent("Value of %s must be numeric", evOpName(op))
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, invalidEvent("Value of %s must be numeric", evOpName(op))
		}
		return f, nil
	}
	op1, ok := list[0].(string)
	if !ok {
		return nil, invalidEvent("Invalid member in numeric match: %s", evJSONText(list[0]))
	}
	var r evRange
	switch op1 {
	case "=", "<", "<=":
		v, err := num(1, op1)
		if err != nil {
			return nil, err
		}
		if len(list) > 2 {
			return nil, invalidEvent("Too many elements in numeric expression")
		}
		switch op1 {
		case "=":
			r = evRange{lo: v, hi: v, hasLo: true, hasHi: true}
		case "<":
			r = evRange{hi: v, hasHi: true, openHi: true}
		case "<=":
			r = evRange{hi: v, hasHi: true}
		}
	case ">", ">=":
		v, err := num(1, op1)
		if err != nil {
			return nil, err
		}
		r = evRange{lo: v, hasLo: true, openLo: op1 == ">"}
		if len(list) > 2 {
			op2, ok := list[2].(string)
			if !ok {
				return nil, invalidEvent("Bad value in numeric range: %s", evJSONText(list[2]))
			}
			if op2 != "<" && op2 != "<=" {
				return nil, invalidEvent("Bad numeric range operator: %s", op2)
			}
			top, err := num(3, op2)
			if err != nil {
				return nil, err
			}
			if len(list) > 4 {
				return nil, invalidEvent("Too many terms in numeric range expression")
			}
			if top <= v {
				return nil, invalidEvent("Bottom must be less than top")
			}
			r.hi, r.hasHi, r.openHi = top, true, op2 == "<"
		}
	default:
		return nil, invalidEvent("Unrecognized numeric range operator: %s", op1)
	}
	return func(x any) bool {
		n, ok := x.(json.Number)
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(n), 64)
		return err == nil && r.contains(f)
	}, nil
}

func evOpName(op string) string {
	if op == "=" {
		return "equals"
	}
	return op
}

// evJSONText renders a decoded JSON value for an error message.
func evJSONText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type evRange struct {
	lo, hi         float64
	hasLo, hasHi   bool
	openLo, openHi bool
}

func (r evRange) contains(f float64) bool {
	if r.hasLo && (f < r.lo || r.openLo && f == r.lo) {
		return false
	}
	if r.hasHi && (f > r.hi || r.openHi && f == r.hi) {
		return false
	}
	return true
}

func evCompileCIDR(arg any) (evMatcher, error) {
	s, ok := arg.(string)
	if !ok {
		return nil, invalidEvent("prefix match pattern must be a string")
	}
	addr, bits, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(bits, "/") {
		return nil, invalidEvent("Malformed CIDR, one '/' required")
	}
	if _, err := strconv.Atoi(bits); err != nil {
		return nil, invalidEvent("Malformed CIDR, mask bits must be an integer")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return nil, invalidEvent("Nonstandard IP address: %s", addr)
	}
	p = p.Masked()
	return func(x any) bool {
		t, ok := x.(string)
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(t)
		return err == nil && p.Contains(a)
	}, nil
}

func evAnythingBut(arg any) (evMatcher, error) {
	switch a := arg.(type) {
	case string:
		return func(x any) bool { t, ok := x.(string); return !ok || t != a }, nil
	case json.Number:
		eq := evExactNumber(a)
		return func(x any) bool { _, ok := x.(json.Number); return ok && !eq(x) }, nil
	case []any:
		return evAnythingButList(a)
	case map[string]any:
		if len(a) == 0 {
			return nil, invalidEvent("Anything-But expression name not found")
		}
		if len(a) > 1 {
			return nil, invalidEvent("Only one key allowed in match expression")
		}
		for op, v := range a {
			return evAnythingButOperator(op, v)
		}
	}
	return nil, invalidEvent("Value of anything-but must be an array or single string/number value.")
}

func evAnythingButList(list []any) (evMatcher, error) {
	var strs []string
	var nums []evMatcher
	for _, v := range list {
		switch v := v.(type) {
		case string:
			strs = append(strs, v)
		case json.Number:
			nums = append(nums, evExactNumber(v))
		default:
			return nil, invalidEvent("Inside anything but list, start|null|boolean is not supported.")
		}
	}
	if (len(strs) > 0) == (len(nums) > 0) {
		return nil, invalidEvent("Inside anything but list, either all values are number or string, mixed type is not supported")
	}
	if len(strs) > 0 {
		return func(x any) bool { t, ok := x.(string); return !ok || !slices.Contains(strs, t) }, nil
	}
	return func(x any) bool {
		if _, ok := x.(json.Number); !ok {
			return false
		}
		for _, eq := range nums {
			if eq(x) {
				return false
			}
		}
		return true
	}, nil
}

// evAnythingButOperator compiles anything-but's object forms; each takes a
// string or a non-empty list of strings.
func evAnythingButOperator(op string, v any) (evMatcher, error) {
	switch op {
	case "prefix", "suffix", "equals-ignore-case", "wildcard":
	default:
		return nil, invalidEvent("Unsupported anything-but pattern: %s", op)
	}
	var args []string
	switch v := v.(type) {
	case string:
		args = []string{v}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, invalidEvent("Inside anything-but/%s list, number|start|null|boolean is not supported.", op)
			}
			args = append(args, s)
		}
		if len(args) == 0 {
			return nil, invalidEvent("Empty arrays are not allowed")
		}
	default:
		if op == "prefix" || op == "suffix" {
			return nil, invalidEvent("prefix/suffix match pattern must be a string")
		}
		return nil, invalidEvent("%s match pattern must be a string", op)
	}
	var tests []func(string) bool
	for _, s := range args {
		switch op {
		case "prefix", "suffix":
			if s == "" {
				return nil, invalidEvent("Null prefix/suffix not allowed")
			}
			t, _ := evAffixTest(op, s)
			tests = append(tests, t)
		case "equals-ignore-case":
			tests = append(tests, func(t string) bool { return strings.EqualFold(t, s) })
		case "wildcard":
			g, err := evCompileWildcard(s)
			if err != nil {
				return nil, err
			}
			tests = append(tests, g.match)
		}
	}
	return func(x any) bool {
		t, ok := x.(string)
		if !ok {
			return true
		}
		for _, test := range tests {
			if test(t) {
				return false
			}
		}
		return true
	}, nil
}

// evGlob is a compiled wildcard: literal segments between '*'s.
type evGlob struct {
	segs []string // len(segs) = stars + 1
}

// evCompileWildcard parses a wildcard pattern: '*' matches any run of
// characters (including none), "\*" is a literal star and "\\" a literal
// backslash.
func evCompileWildcard(s string) (evGlob, error) {
	var g evGlob
	var cur strings.Builder
	prevStar := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '*':
			if prevStar {
				return g, invalidEvent("Consecutive wildcard characters at pos %d", i)
			}
			g.segs = append(g.segs, cur.String())
			cur.Reset()
			prevStar = true
			continue
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '*' && s[i+1] != '\\') {
				return g, invalidEvent("Invalid escape character at pos %d", i)
			}
			i++
			cur.WriteByte(s[i])
		default:
			cur.WriteByte(c)
		}
		prevStar = false
	}
	g.segs = append(g.segs, cur.String())
	return g, nil
}

func (g evGlob) match(s string) bool {
	if len(g.segs) == 1 {
		return s == g.segs[0]
	}
	first, last := g.segs[0], g.segs[len(g.segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	mid := s[len(first) : len(s)-len(last)]
	for _, seg := range g.segs[1 : len(g.segs)-1] {
		i := strings.Index(mid, seg)
		if i < 0 {
			return false
		}
		mid = mid[i+len(seg):]
	}
	return true
}

// Matching -------------------------------------------------------------------

// Match reports whether a decoded event (numbers as json.Number, as
// DecodeJSON leaves them) matches the pattern.
func (p *Event) Match(event map[string]any) bool {
	return p.root.match(event, true)
}

// MatchJSON decodes a JSON event and matches it.
func (p *Event) MatchJSON(event []byte) (bool, error) {
	ev, err := DecodeEvent(event)
	if err != nil {
		return false, err
	}
	return p.Match(ev), nil
}

// match applies an object pattern to an event value that may be missing,
// an object, an array (any element may match) or a scalar (which has no
// fields).
func (o *evObject) match(v any, present bool) bool {
	if list, ok := v.([]any); ok && present {
		if len(list) == 0 {
			return o.matchObject(nil)
		}
		for _, e := range list {
			if o.match(e, true) {
				return true
			}
		}
		return false
	}
	m, _ := v.(map[string]any)
	return o.matchObject(m)
}

// matchObject applies the pattern to an object; nil stands for a missing
// or non-object value, whose fields are all missing.
func (o *evObject) matchObject(m map[string]any) bool {
	for _, f := range o.fields {
		v, ok := m[f.key]
		if !f.match(v, ok) {
			return false
		}
	}
	for _, alts := range o.ors {
		if !slices.ContainsFunc(alts, func(a *evObject) bool { return a.matchObject(m) }) {
			return false
		}
	}
	return true
}

func (f evField) match(v any, present bool) bool {
	if f.nested != nil {
		return f.nested.match(v, present)
	}
	var leaves []any
	if present {
		leaves = evAppendLeaves(leaves, v)
	}
	for _, want := range f.exists {
		if want == (len(leaves) > 0) {
			return true
		}
	}
	for _, leaf := range leaves {
		for _, m := range f.values {
			if m(leaf) {
				return true
			}
		}
	}
	return false
}

// evAppendLeaves appends v's leaf values: v itself when it is a scalar, the
// leaves of its elements when it is an array, nothing for an object.
func evAppendLeaves(dst []any, v any) []any {
	switch v := v.(type) {
	case map[string]any:
		return dst
	case []any:
		for _, e := range v {
			dst = evAppendLeaves(dst, e)
		}
		return dst
	default:
		return append(dst, v)
	}
}
