package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// LoadAgent reads the agent configuration at path: ParseAgent, with each
// problem located as "path:line: ".
func LoadAgent(path string) (Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Agent{}, fmt.Errorf("read agent config: %w", err)
	}
	a, errs := parseAgent(data)
	if len(errs) > 0 {
		for _, e := range errs {
			e.File = path
		}
		return Agent{}, join(errs)
	}
	return a, nil
}

// ParseAgent decodes an agent configuration, fills in the defaults and
// validates it. Decoding is strict: unknown keys (with the nearest known key
// suggested), values of the wrong shape, durations without a unit and
// repeated keys are errors. The error reports every problem at once: decode
// problems and Validate's, one *FieldError each (see FieldError).
// An empty document is DefaultAgent().
func ParseAgent(data []byte) (Agent, error) {
	a, errs := parseAgent(data)
	if len(errs) > 0 {
		return Agent{}, join(errs)
	}
	return a, nil
}

func parseAgent(data []byte) (Agent, []*FieldError) {
	root, fe := parseDocument(data)
	if fe != nil {
		return Agent{}, []*FieldError{fe}
	}
	a := DefaultAgent()
	d := &decoder{lines: map[string]int{}, lookup: os.LookupEnv}
	if root != nil {
		d.value("", root, reflect.ValueOf(&a).Elem())
	}
	errs := d.errs
	for _, e := range a.validate() {
		if d.covered(e.Path) {
			continue // already reported where it was decoded
		}
		e.Line = d.line(e.Path)
		errs = append(errs, e)
	}
	return a, errs
}

// parseDocument parses data as one YAML document and returns its root, or
// nil for an empty document.
func parseDocument(data []byte) (*yaml.Node, *FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, &FieldError{Problem: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{Problem: "the file holds more than one YAML document", Fix: "keep only one", Line: extra.Line}
	} else if !errors.Is(err, io.EOF) {
		return nil, &FieldError{Problem: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if n := resolve(root); n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	return root, nil
}

// maxVisits bounds the values one document may expand to through aliases.
const maxVisits = 100_000

// decoder applies a YAML node tree to a Go value, field by field, collecting
// a FieldError for each problem instead of stopping at the first.
type decoder struct {
	errs   []*FieldError
	lines  map[string]int  // path → line of its value
	failed map[string]bool // paths with a decode problem, built by covered
	visits int
	lookup func(string) (string, bool) // for ${VAR} in scalar values
}

func (d *decoder) fail(path string, line int, problem, fix string) {
	d.errs = append(d.errs, &FieldError{Path: path, Problem: problem, Fix: fix, Line: line})
}

// covered reports whether a decode problem was already reported at path or
// at a block enclosing it.
func (d *decoder) covered(path string) bool {
	if d.failed == nil {
		d.failed = map[string]bool{}
		for _, e := range d.errs {
			d.failed[e.Path] = true
		}
	}
	for {
		if d.failed[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.failed[""]
		}
		path = path[:i]
	}
}

// line returns the line of path's value, or of its nearest enclosing block.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.lines[""]
		}
		path = path[:i]
	}
}

var durationType = reflect.TypeFor[Duration]()

// value decodes n into v. A null value leaves v as it is (its default).
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	n = resolve(n)
	d.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode {
		expanded, problem, fix := expandScalar(n, d.lookup)
		if problem != "" {
			d.fail(path, n.Line, problem, fix)
			return
		}
		n = expanded
	}
	if d.visits++; d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.fail(path, n.Line, "the document expands to too many values through aliases", "write the values out")
		}
		return
	}
	if v.Type() == durationType {
		dur, problem, fix := parseDurationNode(n)
		if problem != "" {
			d.fail(path, n.Line, problem, fix)
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(path, n, v)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(itemDefault(v.Type().Elem()))
		}
		d.value(path, n, v.Elem())
	case reflect.Slice:
		d.sequence(path, n, v)
	case reflect.Map:
		d.stringMap(path, n, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(path, n.Line, fmt.Sprintf("is %s, not a single value", describe(n)), "write a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		d.integer(path, n, v)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.fail(path, n.Line, fmt.Sprintf("is %s, not true or false", describe(n)), "write true or false")
			return
		}
		v.SetBool(b)
	default:
		// The schema has no other kinds; a new one must be taught here.
		d.fail(path, n.Line, fmt.Sprintf("has a type (%s) the decoder does not handle", v.Type()), "report this as a bug in lifeguard")
	}
}

