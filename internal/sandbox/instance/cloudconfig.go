package instance

import (
	"errors"
	"fmt"
	"math"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// defaultPerm is cloud-init's write_files mode when permissions is absent.
const defaultPerm = 0o644

// supportedKeys are the cloud-config keys the sandbox acts on.
var supportedKeys = []string{"bootcmd", "runcmd", "write_files"}

// defaultMergers is how cloud-init merges cloud-config parts when a part
// does not say otherwise.
const defaultMergers = "dict(replace)+list()+str()"

// cloudConfig is the merge of a user data's cloud-config parts.
type cloudConfig struct {
	cfg map[string]any // nil until a cloud-config part is seen
}

// mergePart merges one cloud-config part into c, with the mergers the part
// names in a merge_how or merge_type key, or in a Merge-Type or
// X-Merge-Type header, else cloud-init's default.
func (c *cloudConfig) mergePart(payload []byte, hdr textproto.MIMEHeader) error {
	if c.cfg == nil {
		c.cfg = map[string]any{}
	}
	var doc any
	if err := yaml.Unmarshal(payload, &doc); err != nil {
		return fmt.Errorf("parse yaml: %w", err)
	}
	if doc == nil {
		return nil // only comments: nothing to merge
	}
	m, ok := normalize(doc).(map[string]any)
	if !ok {
		return fmt.Errorf("yaml is a %s, not a mapping", pyType(doc))
	}
	ms, err := extractMergers(m)
	if err != nil {
		return err
	}
	h := hdr.Get("Merge-Type")
	if h == "" {
		h = hdr.Get("X-Merge-Type")
	}
	hms, err := parseMergeString(h)
	if err != nil {
		return err
	}
	ms = append(ms, hms...)
	if len(ms) == 0 {
		ms, _ = parseMergeString(defaultMergers)
	}
	set, err := newMergeSet(ms)
	if err != nil {
		return err
	}
	if merged, ok := set.merge(c.cfg, m).(map[string]any); ok {
		c.cfg = merged
	}
	return nil
}

// ccPlan is what a merged cloud-config asks of the sandbox.
type ccPlan struct {
	notes      []string
	bootcmd    []byte // nil when absent
	runcmd     []byte // nil when absent
	writeFiles []file
	deferred   []file
}

func (c *cloudConfig) plan() ccPlan {
	var p ccPlan
	keys := make([]string, 0, len(c.cfg))
	for k := range c.cfg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(supportedKeys, k) {
			p.notes = append(p.notes, fmt.Sprintf("cloud-config key %q is not supported in the sandbox; ignored", k))
		}
	}
	if v, ok := c.cfg["bootcmd"]; ok {
		s, err := shellify(v)
		if err != nil {
			p.notes = append(p.notes, fmt.Sprintf("cloud-config bootcmd: %v; not run", err))
		} else {
			p.bootcmd = s
		}
	}
	if v, ok := c.cfg["runcmd"]; ok {
		s, err := shellify(v)
		if err != nil {
			p.notes = append(p.notes, fmt.Sprintf("cloud-config runcmd: %v; not run", err))
		} else {
			p.runcmd = s
		}
	}
	if v, ok := c.cfg["write_files"]; ok {
		entries, ok := v.([]any)
		if !ok && v != nil {
			p.notes = append(p.notes, fmt.Sprintf("cloud-config write_files is a %s, not a list; ignored", pyType(v)))
		}
		for i, e := range entries {
			m, ok := e.(map[string]any)
			if !ok {
				p.notes = append(p.notes, fmt.Sprintf("cloud-config write_files entry %d is a %s, not a mapping; skipped", i+1, pyType(e)))
				continue
			}
			path := pyStr(m["path"])
			if m["path"] == nil || path == "" {
				p.notes = append(p.notes, fmt.Sprintf("cloud-config write_files entry %d has no path; skipped", i+1))
				continue
			}
			f := file{path: path, perm: decodePerm(m["permissions"]), append: pyBool(m["append"])}
			f.content, f.err = decodeContent(m["content"], pyStr(m["encoding"]))
			if pyBool(m["defer"]) {
				p.deferred = append(p.deferred, f)
			} else {
				p.writeFiles = append(p.writeFiles, f)
			}
		}
	}
	return p
}

