package world

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
	snsFilterMaxBytes        = 256 * 1024
	snsFilterMaxKeys         = 5
	snsFilterMaxCombinations = 150
	snsFilterMaxNumber       = 1e9
	snsFilterMaxDepth        = 32
)

// FilterPolicyError says why a filter policy or its scope is invalid. Its
// message is SNS's InvalidParameter text ("Invalid parameter: FilterPolicy: …").
type FilterPolicyError struct {
	Message string
}

func (e *FilterPolicyError) Error() string { return e.Message }

func snsPolicyErr(format string, args ...any) error {
	return &FilterPolicyError{Message: "Invalid parameter: FilterPolicy: " + fmt.Sprintf(format, args...)}
}

// ValidateFilterPolicy checks a subscription filter policy for the scope
// (MessageAttributes when empty). An empty policy, or "{}", is valid and
// matches every message.
func ValidateFilterPolicy(policy, scope string) error {
	_, err := snsCompileFilter(policy, scope)
	return err
}

// MatchFilterPolicy reports whether a message passes the policy: with scope
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
func MatchFilterPolicy(policy, scope string, attrs map[string]MessageAttribute, body string) (bool, error) {
	fp, err := snsCompileFilter(policy, scope)
	if err != nil {
		return false, err
	}
	return fp.match(attrs, body), nil
}

// snsFilter is a compiled policy; nil matches everything.
type snsFilter struct {
	scope string
	root  snsFilterExpr
}

// snsFilterExpr is a conjunction of leaves and $or groups.
type snsFilterExpr struct {
	leaves []snsFilterLeaf
	ors    [][]snsFilterExpr // each group: one of its expressions must match
}

// snsFilterLeaf is one key path (one element in attribute scope) and the
// conditions of which one must hold.
type snsFilterLeaf struct {
	path  []string
	conds []snsCond
}

type snsCondKind int

const (
	snsCondExact snsCondKind = iota
	snsCondPrefix
	snsCondSuffix
	snsCondIgnoreCase
	snsCondAnythingBut
	snsCondAnythingButPrefix
	snsCondAnythingButSuffix
	snsCondNumeric
	snsCondExists
	snsCondCIDR
)

type snsCond struct {
	kind   snsCondKind
	value  snsValue   // exact
	str    string     // prefix, suffix, ignore-case, anything-but prefix/suffix
	values []snsValue // anything-but
	ranges []snsRange // numeric
	exists bool
	prefix netip.Prefix
}

type snsRange struct {
	op string
	n  float64
}

// snsValue is a scalar from a policy, an attribute or a body.
type snsValue struct {
	kind byte // 's' string, 'n' number, 'b' bool, 'z' null
	s    string
	n    float64
	b    bool
}

