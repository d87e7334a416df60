package pattern

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Filter policy scopes.
const (
	ScopeMessageAttributes = "MessageAttributes"
	ScopeMessageBody       = "MessageBody"
)

// Filter policy limits (AWS's "subscription filter policy constraints").
const (
	filterMaxBytes        = 256 * 1024
	filterMaxKeys         = 5
	filterMaxCombinations = 150
	filterMaxNumber       = 1e9
	filterMaxDepth        = 32
)

// FilterPolicyError says why a filter policy or its scope is invalid. Its
// message is SNS's InvalidParameter text ("Invalid parameter: FilterPolicy: …").
type FilterPolicyError struct {
	Message string
}

func (e *FilterPolicyError) Error() string { return e.Message }

func polPolicyErr(format string, args ...any) error {
	return &FilterPolicyError{Message: "Invalid parameter: FilterPolicy: " + fmt.Sprintf(format, args...)}
}

// ValidateFilter checks a subscription filter policy for the scope
// (MessageAttributes when empty). An empty policy, or "{}", is valid and
// matches every message.
func ValidateFilter(policy, scope string) error {
	_, err := CompileFilter(policy, scope)
	return err
}

// MatchFilter reports whether a message passes the policy: with scope
// MessageAttributes (the default) the policy is matched against the
// message's attributes; with MessageBody against the body, which must be a
// JSON object (any other body never matches). An invalid policy returns a
// *FilterPolicyError. The result depends only on the arguments.
//
// Semantics: keys are ANDed, the conditions listed for one key are ORed,
// "$or" takes an array of policies of which one must match. Conditions are
// exact strings, numbers, true, false and null; {"prefix"}, {"suffix"},
// {"equals-ignore-case"}, {"anything-but": value | [values] | {"prefix"} |
// {"suffix"}}, {"numeric": [op, n (, op, n)]}, {"exists": bool} and
// {"cidr": "10.0.0.0/8"}. A String.Array attribute or a JSON array in the
// body matches when any element does. Binary attributes are ignored.
func MatchFilter(policy, scope string, attrs map[string]Attribute, body string) (bool, error) {
	fp, err := CompileFilter(policy, scope)
	if err != nil {
		return false, err
	}
	return fp.Match(attrs, body), nil
}

// Filter is a compiled policy; nil matches everything.
type Filter struct {
	scope string
	root  filterExpr
}

// filterExpr is a conjunction of leaves and $or groups.
type filterExpr struct {
	leaves []filterLeaf
	ors    [][]filterExpr // each group: one of its expressions must match
}

// filterLeaf is one key path (one element in attribute scope) and the
// conditions of which one must hold.
type filterLeaf struct {
	path  []string
	conds []polCond
}

type polCondKind int

const (
	polCondExact polCondKind = iota
	polCondPrefix
	polCondSuffix
	polCondIgnoreCase
	polCondAnythingBut
	polCondAnythingButPrefix
	polCondAnythingButSuffix
	polCondNumeric
	polCondExists
	polCondCIDR
)

type polCond struct {
	kind   polCondKind
	value  polValue   // exact
	str    string     // prefix, suffix, ignore-case, anything-but prefix/suffix
	values []polValue // anything-but
	ranges []polRange // numeric
	exists bool
	prefix netip.Prefix
}

type polRange struct {
	op string
	n  float64
}

// polValue is a scalar from a policy, an attribute or a body.
type polValue struct {
	kind byte // 's' string, 'n' number, 'b' bool, 'z' null
	s    string
	n    float64
	b    bool
}

func (v polValue) equal(o polValue) bool {
	if v.kind != o.kind {
		return false
	}
	switch v.kind {
	case 's':
		return v.s == o.s
	case 'n':
		return v.n == o.n
	case 'b':
		return v.b == o.b
	}
	return true
}

// CompileFilter parses and validates a policy; an empty one (or {})
// compiles to nil.
func CompileFilter(policy, scope string) (*Filter, error) {
	switch scope {
	case "":
		scope = ScopeMessageAttributes
	case ScopeMessageAttributes, ScopeMessageBody:
	default:
		return nil, &FilterPolicyError{Message: fmt.Sprintf("Invalid parameter: FilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes", scope)}
	}
	if strings.TrimSpace(policy) == "" {
		return nil, nil
	}
	if len(policy) > filterMaxBytes {
		return nil, polPolicyErr("Filter policy is too long")
	}
	raw, err := polDecodeJSON(policy)
	if err != nil {
		return nil, polPolicyErr("failed to parse JSON.")
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, polPolicyErr("Filter policy must be a JSON object")
	}
	if len(obj) == 0 {
		return nil, nil
	}
	keys := 0
	for k := range obj {
		if k != "$or" {
			keys++
		}
	}
	if keys > filterMaxKeys {
		return nil, polPolicyErr("Filter policy can not have more than %d keys", filterMaxKeys)
	}
	c := polCompiler{scope: scope}
	root, err := c.object(obj, nil, 0)
	if err != nil {
		return nil, err
	}
	if polCombinations(root) > filterMaxCombinations {
		return nil, polPolicyErr("Filter policy is too complex")
	}
	return &Filter{scope: scope, root: root}, nil
}