// decodeContent decodes a write_files content as its encoding says.
func decodeContent(v any, encoding string) ([]byte, error) {
	content := []byte(pyStr(v))
	if v == nil {
		content = nil
	}
	var steps []string
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "gz", "gzip":
		steps = []string{"gzip"}
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		steps = []string{"base64", "gzip"}
	case "b64", "base64":
		steps = []string{"base64"}
	}
	for _, s := range steps {
		var err error
		switch s {
		case "base64":
			content, err = decodeBase64(content)
		case "gzip":
			content, err = gunzip(content)
		}
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", encoding, err)
		}
	}
	return content, nil
}

// decodePerm reads write_files permissions: an integer as is (YAML's 0644
// is already octal), anything else as an octal string; the default when
// absent or undecodable.
func decodePerm(v any) uint32 {
	switch p := v.(type) {
	case nil:
		return defaultPerm
	case int:
		return uint32(p) & 0o7777
	case float64:
		return uint32(p) & 0o7777
	case bool:
		if p {
			return 1
		}
		return 0
	}
	s := strings.TrimSpace(pyStr(v))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return defaultPerm
	}
	return uint32(n) & 0o7777
}

// shellify turns bootcmd or runcmd into a /bin/sh script as cloud-init
// does: strings are lines as they are, lists are single-quoted words.
func shellify(v any) ([]byte, error) {
	cmds, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("is a %s, not a list", pyType(v))
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for i, c := range cmds {
		switch c := c.(type) {
		case nil: // a YAML comment-only entry
		case string:
			b.WriteString(c)
			b.WriteByte('\n')
		case []any:
			for j, w := range c {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString("'" + strings.ReplaceAll(pyStr(w), "'", `'\''`) + "'")
			}
			b.WriteByte('\n')
		default:
			return nil, fmt.Errorf("entry %d is a %s, not a string or a list", i+1, pyType(c))
		}
	}
	return []byte(b.String()), nil
}

// normalize turns YAML mappings with non-string keys into map[string]any.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[pyStr(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
		return v
	}
	return v
}

// pyStr formats a YAML scalar as Python's str() would.
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e16 {
			return strconv.FormatFloat(v, 'f', 1, 64)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// pyBool reads a boolean option as cloud-init's get_cfg_option_bool.
func pyBool(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	if v == nil {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(pyStr(v))) {
	case "true", "1", "on", "yes":
		return true
	}
	return false
}

func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, float64:
		return "number"
	case []any:
		return "list"
	case map[string]any, map[any]any:
		return "mapping"
	}
	return fmt.Sprintf("%T", v)
}

// A merger is one "name(opt,opt)" term of a merge_how string.
type merger struct {
	name string
	opts []string
}

var mergerTerm = regexp.MustCompile(`^([a-zA-Z_][A-Za-z0-9_]*)\((.*?)\)$`)

// parseMergeString parses "list(append)+dict(recurse_array)+str()".
func parseMergeString(s string) ([]merger, error) {
	var ms []merger
	for _, term := range strings.Split(s, "+") {
		term = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(term)), "-", "_")
		if term == "" {
			continue
		}
		m := mergerTerm.FindStringSubmatch(term)
		if m == nil {
			return nil, fmt.Errorf("merge type %q is not in the form name(options)", term)
		}
		var opts []string
		for o := range strings.SplitSeq(m[2], ",") {
			if o = strings.TrimSpace(o); o != "" {
				opts = append(opts, o)
			}
		}
		ms = append(ms, merger{name: m[1], opts: opts})
	}
	return ms, nil
}

// extractMergers removes merge_how (or merge_type) from a part and parses it.
func extractMergers(cfg map[string]any) ([]merger, error) {
	raw, ok := cfg["merge_how"]
	delete(cfg, "merge_how")
	if !ok || raw == nil {
		raw, ok = cfg["merge_type"]
		delete(cfg, "merge_type")
	}
	if !ok || raw == nil {
		return nil, nil
	}
	switch r := raw.(type) {
	case string:
		return parseMergeString(r)
	case []any:
		var ms []merger
		for _, e := range r {
			var m merger
			switch e := e.(type) {
			case map[string]any:
				m.name = strings.TrimSpace(strings.ReplaceAll(pyStr(e["name"]), "-", "_"))
				settings, _ := e["settings"].([]any)
				for _, s := range settings {
					m.opts = append(m.opts, pyStr(s))
				}
			case []any:
				if len(e) == 0 {
					continue
				}
				m.name = pyStr(e[0])
				for _, s := range e[1:] {
					m.opts = append(m.opts, pyStr(s))
				}
			default:
				return nil, fmt.Errorf("merge_how entry is a %s", pyType(e))
			}
			if m.name != "" {
				ms = append(ms, m)
			}
		}
		return ms, nil
	}
	return nil, fmt.Errorf("merge_how is a %s", pyType(raw))
}