func (v snsValue) equal(o snsValue) bool {
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

// snsCompileFilter parses and validates a policy; an empty one (or {})
// compiles to nil.
func snsCompileFilter(policy, scope string) (*snsFilter, error) {
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
	if len(policy) > snsFilterMaxBytes {
		return nil, snsPolicyErr("Filter policy is too long")
	}
	raw, err := snsDecodeJSON(policy)
	if err != nil {
		return nil, snsPolicyErr("failed to parse JSON.")
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, snsPolicyErr("Filter policy must be a JSON object")
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
	if keys > snsFilterMaxKeys {
		return nil, snsPolicyErr("Filter policy can not have more than %d keys", snsFilterMaxKeys)
	}
	c := snsCompiler{scope: scope}
	root, err := c.object(obj, nil, 0)
	if err != nil {
		return nil, err
	}
	if snsCombinations(root) > snsFilterMaxCombinations {
		return nil, snsPolicyErr("Filter policy is too complex")
	}
	return &snsFilter{scope: scope, root: root}, nil
}

// snsDecodeJSON decodes one JSON value, keeping numbers exact.
func snsDecodeJSON(s string) (any, error) {
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

type snsCompiler struct {
	scope string
}

func snsSortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c snsCompiler) object(obj map[string]any, path []string, depth int) (snsFilterExpr, error) {
	if depth > snsFilterMaxDepth {
		return snsFilterExpr{}, snsPolicyErr("Filter policy is too deeply nested")
	}
	var e snsFilterExpr
	for _, k := range snsSortedKeys(obj) {
		v := obj[k]
		if k == "$or" {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return snsFilterExpr{}, snsPolicyErr(`"$or" must be an array of objects`)
			}
			group := make([]snsFilterExpr, 0, len(arr))
			for _, el := range arr {
				sub, ok := el.(map[string]any)
				if !ok || len(sub) == 0 {
					return snsFilterExpr{}, snsPolicyErr(`"$or" must be an array of objects`)
				}
				se, err := c.object(sub, path, depth+1)
				if err != nil {
					return snsFilterExpr{}, err
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
				return snsFilterExpr{}, snsPolicyErr("Filter policy scope MessageAttributes does not support nested filter policy")
			}
			if len(v) == 0 {
				return snsFilterExpr{}, snsPolicyErr(`"%s" must be an object or an array`, k)
			}
			sub, err := c.object(v, p, depth+1)
			if err != nil {
				return snsFilterExpr{}, err
			}
			e.leaves = append(e.leaves, sub.leaves...)
			e.ors = append(e.ors, sub.ors...)
		case []any:
			if len(v) == 0 {
				return snsFilterExpr{}, snsPolicyErr("Empty arrays are not allowed")
			}
			leaf := snsFilterLeaf{path: p}
			for _, el := range v {
				cond, err := snsCondition(el)
				if err != nil {
					return snsFilterExpr{}, err
				}
				leaf.conds = append(leaf.conds, cond)
			}
			e.leaves = append(e.leaves, leaf)
		default:
			return snsFilterExpr{}, snsPolicyErr(`"%s" must be an object or an array`, k)
		}
	}
	return e, nil
}

// snsCombinations counts the value combinations of an expression (AWS limits
// a policy to 150).
func snsCombinations(e snsFilterExpr) int {
	n := 1
	for _, l := range e.leaves {
		n = snsCapMul(n, len(l.conds))
	}
	for _, g := range e.ors {
		sum := 0
		for _, sub := range g {
			sum += snsCombinations(sub)
			if sum > snsFilterMaxCombinations {
				break
			}
		}
		n = snsCapMul(n, sum)
	}
	return n
}

func snsCapMul(a, b int) int {
	if a > snsFilterMaxCombinations || b > snsFilterMaxCombinations || a*b > snsFilterMaxCombinations {
		return snsFilterMaxCombinations + 1
	}
	return a * b
}

func snsPolicyNumber(n json.Number, what string) (float64, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f <= -snsFilterMaxNumber || f >= snsFilterMaxNumber {
		return 0, snsPolicyErr("%s must be a number between -1000000000 and 1000000000 (exclusive), got %s", what, n)
	}
	return f, nil
}

// snsScalar converts a policy value to an exact-match value.
func snsScalar(v any) (snsValue, bool, error) {
	switch v := v.(type) {
	case string:
		return snsValue{kind: 's', s: v}, true, nil
	case json.Number:
		f, err := snsPolicyNumber(v, "Numeric value")
		return snsValue{kind: 'n', n: f}, true, err
	case bool:
		return snsValue{kind: 'b', b: v}, true, nil
	case nil:
		return snsValue{kind: 'z'}, true, nil
	}
	return snsValue{}, false, nil
}

func snsCondition(v any) (snsCond, error) {
	if sv, ok, err := snsScalar(v); ok || err != nil {
		return snsCond{kind: snsCondExact, value: sv}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return snsCond{}, snsPolicyErr("Match value must be String, number, true, false, or null")
	}
	if len(obj) != 1 {
		return snsCond{}, snsPolicyErr("Only one key allowed in match expression")
	}
	var op string
	var arg any
	for k, a := range obj {
		op, arg = k, a
	}
	str := func() (string, error) {
		s, ok := arg.(string)
		if !ok {
			return "", snsPolicyErr("Value of %s must be a string", op)
		}
		return s, nil
	}
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, err := str()
		if err != nil {
			return snsCond{}, err
		}
		kind := map[string]snsCondKind{"prefix": snsCondPrefix, "suffix": snsCondSuffix, "equals-ignore-case": snsCondIgnoreCase}[op]
		return snsCond{kind: kind, str: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return snsCond{}, snsPolicyErr("exists match pattern must be either true or false.")
		}
		return snsCond{kind: snsCondExists, exists: b}, nil
	case "cidr":
		s, err := str()
		if err != nil {
			return snsCond{}, err
		}
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return snsCond{}, snsPolicyErr("Malformed CIDR, one '/' required: %s", s)
		}
		return snsCond{kind: snsCondCIDR, prefix: p.Masked()}, nil
	case "numeric":
		return snsNumericCond(arg)
	case "anything-but":
		return snsAnythingBut(arg)
	}
	return snsCond{}, snsPolicyErr("Unrecognized match type %s", op)
}

