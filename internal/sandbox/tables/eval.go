package tables

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// lookup resolves a document path in an item.
func lookup(it Item, p docPath) (Value, bool) {
	v, ok := it[p[0].name]
	if !ok {
		return Value{}, false
	}
	for _, e := range p[1:] {
		switch {
		case e.isIndex && v.Type == TypeL && e.index < len(v.L):
			v = v.L[e.index]
		case !e.isIndex && v.Type == TypeM:
			if v, ok = v.M[e.name]; !ok {
				return Value{}, false
			}
		default:
			return Value{}, false
		}
	}
	return v, true
}

// eval evaluates a condition operand; ok is false when it has no value
// (a missing attribute, or size of something without a size).
func (o *operand) eval(it Item) (Value, bool) {
	switch o.kind {
	case opPath:
		return lookup(it, o.path)
	case opValue:
		return o.val, true
	case opFunc: // size
		v, ok := lookup(it, o.args[0].path)
		if !ok {
			return Value{}, false
		}
		n, ok := sizeOf(v)
		if !ok {
			return Value{}, false
		}
		return N(strconv.Itoa(n)), true
	}
	return Value{}, false
}

// eval evaluates a condition on an item (nil when there is none). A
// missing attribute or mismatched types make a comparison false (and <>
// true), never an error.
func (c *cond) eval(it Item) bool {
	switch c.kind {
	case cOr:
		return c.l.eval(it) || c.r.eval(it)
	case cAnd:
		return c.l.eval(it) && c.r.eval(it)
	case cNot:
		return !c.l.eval(it)
	case cCmp:
		l, okl := c.args[0].eval(it)
		r, okr := c.args[1].eval(it)
		switch c.op {
		case "=":
			return okl && okr && Equal(l, r)
		case "<>":
			return !(okl && okr && Equal(l, r))
		}
		if !okl || !okr {
			return false
		}
		n, ok := compare(l, r)
		if !ok {
			return false
		}
		switch c.op {
		case "<":
			return n < 0
		case "<=":
			return n <= 0
		case ">":
			return n > 0
		default:
			return n >= 0
		}
	case cBetween:
		v, ok1 := c.args[0].eval(it)
		lo, ok2 := c.args[1].eval(it)
		hi, ok3 := c.args[2].eval(it)
		if !ok1 || !ok2 || !ok3 {
			return false
		}
		a, okA := compare(v, lo)
		b, okB := compare(v, hi)
		return okA && okB && a >= 0 && b <= 0
	case cIn:
		v, ok := c.args[0].eval(it)
		if !ok {
			return false
		}
		for _, a := range c.args[1:] {
			if w, ok := a.eval(it); ok && Equal(v, w) {
				return true
			}
		}
		return false
	case cFunc:
		v, ok := lookup(it, c.args[0].path)
		switch c.op {
		case "attribute_exists":
			return ok
		case "attribute_not_exists":
			return !ok
		}
		arg, okArg := c.args[1].eval(it)
		if !ok || !okArg {
			return false
		}
		switch c.op {
		case "attribute_type":
			return arg.Type == TypeS && string(v.Type) == arg.Str
		case "begins_with":
			return v.Type == arg.Type && (v.Type == TypeS || v.Type == TypeB) && strings.HasPrefix(v.Str, arg.Str)
		case "contains":
			return contains(v, arg)
		}
	}
	return false
}

func contains(v, x Value) bool {
	switch {
	case v.Type == TypeS && x.Type == TypeS:
		return strings.Contains(v.Str, x.Str)
	case v.Type == TypeB && x.Type == TypeB:
		return bytes.Contains([]byte(v.Str), []byte(x.Str))
	case v.isSet() && x.Type == v.elemType():
		return slices.ContainsFunc(v.Set, func(e string) bool { return Equal(Value{Type: x.Type, Str: e}, x) })
	case v.Type == TypeL:
		return slices.ContainsFunc(v.L, func(e Value) bool { return Equal(e, x) })
	}
	return false
}

// Updates -------------------------------------------------------------------------

var (
	errNoAttribute  = validationf("The provided expression refers to an attribute that does not exist in the item")
	errBadPath      = validationf("The document path provided in the update expression is invalid for update")
	errBadOperand   = validationf("An operand in the update expression has an incorrect data type")
	errSizeExceeded = validationf("Item size to update has exceeded the maximum allowed size")
)