// polDecodeJSON decodes one JSON value, keeping numbers exact.
func polDecodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

type polCompiler struct {
	scope string
}

func polSortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c polCompiler) object(obj map[string]any, path []string, depth int) (filterExpr, error) {
	if depth > filterMaxDepth {
		return filterExpr{}, polPolicyErr("Filter policy is too deeply nested")
	}
	var e filterExpr
	for _, k := range polSortedKeys(obj) {
		v := obj[k]
		if k == "$or" {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return filterExpr{}, polPolicyErr(`"$or" must be an array of objects`)
			}
			group := make([]filterExpr, 0, len(arr))
			for _, el := range arr {
				sub, ok := el.(map[string]any)
				if !ok || len(sub) == 0 {
					return filterExpr{}, polPolicyErr(`"$or" must be an array of objects`)
				}
				se, err := c.object(sub, path, depth+1)
				if err != nil {
					return filterExpr{}, err
				}
				group = append(group, se)
			}
			e.ors = append(e.ors, group)
			continue
		}
		p := append(append([]string(nil), path...), k)
		switch v := v.(type) {
		case map[string]any:
			if c.scope != ScopeMessageBody {
				return filterExpr{}, polPolicyErr("Filter policy scope MessageAttributes does not support nested filter policy")
			}
			if len(v) == 0 {
				return filterExpr{}, polPolicyErr(`"%s" must be an object or an array`, k)
			}
			sub, err := c.object(v, p, depth+1)
			if err != nil {
				return filterExpr{}, err
			}
			e.leaves = append(e.leaves, sub.leaves...)
			e.ors = append(e.ors, sub.ors...)
		case []any:
			if len(v) == 0 {
				return filterExpr{}, polPolicyErr("Empty arrays are not allowed")
			}
			leaf := filterLeaf{path: p}
			for _, el := range v {
				cond, err := polCondition(el)
				if err != nil {
					return filterExpr{}, err
				}
				leaf.conds = append(leaf.conds, cond)
			}
			e.leaves = append(e.leaves, leaf)
		default:
			return filterExpr{}, polPolicyErr(`"%s" must be an object or an array`, k)
		}
	}
	return e, nil
}

// polCombinations counts the value combinations of an expression (AWS limits
// a policy to 150).
func polCombinations(e filterExpr) int {
	n := 1
	for _, l := range e.leaves {
		n = polCapMul(n, len(l.conds))
	}
	for _, g := range e.ors {
		sum := 0
		for _, sub := range g {
			sum += polCombinations(sub)
			if sum > filterMaxCombinations {
				break
			}
		}
		n = polCapMul(n, sum)
	}
	return n
}

func polCapMul(a, b int) int {
	if a > filterMaxCombinations || b > filterMaxCombinations || a*b > filterMaxCombinations {
		return filterMaxCombinations + 1
	}
	return a * b
}

func polPolicyNumber(n json.Number, what string) (float64, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f <= -filterMaxNumber || f >= filterMaxNumber {
		return 0, polPolicyErr("%s must be a number between -1000000000 and 1000000000 (exclusive), got %s", what, n)
	}
	return f, nil
}

// polScalar converts a policy value to an exact-match value.
func polScalar(v any) (polValue, bool, error) {
	switch v := v.(type) {
	case string:
		return polValue{kind: 's', s: v}, true, nil
	case json.Number:
		f, err := polPolicyNumber(v, "Numeric value")
		return polValue{kind: 'n', n: f}, true, err
	case bool:
		return polValue{kind: 'b', b: v}, true, nil
	case nil:
		return polValue{kind: 'z'}, true, nil
	}
	return polValue{}, false, nil
}