func (d *decoder) integer(path string, n *yaml.Node, v reflect.Value) {
	var i int
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Decode(&i) == nil {
		v.SetInt(int64(i))
		return
	}
	fix := "write a whole number such as 3"
	if _, err := strconv.Atoi(n.Value); err == nil && n.Kind == yaml.ScalarNode {
		fix = "write the number without quotes"
	}
	d.fail(path, n.Line, fmt.Sprintf("is %s, not a whole number", describe(n)), fix)
}

// structure decodes a mapping into the struct v by its fields' yaml tags.
func (d *decoder) structure(path string, n *yaml.Node, v reflect.Value) {
	fs := fieldsOf(v.Type())
	if n.Kind != yaml.MappingNode {
		what := "is"
		if path == "" {
			what = "the file is"
		}
		d.fail(path, n.Line, fmt.Sprintf("%s %s, not a mapping", what, describe(n)), "use the keys "+strings.Join(fs.keys, ", "))
		return
	}
	for _, p := range d.pairs(path, n, 0) {
		i, ok := fs.index[p.key]
		if !ok {
			d.fail(keyPath(path, p.key), p.keyNode.Line, "unknown key", suggest(p.key, fs.keys))
			continue
		}
		val := resolve(p.val)
		kp := keyPath(path, p.key)
		if isNull(val) {
			d.lines[kp] = p.keyNode.Line
			continue // keep the default
		}
		d.value(kp, val, v.Field(i))
	}
}

// sequence decodes a list into the slice v; an empty list is nil.
func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	elem := v.Type().Elem()
	if n.Kind != yaml.SequenceNode {
		d.fail(path, n.Line, fmt.Sprintf("is %s, not a list", describe(n)), listFix(path, elem))
		return
	}
	if len(n.Content) == 0 {
		v.SetZero()
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		e := s.Index(i)
		if elem.Kind() == reflect.Struct {
			e.Set(itemDefault(elem).Elem())
		}
		item = resolve(item)
		if isNull(item) {
			d.lines[ip] = item.Line
			if elem.Kind() != reflect.Struct {
				d.fail(ip, item.Line, "has no value", `write a value, or "" for an empty one`)
			}
			continue
		}
		d.value(ip, item, e)
	}
	v.Set(s)
}

// stringMap decodes a mapping of strings into the map[string]string v; an
// empty mapping is nil.
func (d *decoder) stringMap(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n.Line, fmt.Sprintf("is %s, not a mapping", describe(n)), "write NAME: value pairs, such as {QUEUE: jobs}")
		return
	}
	pairs := d.pairs(path, n, 0)
	if len(pairs) == 0 {
		v.SetZero()
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(pairs))
	for _, p := range pairs {
		kp := keyPath(path, p.key)
		val := resolve(p.val)
		d.lines[kp] = val.Line
		switch {
		case isNull(val):
			d.fail(kp, val.Line, "has no value", `write "" for an empty value`)
		case val.Kind != yaml.ScalarNode:
			d.fail(kp, val.Line, fmt.Sprintf("is %s, not a single value", describe(val)), "write a string")
		default:
			expanded, problem, fix := expandScalar(val, d.lookup)
			if problem != "" {
				d.fail(kp, val.Line, problem, fix)
				continue
			}
			m.SetMapIndex(reflect.ValueOf(p.key), reflect.ValueOf(expanded.Value))
		}
	}
	v.Set(m)
}

type pair struct {
	key          string
	keyNode, val *yaml.Node
}

// maxMergeDepth bounds merge keys (<<) nested in merged mappings.
const maxMergeDepth = 8

