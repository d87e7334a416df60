package tables

import "slices"

// keyCond is a validated key condition: the hash key's value and an
// optional condition on the range key.
type keyCond struct {
	hash  Value
	rng   *cond // nil: every item of the partition
	paths []string
}

func keyCondErr(format string, args ...any) error {
	return validationf("Invalid KeyConditionExpression: "+format, args...)
}

// flattenAnd lists the conjuncts of a key condition, rejecting every
// operator a key condition cannot use.
func flattenAnd(c *cond, out []*cond) ([]*cond, error) {
	switch c.kind {
	case cAnd:
		out, err := flattenAnd(c.l, out)
		if err != nil {
			return nil, err
		}
		return flattenAnd(c.r, out)
	case cOr:
		return nil, keyCondErr("Invalid operator used in KeyConditionExpression: OR")
	case cNot:
		return nil, keyCondErr("Invalid operator used in KeyConditionExpression: NOT")
	case cIn:
		return nil, keyCondErr("Invalid operator used in KeyConditionExpression: IN")
	case cCmp:
		if c.op == "<>" {
			return nil, keyCondErr("Invalid operator used in KeyConditionExpression: <>")
		}
	case cFunc:
		if c.op != "begins_with" {
			return nil, keyCondErr("Invalid function name; function: %s", c.op)
		}
	}
	return append(out, c), nil
}