func operandTypeErr(fn string, t Type) *Error {
	return validationf("Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: %s, operand type: %s", fn, t)
}

// evalUpdate evaluates a SET operand against the item before the update.
func (o *operand) evalUpdate(old Item) (Value, error) {
	switch o.kind {
	case opPath:
		v, ok := lookup(old, o.path)
		if !ok {
			return Value{}, errNoAttribute
		}
		return v.clone(), nil
	case opValue:
		return o.val.clone(), nil
	case opFunc:
		if o.text == "if_not_exists" {
			if v, ok := lookup(old, o.args[0].path); ok {
				return v.clone(), nil
			}
			return o.args[1].evalUpdate(old)
		}
		a, err := o.args[0].evalUpdate(old)
		if err != nil {
			return Value{}, err
		}
		b, err := o.args[1].evalUpdate(old)
		if err != nil {
			return Value{}, err
		}
		for _, v := range []Value{a, b} {
			if v.Type != TypeL {
				return Value{}, operandTypeErr("list_append", v.Type)
			}
		}
		return L(append(a.L, b.L...)...), nil
	case opArith:
		a, err := o.args[0].evalUpdate(old)
		if err != nil {
			return Value{}, err
		}
		b, err := o.args[1].evalUpdate(old)
		if err != nil {
			return Value{}, err
		}
		for _, v := range []Value{a, b} {
			if v.Type != TypeN {
				return Value{}, operandTypeErr(o.op, v.Type)
			}
		}
		x, _ := parseDecimal(a.Str)
		y, _ := parseDecimal(b.Str)
		s, err := x.add(&y, o.op == "-")
		if err != nil {
			return Value{}, err
		}
		return N(s), nil
	}
	return Value{}, errBadPath
}

// apply returns the item after the update (old is not changed); key is
// the item's key, used when the item is new.
func (u *update) apply(old, key Item) (Item, error) {
	base := old
	if base == nil {
		base = Item{}
	}
	type assign struct {
		path docPath
		val  Value
	}
	var assigns []assign
	for _, s := range u.sets {
		v, err := s.val.evalUpdate(base)
		if err != nil {
			return nil, err
		}
		assigns = append(assigns, assign{s.path, v})
	}
	for _, a := range u.adds {
		cur, ok := lookup(base, a.path)
		v := a.val.val
		switch {
		case !ok:
			assigns = append(assigns, assign{a.path, v.clone()})
		case cur.Type == TypeN && v.Type == TypeN:
			x, _ := parseDecimal(cur.Str)
			y, _ := parseDecimal(v.Str)
			s, err := x.add(&y, false)
			if err != nil {
				return nil, err
			}
			assigns = append(assigns, assign{a.path, N(s)})
		case cur.isSet() && cur.Type == v.Type:
			out := cur.clone()
			for _, e := range v.Set {
				if !contains(out, Value{Type: v.elemType(), Str: e}) {
					out.Set = append(out.Set, e)
				}
			}
			assigns = append(assigns, assign{a.path, out})
		default:
			return nil, errBadOperand
		}
	}
	var removes []docPath
	for _, d := range u.deletes {
		cur, ok := lookup(base, d.path)
		if !ok {
			continue
		}
		v := d.val.val
		if cur.Type != v.Type {
			return nil, errBadOperand
		}
		out := Value{Type: cur.Type}
		for _, e := range cur.Set {
			if !contains(v, Value{Type: v.elemType(), Str: e}) {
				out.Set = append(out.Set, e)
			}
		}
		if len(out.Set) == 0 {
			removes = append(removes, d.path)
		} else {
			assigns = append(assigns, assign{d.path, out})
		}
	}
	next := base.Clone()
	for k, v := range key {
		next[k] = v
	}
	for _, a := range assigns {
		if err := setPath(next, a.path, a.val); err != nil {
			return nil, err
		}
	}
	removes = append(removes, u.removes...)
	// Remove later list elements first, so that earlier indexes still
	// name the elements they named before the update.
	slices.SortStableFunc(removes, func(a, b docPath) int {
		if len(a) == len(b) && a[len(a)-1].isIndex && b[len(b)-1].isIndex && a[:len(a)-1].overlaps(b[:len(b)-1]) {
			return cmp.Compare(b[len(b)-1].index, a[len(a)-1].index)
		}
		return 0
	})
	for _, r := range removes {
		if err := removePath(next, r); err != nil {
			return nil, err
		}
	}
	return next, nil
}