func polCondition(v any) (polCond, error) {
	if sv, ok, err := polScalar(v); ok || err != nil {
		return polCond{kind: polCondExact, value: sv}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return polCond{}, polPolicyErr("Match value must be String, number, true, false, or null")
	}
	if len(obj) != 1 {
		return polCond{}, polPolicyErr("Only one key allowed in match expression")
	}
	var op string
	var arg any
	for k, a := range obj {
		op, arg = k, a
	}
	str := func() (string, error) {
		s, ok := arg.(string)
		if !ok {
			return "", polPolicyErr("Value of %s must be a string", op)
		}
		return s, nil
	}
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, err := str()
		if err != nil {
			return polCond{}, err
		}
		kind := map[string]polCondKind{"prefix": polCondPrefix, "suffix": polCondSuffix, "equals-ignore-case": polCondIgnoreCase}[op]
		return polCond{kind: kind, str: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return polCond{}, polPolicyErr("exists match pattern must be either true or false.")
		}
		return polCond{kind: polCondExists, exists: b}, nil
	case "cidr":
		s, err := str()
		if err != nil {
			return polCond{}, err
		}
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return polCond{}, polPolicyErr("Malformed CIDR, one '/' required: %s", s)
		}
		return polCond{kind: polCondCIDR, prefix: p.Masked()}, nil
	case "numeric":
		return polNumericCond(arg)
	case "anything-but":
		return polAnythingBut(arg)
	}
	return polCond{}, polPolicyErr("Unrecognized match type %s", op)
}

func polAnythingBut(arg any) (polCond, error) {
	switch a := arg.(type) {
	case string, json.Number:
		sv, _, err := polScalar(a)
		return polCond{kind: polCondAnythingBut, values: []polValue{sv}}, err
	case []any:
		if len(a) == 0 {
			return polCond{}, polPolicyErr("Empty arrays are not allowed")
		}
		c := polCond{kind: polCondAnythingBut}
		for _, el := range a {
			switch el.(type) {
			case string, json.Number:
			default:
				return polCond{}, polPolicyErr("Inside anything but list, start|null|boolean is not supported.")
			}
			sv, _, err := polScalar(el)
			if err != nil {
				return polCond{}, err
			}
			c.values = append(c.values, sv)
		}
		return c, nil
	case map[string]any:
		if len(a) != 1 {
			return polCond{}, polPolicyErr("Only one key allowed in match expression")
		}
		for k, v := range a {
			s, ok := v.(string)
			switch {
			case k != "prefix" && k != "suffix":
				return polCond{}, polPolicyErr("Unsupported anything-but pattern: %s", k)
			case !ok:
				return polCond{}, polPolicyErr("Value of %s must be a string", k)
			case k == "prefix":
				return polCond{kind: polCondAnythingButPrefix, str: s}, nil
			default:
				return polCond{kind: polCondAnythingButSuffix, str: s}, nil
			}
		}
	}
	return polCond{}, polPolicyErr("Value of anything-but must be an array or single string/number value.")
}

func polNumericCond(arg any) (polCond, error) {
	arr, ok := arg.([]any)
	if !ok {
		return polCond{}, polPolicyErr("Value of numeric must be an array.")
	}
	if len(arr) == 0 {
		return polCond{}, polPolicyErr("Invalid member in numeric match: ]")
	}
	c := polCond{kind: polCondNumeric}
	for i := 0; i < len(arr); i += 2 {
		op, ok := arr[i].(string)
		if !ok {
			return polCond{}, polPolicyErr("Invalid member in numeric match: %v", arr[i])
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return polCond{}, polPolicyErr("Unrecognized numeric range operator: %s", op)
		}
		if i+1 >= len(arr) {
			return polCond{}, polPolicyErr("Value of %s must be numeric", op)
		}
		num, ok := arr[i+1].(json.Number)
		if !ok {
			return polCond{}, polPolicyErr("Value of %s must be numeric", op)
		}
		n, err := polPolicyNumber(num, "Value of "+op)
		if err != nil {
			return polCond{}, err
		}
		c.ranges = append(c.ranges, polRange{op: op, n: n})
	}
	switch len(c.ranges) {
	case 1:
	case 2:
		lo, hi := c.ranges[0], c.ranges[1]
		if lo.op != ">" && lo.op != ">=" {
			return polCond{}, polPolicyErr("Too many elements in numeric expression")
		}
		if hi.op != "<" && hi.op != "<=" {
			return polCond{}, polPolicyErr("Bad numeric range operator: %s", hi.op)
		}
		if hi.n <= lo.n {
			return polCond{}, polPolicyErr("Bottom must be less than top")
		}
	default:
		return polCond{}, polPolicyErr("Too many elements in numeric expression")
	}
	return c, nil
}

// Matching -------------------------------------------------------------------

// polSubject is what a policy is matched against: message attributes or a
// decoded JSON body.
type polSubject struct {
	attrs map[string]Attribute
	body  map[string]any
	scope string
}