func snsAnythingBut(arg any) (snsCond, error) {
	switch a := arg.(type) {
	case string, json.Number:
		sv, _, err := snsScalar(a)
		return snsCond{kind: snsCondAnythingBut, values: []snsValue{sv}}, err
	case []any:
		if len(a) == 0 {
			return snsCond{}, snsPolicyErr("Empty arrays are not allowed")
		}
		c := snsCond{kind: snsCondAnythingBut}
		for _, el := range a {
			switch el.(type) {
			case string, json.Number:
			default:
				return snsCond{}, snsPolicyErr("Inside anything but list, start|null|boolean is not supported.")
			}
			sv, _, err := snsScalar(el)
			if err != nil {
				return snsCond{}, err
			}
			c.values = append(c.values, sv)
		}
		return c, nil
	case map[string]any:
		if len(a) != 1 {
			return snsCond{}, snsPolicyErr("Only one key allowed in match expression")
		}
		for k, v := range a {
			s, ok := v.(string)
			switch {
			case k != "prefix" && k != "suffix":
				return snsCond{}, snsPolicyErr("Unsupported anything-but pattern: %s", k)
			case !ok:
				return snsCond{}, snsPolicyErr("Value of %s must be a string", k)
			case k == "prefix":
				return snsCond{kind: snsCondAnythingButPrefix, str: s}, nil
			default:
				return snsCond{kind: snsCondAnythingButSuffix, str: s}, nil
			}
		}
	}
	return snsCond{}, snsPolicyErr("Value of anything-but must be an array or single string/number value.")
}

func snsNumericCond(arg any) (snsCond, error) {
	arr, ok := arg.([]any)
	if !ok {
		return snsCond{}, snsPolicyErr("Value of numeric must be an array.")
	}
	if len(arr) == 0 {
		return snsCond{}, snsPolicyErr("Invalid member in numeric match: ]")
	}
	c := snsCond{kind: snsCondNumeric}
	for i := 0; i < len(arr); i += 2 {
		op, ok := arr[i].(string)
		if !ok {
			return snsCond{}, snsPolicyErr("Invalid member in numeric match: %v", arr[i])
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return snsCond{}, snsPolicyErr("Unrecognized numeric range operator: %s", op)
		}
		if i+1 >= len(arr) {
			return snsCond{}, snsPolicyErr("Value of %s must be numeric", op)
		}
		num, ok := arr[i+1].(json.Number)
		if !ok {
			return snsCond{}, snsPolicyErr("Value of %s must be numeric", op)
		}
		n, err := snsPolicyNumber(num, "Value of "+op)
		if err != nil {
			return snsCond{}, err
		}
		c.ranges = append(c.ranges, snsRange{op: op, n: n})
	}
	switch len(c.ranges) {
	case 1:
	case 2:
		lo, hi := c.ranges[0], c.ranges[1]
		if lo.op != ">" && lo.op != ">=" {
			return snsCond{}, snsPolicyErr("Too many elements in numeric expression")
		}
		if hi.op != "<" && hi.op != "<=" {
			return snsCond{}, snsPolicyErr("Bad numeric range operator: %s", hi.op)
		}
		if hi.n <= lo.n {
			return snsCond{}, snsPolicyErr("Bottom must be less than top")
		}
	default:
		return snsCond{}, snsPolicyErr("Too many elements in numeric expression")
	}
	return c, nil
}

// Matching -------------------------------------------------------------------

// snsSubject is what a policy is matched against: message attributes or a
// decoded JSON body.
type snsSubject struct {
	attrs map[string]MessageAttribute
	body  map[string]any
	scope string
}