func setPath(it Item, p docPath, v Value) error {
	if len(p) == 1 {
		it[p[0].name] = v
		return nil
	}
	top, ok := it[p[0].name]
	if !ok {
		return errBadPath
	}
	nv, err := setIn(top, p[1:], v)
	if err != nil {
		return err
	}
	it[p[0].name] = nv
	return nil
}

func setIn(c Value, p docPath, v Value) (Value, error) {
	e := p[0]
	switch {
	case e.isIndex && c.Type == TypeL:
		if len(p) == 1 {
			if e.index < len(c.L) {
				c.L[e.index] = v
			} else {
				c.L = append(c.L, v)
			}
			return c, nil
		}
		if e.index >= len(c.L) {
			return c, errBadPath
		}
		nv, err := setIn(c.L[e.index], p[1:], v)
		c.L[e.index] = nv
		return c, err
	case !e.isIndex && c.Type == TypeM:
		if len(p) == 1 {
			c.M[e.name] = v
			return c, nil
		}
		child, ok := c.M[e.name]
		if !ok {
			return c, errBadPath
		}
		nv, err := setIn(child, p[1:], v)
		c.M[e.name] = nv
		return c, err
	}
	return c, errBadPath
}

func removePath(it Item, p docPath) error {
	if len(p) == 1 {
		delete(it, p[0].name)
		return nil
	}
	top, ok := it[p[0].name]
	if !ok {
		return nil
	}
	nv, err := removeIn(top, p[1:])
	if err != nil {
		return err
	}
	it[p[0].name] = nv
	return nil
}

func removeIn(c Value, p docPath) (Value, error) {
	e := p[0]
	switch {
	case e.isIndex && c.Type == TypeL:
		if e.index >= len(c.L) {
			return c, nil
		}
		if len(p) == 1 {
			c.L = slices.Delete(c.L, e.index, e.index+1)
			return c, nil
		}
		nv, err := removeIn(c.L[e.index], p[1:])
		c.L[e.index] = nv
		return c, err
	case !e.isIndex && c.Type == TypeM:
		child, ok := c.M[e.name]
		if !ok {
			return c, nil
		}
		if len(p) == 1 {
			delete(c.M, e.name)
			return c, nil
		}
		nv, err := removeIn(child, p[1:])
		c.M[e.name] = nv
		return c, err
	}
	return c, errBadPath
}

// Projection ---------------------------------------------------------------------

// projNode is a tree of requested paths.
type projNode struct {
	leaf  bool
	names map[string]*projNode
	index map[int]*projNode
}

func (n *projNode) add(p docPath) {
	if len(p) == 0 {
		n.leaf = true
		return
	}
	e := p[0]
	var child *projNode
	if e.isIndex {
		if n.index == nil {
			n.index = map[int]*projNode{}
		}
		if child = n.index[e.index]; child == nil {
			child = &projNode{}
			n.index[e.index] = child
		}
	} else {
		if n.names == nil {
			n.names = map[string]*projNode{}
		}
		if child = n.names[e.name]; child == nil {
			child = &projNode{}
			n.names[e.name] = child
		}
	}
	child.add(p[1:])
}

// project keeps only the given paths of an item, as ProjectionExpression
// does: nested maps keep the requested keys, lists the requested elements
// in index order.
func project(it Item, paths []docPath) Item {
	root := &projNode{}
	for _, p := range paths {
		root.add(p)
	}
	out := Item{}
	for name, n := range root.names {
		if v, ok := it[name]; ok {
			if pv, ok := n.pick(v); ok {
				out[name] = pv
			}
		}
	}
	return out
}

func (n *projNode) pick(v Value) (Value, bool) {
	if n.leaf {
		return v.clone(), true
	}
	switch {
	case v.Type == TypeM && n.names != nil:
		out := Value{Type: TypeM, M: map[string]Value{}}
		for name, c := range n.names {
			if cv, ok := v.M[name]; ok {
				if pv, ok := c.pick(cv); ok {
					out.M[name] = pv
				}
			}
		}
		return out, len(out.M) > 0
	case v.Type == TypeL && n.index != nil:
		out := Value{Type: TypeL}
		idx := make([]int, 0, len(n.index))
		for i := range n.index {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			if i < len(v.L) {
				if pv, ok := n.index[i].pick(v.L[i]); ok {
					out.L = append(out.L, pv)
				}
			}
		}
		return out, len(out.L) > 0
	}
	return Value{}, false
}