var flipped = map[string]string{"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// validateKeyCond checks a parsed key condition against the schema.
func (tb *table) validateKeyCond(c *cond) (keyCond, error) {
	parts, err := flattenAnd(c, nil)
	if err != nil {
		return keyCond{}, err
	}
	if len(parts) > 2 {
		return keyCond{}, keyCondErr("The expression has more than two conditions")
	}
	byKey := map[string]*cond{}
	for _, p := range parts {
		// Put the attribute first: ":v < sk" is "sk > :v".
		if p.kind == cCmp && p.args[0].kind == opValue && p.args[1].kind == opPath {
			p = &cond{kind: cCmp, op: flipped[p.op], args: []*operand{p.args[1], p.args[0]}}
		}
		var paths int
		for _, a := range p.args {
			switch a.kind {
			case opPath:
				paths++
			case opFunc:
				return keyCond{}, keyCondErr("KeyConditionExpressions cannot contain nested operations")
			}
		}
		if paths > 1 {
			return keyCond{}, keyCondErr("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")
		}
		if paths == 0 || p.args[0].kind != opPath {
			return keyCond{}, keyCondErr("Invalid condition in KeyConditionExpression: No key attribute specified")
		}
		path := p.args[0].path
		if len(path) > 1 {
			return keyCond{}, keyCondErr("KeyConditionExpressions cannot have conditions on nested attributes")
		}
		name := path[0].name
		if _, dup := byKey[name]; dup {
			return keyCond{}, keyCondErr("KeyConditionExpressions must only contain one condition per key")
		}
		byKey[name] = p
	}
	hc, ok := byKey[tb.hash.Name]
	if !ok {
		return keyCond{}, validationf("Query condition missed key schema element: %s", tb.hash.Name)
	}
	for name := range byKey {
		if !tb.isKey(name) {
			if tb.rng.Name == "" {
				return keyCond{}, validationf("Query key condition not supported")
			}
			return keyCond{}, validationf("Query condition missed key schema element: %s", tb.rng.Name)
		}
	}
	if hc.kind != cCmp || hc.op != "=" {
		return keyCond{}, validationf("Query key condition not supported")
	}
	kc := keyCond{hash: hc.args[1].val}
	check := func(k KeyElement, c *cond) error {
		for _, a := range c.args[1:] {
			if a.val.Type != k.Type {
				return validationf("One or more parameter values were invalid: Condition parameter type does not match schema type")
			}
			if (a.val.Type == TypeS || a.val.Type == TypeB) && a.val.Str == "" {
				return validationf(emptyKeyMsg, emptyKind(a.val), k.Name)
			}
		}
		return nil
	}
	if err := check(tb.hash, hc); err != nil {
		return keyCond{}, err
	}
	if rc, ok := byKey[tb.rng.Name]; ok && tb.rng.Name != "" {
		if err := check(tb.rng, rc); err != nil {
			return keyCond{}, err
		}
		kc.rng = rc
	}
	return kc, nil
}

// mentionsKey returns a key attribute a filter refers to, if any.
func (tb *table) mentionsKey(c *cond) string {
	if c == nil {
		return ""
	}
	if n := tb.mentionsKey(c.l); n != "" {
		return n
	}
	if n := tb.mentionsKey(c.r); n != "" {
		return n
	}
	var walk func(o *operand) string
	walk = func(o *operand) string {
		if o.kind == opPath && tb.isKey(o.path[0].name) {
			return o.path[0].name
		}
		for _, a := range o.args {
			if n := walk(a); n != "" {
				return n
			}
		}
		return ""
	}
	for _, a := range c.args {
		if n := walk(a); n != "" {
			return n
		}
	}
	return ""
}

// Query returns the items of one partition in range-key order that match
// the key condition, from after ExclusiveStartKey, at most Limit of them
// evaluated, then filtered and projected.
func (t *Tables) Query(in QueryInput) (QueryOutput, error) {
	name, err := t.resolveName(in.Table)
	if err != nil {
		return QueryOutput{}, err
	}
	if in.Limit < 0 {
		return QueryOutput{}, validationf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", in.Limit)
	}
	switch in.Select {
	case "", "ALL_ATTRIBUTES", "COUNT":
		if in.Projection != nil {
			what := map[string]string{"": "ALL_ATTRIBUTES", "ALL_ATTRIBUTES": "ALL_ATTRIBUTES", "COUNT": "only the Count"}[in.Select]
			if in.Select != "" {
				return QueryOutput{}, validationf("1 validation error detected: Cannot specify the ProjectionExpression when choosing to get %s", what)
			}
		}
	case "SPECIFIC_ATTRIBUTES":
		if in.Projection == nil {
			return QueryOutput{}, validationf("1 validation error detected: Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES")
		}
	case "ALL_PROJECTED_ATTRIBUTES":
		return QueryOutput{}, validationf("1 validation error detected: ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
	default:
		return QueryOutput{}, validationf("1 validation error detected: Value '%s' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]", in.Select)
	}
	if in.KeyCondition == nil {
		return QueryOutput{}, validationf("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
	}
	env, err := newEnv(in.Expressions)
	if err != nil {
		return QueryOutput{}, err
	}
	kcond, err := parseCondition(kindKeyCondition, *in.KeyCondition, env)
	if err != nil {
		return QueryOutput{}, err
	}
	filter, err := parseOptionalCondition(kindFilter, in.Filter, env)
	if err != nil {
		return QueryOutput{}, err
	}
	var paths []docPath
	if in.Projection != nil {
		if paths, err = parseProjection(*in.Projection, env); err != nil {
			return QueryOutput{}, err
		}
	}
	if err := env.checkUnused(false); err != nil {
		return QueryOutput{}, err
	}
	start, err := normalizeItem(in.ExclusiveStartKey)
	if err != nil {
		return QueryOutput{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, err := t.activeLocked(name)
	if err != nil {
		return QueryOutput{}, err
	}
	if in.IndexName != nil {
		return QueryOutput{}, validationf("The table does not have the specified index: %s", *in.IndexName)
	}
	kc, err := tb.validateKeyCond(kcond)
	if err != nil {
		return QueryOutput{}, err
	}
	if n := tb.mentionsKey(filter); n != "" {
		return QueryOutput{}, validationf("Filter Expression can only contain non-primary key attributes: Primary key attribute: %s", n)
	}
	if in.ExclusiveStartKey != nil {
		if _, err := tb.keyOf(start); err != nil {
			return QueryOutput{}, validationf("The provided starting key is invalid: %s", err.(*Error).Message)
		}
		if !Equal(start[tb.hash.Name], kc.hash) {
			return QueryOutput{}, validationf("The provided starting key is invalid: The provided key element does not match the schema")
		}
	}

	var part []Item
	for _, it := range tb.items {
		if Equal(it[tb.hash.Name], kc.hash) && (kc.rng == nil || kc.rng.eval(it)) {
			part = append(part, it)
		}
	}
	if tb.rng.Name != "" {
		slices.SortFunc(part, func(a, b Item) int {
			n, _ := compare(a[tb.rng.Name], b[tb.rng.Name])
			return n
		})
	}
	if in.Backward {
		slices.Reverse(part)
	}
	if in.ExclusiveStartKey != nil {
		if tb.rng.Name == "" {
			part = nil // one item per partition: nothing follows it
		} else {
			sv := start[tb.rng.Name]
			i := slices.IndexFunc(part, func(it Item) bool {
				n, _ := compare(it[tb.rng.Name], sv)
				return n > 0 != in.Backward && n != 0
			})
			if i < 0 {
				part = nil
			} else {
				part = part[i:]
			}
		}
	}
	out := QueryOutput{}
	size := 0
	for _, it := range part {
		if in.Limit > 0 && out.ScannedCount == in.Limit {
			break
		}
		out.ScannedCount++
		size += it.Size()
		if in.Limit > 0 && out.ScannedCount == in.Limit {
			out.LastEvaluatedKey = tb.keyFrom(it).Clone()
		}
		if filter != nil && !filter.eval(it) {
			continue
		}
		out.Count++
		if in.Select == "COUNT" {
			continue
		}
		if paths != nil {
			out.Items = append(out.Items, project(it, paths))
		} else {
			out.Items = append(out.Items, it.Clone())
		}
	}
	if in.Select != "COUNT" && out.Items == nil {
		out.Items = []Item{}
	}
	out.Units = readUnits(size, in.ConsistentRead)
	return out, nil
}