// mergeSet is cloud-init's LookupMerger: the first merger of each kind
// handles values of that kind; values of no handled kind keep the old value.
type mergeSet struct {
	dict *dictMerger
	list *listMerger
	str  *strMerger
}

type dictMerger struct {
	replace                  bool // else no_replace
	recurseStr, recurseArray bool
	allowDelete              bool
}

type listMerger struct {
	method                                string // append, prepend, replace, no_replace
	recurseStr, recurseDict, recurseArray bool
}

type strMerger struct {
	append bool
}

var errUnknownMerger = errors.New("unknown merger")

func newMergeSet(ms []merger) (*mergeSet, error) {
	set := &mergeSet{}
	for _, m := range ms {
		has := func(o ...string) bool {
			for _, x := range o {
				if slices.Contains(m.opts, x) {
					return true
				}
			}
			return false
		}
		switch strings.TrimPrefix(m.name, "m_") {
		case "dict":
			if set.dict == nil {
				set.dict = &dictMerger{
					replace:      has("replace"),
					recurseStr:   has("recurse_str"),
					recurseArray: has("recurse_array", "recurse_list"),
					allowDelete:  has("allow_delete"),
				}
			}
		case "list":
			if set.list == nil {
				l := &listMerger{
					method:       "replace",
					recurseStr:   has("recurse_str"),
					recurseDict:  has("recurse_dict"),
					recurseArray: has("recurse_array", "recurse_list"),
				}
				for _, method := range []string{"append", "prepend", "replace", "no_replace"} {
					if has(method) {
						l.method = method
						break
					}
				}
				set.list = l
			}
		case "str":
			if set.str == nil {
				set.str = &strMerger{append: has("append")}
			}
		default:
			return nil, fmt.Errorf("merger %q: %w", m.name, errUnknownMerger)
		}
	}
	return set, nil
}

// merge merges with into old, dispatching on the old value's kind.
func (s *mergeSet) merge(old, with any) any {
	switch o := old.(type) {
	case map[string]any:
		if s.dict != nil {
			return s.dict.merge(s, o, with)
		}
	case []any:
		if s.list != nil {
			return s.list.merge(s, o, with)
		}
	case string:
		if s.str != nil {
			return s.str.merge(o, with)
		}
	}
	return old
}

func (d *dictMerger) merge(s *mergeSet, old map[string]any, with any) any {
	w, ok := with.(map[string]any)
	if !ok {
		return old
	}
	out := make(map[string]any, len(old)+len(w))
	for k, v := range old {
		out[k] = v
	}
	for k, nv := range w {
		ov, exists := out[k]
		switch {
		case !exists:
			out[k] = nv
		case nv == nil && d.allowDelete:
			delete(out, k)
		case d.replace:
			out[k] = nv
		default:
			switch nv.(type) {
			case []any:
				if d.recurseArray {
					out[k] = s.merge(ov, nv)
				}
			case string:
				if d.recurseStr {
					out[k] = s.merge(ov, nv)
				}
			case map[string]any:
				out[k] = s.merge(ov, nv)
			}
		}
	}
	return out
}

func (l *listMerger) merge(s *mergeSet, old []any, with any) any {
	w, ok := with.([]any)
	if !ok {
		if l.method == "replace" {
			return with
		}
		return old
	}
	switch l.method {
	case "append":
		return append(slices.Clone(old), w...)
	case "prepend":
		return append(slices.Clone(w), old...)
	}
	out := slices.Clone(old)
	for i := range min(len(out), len(w)) {
		if l.method == "no_replace" {
			continue
		}
		switch nv := w[i].(type) {
		case []any:
			if l.recurseArray {
				out[i] = s.merge(out[i], nv)
				continue
			}
		case string:
			if l.recurseStr {
				out[i] = s.merge(out[i], nv)
				continue
			}
		case map[string]any:
			if l.recurseDict {
				out[i] = s.merge(out[i], nv)
				continue
			}
		}
		out[i] = w[i]
	}
	return out
}

func (m *strMerger) merge(old string, with any) any {
	w, ok := with.(string)
	if !m.append || !ok {
		return with
	}
	return old + w
}