// Match reports whether the message passes; a nil policy passes everything.
func (fp *Filter) Match(attrs map[string]Attribute, body string) bool {
	if fp == nil {
		return true
	}
	s := polSubject{attrs: attrs, scope: fp.scope}
	if fp.scope == ScopeMessageBody {
		v, err := polDecodeJSON(body)
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			return false
		}
		s.body = obj
	}
	return s.expr(fp.root)
}

func (s polSubject) expr(e filterExpr) bool {
	for _, l := range e.leaves {
		present, values := s.lookup(l.path)
		ok := false
		for _, c := range l.conds {
			if c.match(present, values) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, g := range e.ors {
		ok := false
		for _, sub := range g {
			if s.expr(sub) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// lookup returns whether the key path is present and its scalar values.
func (s polSubject) lookup(path []string) (bool, []polValue) {
	if s.scope != ScopeMessageBody {
		a, ok := s.attrs[path[0]]
		if !ok {
			return false, nil
		}
		return polAttributeValues(a)
	}
	var out []polValue
	polCollect(s.body, path, &out)
	return len(out) > 0, out
}

// polAttributeValues reads a message attribute as filter values: String as a
// string, Number as a number, String.Array as its JSON elements; Binary is
// ignored (absent).
func polAttributeValues(a Attribute) (bool, []polValue) {
	base, custom, _ := strings.Cut(a.DataType, ".")
	switch base {
	case "String":
		if custom == "Array" {
			v, err := polDecodeJSON(a.StringValue)
			arr, ok := v.([]any)
			if err != nil || !ok {
				return true, nil
			}
			var out []polValue
			for _, el := range arr {
				if sv, ok := polBodyScalar(el); ok {
					out = append(out, sv)
				}
			}
			return true, out
		}
		return true, []polValue{{kind: 's', s: a.StringValue}}
	case "Number":
		f, err := strconv.ParseFloat(strings.TrimSpace(a.StringValue), 64)
		if err != nil {
			return true, nil
		}
		return true, []polValue{{kind: 'n', n: f}}
	}
	return false, nil
}

func polBodyScalar(v any) (polValue, bool) {
	switch v := v.(type) {
	case string:
		return polValue{kind: 's', s: v}, true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return polValue{}, false
		}
		return polValue{kind: 'n', n: f}, true
	case bool:
		return polValue{kind: 'b', b: v}, true
	case nil:
		return polValue{kind: 'z'}, true
	}
	return polValue{}, false
}

// polCollect appends the scalar leaves at path under v, descending into
// arrays at every level (an array matches when any element does).
func polCollect(v any, path []string, out *[]polValue) {
	switch v := v.(type) {
	case []any:
		for _, el := range v {
			polCollect(el, path, out)
		}
		return
	case map[string]any:
		if len(path) == 0 {
			return // an object is not a leaf
		}
		child, ok := v[path[0]]
		if !ok {
			return
		}
		polCollect(child, path[1:], out)
		return
	}
	if len(path) > 0 {
		return
	}
	if sv, ok := polBodyScalar(v); ok {
		*out = append(*out, sv)
	}
}

func (c polCond) match(present bool, values []polValue) bool {
	if c.kind == polCondExists {
		return present == c.exists
	}
	for _, v := range values {
		if c.matchValue(v) {
			return true
		}
	}
	return false
}

func (c polCond) matchValue(v polValue) bool {
	switch c.kind {
	case polCondExact:
		return c.value.equal(v)
	case polCondPrefix:
		return v.kind == 's' && strings.HasPrefix(v.s, c.str)
	case polCondSuffix:
		return v.kind == 's' && strings.HasSuffix(v.s, c.str)
	case polCondIgnoreCase:
		return v.kind == 's' && strings.EqualFold(v.s, c.str)
	case polCondAnythingBut:
		for _, x := range c.values {
			if x.equal(v) {
				return false
			}
		}
		return true
	case polCondAnythingButPrefix:
		return v.kind != 's' || !strings.HasPrefix(v.s, c.str)
	case polCondAnythingButSuffix:
		return v.kind != 's' || !strings.HasSuffix(v.s, c.str)
	case polCondNumeric:
		if v.kind != 'n' {
			return false
		}
		for _, r := range c.ranges {
			if !r.holds(v.n) {
				return false
			}
		}
		return true
	case polCondCIDR:
		if v.kind != 's' {
			return false
		}
		a, err := netip.ParseAddr(v.s)
		return err == nil && c.prefix.Contains(a.Unmap())
	}
	return false
}

func (r polRange) holds(n float64) bool {
	switch r.op {
	case "=":
		return n == r.n
	case "<":
		return n < r.n
	case "<=":
		return n <= r.n
	case ">":
		return n > r.n
	case ">=":
		return n >= r.n
	}
	return false
}