// pairs returns a mapping's key/value pairs with merge keys (<<) applied:
// the mapping's own keys win over merged ones, earlier merged mappings over
// later ones. A key given twice and a key that is not a plain scalar are
// reported and left out.
func (d *decoder) pairs(path string, n *yaml.Node, depth int) []pair {
	var own []pair
	seen := map[string]int{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		if d.visits++; d.visits > maxVisits {
			return own
		}
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(path, k.Line, fmt.Sprintf("has a key that is %s", describe(k)), "keys are plain words")
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(path, val, depth)...)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(keyPath(path, k.Value), k.Line, fmt.Sprintf("is given twice (lines %d and %d)", line, k.Line), "keep one")
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{key: k.Value, keyNode: k, val: val})
	}
	for _, p := range merged {
		if _, ok := seen[p.key]; !ok {
			seen[p.key] = p.keyNode.Line
			own = append(own, p)
		}
	}
	return own
}

// merge returns the pairs a merge key's value contributes: one mapping or a
// list of mappings (usually aliases).
func (d *decoder) merge(path string, val *yaml.Node, depth int) []pair {
	val = resolve(val)
	if depth >= maxMergeDepth {
		d.fail(path, val.Line, "has merge keys (<<) nested too deeply", "write the values out")
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(path, val, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range val.Content {
			if m = resolve(m); m.Kind != yaml.MappingNode {
				d.fail(path, m.Line, fmt.Sprintf("merges (<<) %s", describe(m)), "merge mappings only, such as <<: *defaults")
				continue
			}
			out = append(out, d.pairs(path, m, depth+1)...)
		}
		return out
	default:
		d.fail(path, val.Line, fmt.Sprintf("merges (<<) %s", describe(val)), "merge mappings only, such as <<: *defaults")
		return nil
	}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names what a node is, for "is X, not Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "empty"
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	default:
		return "an alias"
	}
}

// listFix says how to write the list at path whose items are of type elem.
func listFix(path string, elem reflect.Type) string {
	switch {
	case strings.HasSuffix(path, ".command") || strings.HasSuffix(path, ".argv"):
		return `write the command as a list of arguments, such as ["/usr/local/bin/drain", "--wait"], or ["sh", "-c", "…"] for a shell`
	case elem.Kind() == reflect.Int:
		return "write a list of numbers, such as [3, 4]"
	default:
		return `start each item on its own line with "- "`
	}
}

// keyPath appends a mapping key to a path, quoting keys that are not plain
// words.
func keyPath(path, key string) string {
	if !plainKey(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// fields is a struct type's YAML keys in declaration order.
type fields struct {
	keys  []string
	index map[string]int
}

var fieldCache sync.Map // reflect.Type → fields

func fieldsOf(t reflect.Type) fields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(fields)
	}
	f := fields{index: map[string]int{}}
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		f.keys = append(f.keys, key)
		f.index[key] = i
	}
	fieldCache.Store(t, f)
	return f
}

// schemaKeys maps every key of the Agent schema to the paths where it is
// valid, such as "timeout" → "launch.timeout", "terminate.steps[].timeout".
var schemaKeys = sync.OnceValue(func() map[string][]string {
	m := map[string][]string{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			if t.Kind() == reflect.Slice {
				prefix += "[]"
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		fs := fieldsOf(t)
		for _, k := range fs.keys {
			p := keyPath(prefix, k)
			m[k] = append(m[k], p)
			walk(p, t.Field(fs.index[k]).Type)
		}
	}
	walk("", reflect.TypeFor[Agent]())
	return m
})

// suggest says what an unknown key probably meant: a near key at the same
// level, else the places where the key is valid, else the keys at this level.
func suggest(key string, known []string) string {
	if s := nearest(key, known); s != "" {
		return "did you mean " + s + "?"
	}
	if where := schemaKeys()[key]; len(where) == 1 {
		return "did you mean " + where[0] + "?"
	} else if len(where) > 1 {
		return "did you mean one of " + strings.Join(where, ", ") + "?"
	}
	return "the keys here are " + strings.Join(known, ", ")
}

// nearest returns the known key that key most plausibly misspells, or "".
func nearest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
	}
	best, bestDist := "", 0
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); best == "" || dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" && bestDist <= max(1, min(3, len(key)/3)) {
		return best
	}
	// A truncated key (heartbeat → heartbeat_interval) matching one known key.
	if len(key) >= 4 {
		var hits []string
		for _, k := range known {
			if strings.HasPrefix(k, strings.ToLower(key)) {
				hits = append(hits, k)
			}
		}
		if len(hits) == 1 {
			return hits[0]
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of neighbours.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb)) // far from every key; no need to measure
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range cur {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