// match reports whether the message passes; a nil policy passes everything.
func (fp *snsFilter) match(attrs map[string]MessageAttribute, body string) bool {
	if fp == nil {
		return true
	}
	s := snsSubject{attrs: attrs, scope: fp.scope}
	if fp.scope == ScopeMessageBody {
		v, err := snsDecodeJSON(body)
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			return false
		}
		s.body = obj
	}
	return s.expr(fp.root)
}

func (s snsSubject) expr(e snsFilterExpr) bool {
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
func (s snsSubject) lookup(path []string) (bool, []snsValue) {
	if s.scope != ScopeMessageBody {
		a, ok := s.attrs[path[0]]
		if !ok {
			return false, nil
		}
		return snsAttributeValues(a)
	}
	var out []snsValue
	snsCollect(s.body, path, &out)
	return len(out) > 0, out
}

// snsAttributeValues reads a message attribute as filter values: String as a
// string, Number as a number, String.Array as its JSON elements; Binary is
// ignored (absent).
func snsAttributeValues(a MessageAttribute) (bool, []snsValue) {
	base, custom, _ := strings.Cut(a.DataType, ".")
	switch base {
	case "String":
		if custom == "Array" {
			v, err := snsDecodeJSON(a.StringValue)
			arr, ok := v.([]any)
			if err != nil || !ok {
				return true, nil
			}
			var out []snsValue
			for _, el := range arr {
				if sv, ok := snsBodyScalar(el); ok {
					out = append(out, sv)
				}
			}
			return true, out
		}
		return true, []snsValue{{kind: 's', s: a.StringValue}}
	case "Number":
		f, err := strconv.ParseFloat(strings.TrimSpace(a.StringValue), 64)
		if err != nil {
			return true, nil
		}
		return true, []snsValue{{kind: 'n', n: f}}
	}
	return false, nil
}

func snsBodyScalar(v any) (snsValue, bool) {
	switch v := v.(type) {
	case string:
		return snsValue{kind: 's', s: v}, true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return snsValue{}, false
		}
		return snsValue{kind: 'n', n: f}, true
	case bool:
		return snsValue{kind: 'b', b: v}, true
	case nil:
		return snsValue{kind: 'z'}, true
	}
	return snsValue{}, false
}

// snsCollect appends the scalar leaves at path under v, descending into
// arrays at every level (an array matches when any element does).
func snsCollect(v any, path []string, out *[]snsValue) {
	switch v := v.(type) {
	case []any:
		for _, el := range v {
			snsCollect(el, path, out)
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
		snsCollect(child, path[1:], out)
		return
	}
	if len(path) > 0 {
		return
	}
	if sv, ok := snsBodyScalar(v); ok {
		*out = append(*out, sv)
	}
}

func (c snsCond) match(present bool, values []snsValue) bool {
	if c.kind == snsCondExists {
		return present == c.exists
	}
	for _, v := range values {
		if c.matchValue(v) {
			return true
		}
	}
	return false
}

func (c snsCond) matchValue(v snsValue) bool {
	switch c.kind {
	case snsCondExact:
		return c.value.equal(v)
	case snsCondPrefix:
		return v.kind == 's' && strings.HasPrefix(v.s, c.str)
	case snsCondSuffix:
		return v.kind == 's' && strings.HasSuffix(v.s, c.str)
	case snsCondIgnoreCase:
		return v.kind == 's' && strings.EqualFold(v.s, c.str)
	case snsCondAnythingBut:
		for _, x := range c.values {
			if x.equal(v) {
				return false
			}
		}
		return true
	case snsCondAnythingButPrefix:
		return v.kind != 's' || !strings.HasPrefix(v.s, c.str)
	case snsCondAnythingButSuffix:
		return v.kind != 's' || !strings.HasSuffix(v.s, c.str)
	case snsCondNumeric:
		if v.kind != 'n' {
			return false
		}
		for _, r := range c.ranges {
			if !r.holds(v.n) {
				return false
			}
		}
		return true
	case snsCondCIDR:
		if v.kind != 's' {
			return false
		}
		a, err := netip.ParseAddr(v.s)
		return err == nil && c.prefix.Contains(a.Unmap())
	}
	return false
}

func (r snsRange) holds(n float64) bool {
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
