package tables

import (
	"math"
	"slices"
	"strings"
)

// ReturnValues settings.
const (
	ReturnNone       = "NONE"
	ReturnAllOld     = "ALL_OLD"
	ReturnUpdatedOld = "UPDATED_OLD"
	ReturnAllNew     = "ALL_NEW"
	ReturnUpdatedNew = "UPDATED_NEW"
)

// Expressions are a request's placeholder maps; nil means the member was
// absent, an empty map that it was sent empty (an error).
type Expressions struct {
	Names  map[string]string
	Values map[string]Value
}

// GetItemInput is a GetItem request.
type GetItemInput struct {
	Table          string
	Key            Item
	ConsistentRead bool
	Projection     *string
	Names          map[string]string
}

// PutItemInput is a PutItem request.
type PutItemInput struct {
	Table     string
	Item      Item
	Condition *string
	Expressions
	ReturnValues string
	// ReturnValuesOnConditionCheckFailure is NONE or ALL_OLD.
	ReturnValuesOnConditionCheckFailure string
}

// UpdateItemInput is an UpdateItem request.
type UpdateItemInput struct {
	Table     string
	Key       Item
	Update    *string
	Condition *string
	Expressions
	ReturnValues                        string
	ReturnValuesOnConditionCheckFailure string
}

// DeleteItemInput is a DeleteItem request.
type DeleteItemInput struct {
	Table     string
	Key       Item
	Condition *string
	Expressions
	ReturnValues                        string
	ReturnValuesOnConditionCheckFailure string
}

// WriteOutput is the answer to a write: the attributes ReturnValues asked
// for (nil for none) and the write capacity it consumed.
type WriteOutput struct {
	Attributes Item
	Units      float64
}

// QueryInput is a Query request on the table's key.
type QueryInput struct {
	Table        string
	KeyCondition *string
	Filter       *string
	Projection   *string
	Expressions
	// Limit bounds the items evaluated (0: no limit).
	Limit             int
	ExclusiveStartKey Item
	// Backward reverses the range-key order (ScanIndexForward=false).
	Backward       bool
	ConsistentRead bool
	// Select is ALL_ATTRIBUTES (default), COUNT or SPECIFIC_ATTRIBUTES.
	Select    string
	IndexName *string
}

// QueryOutput is a Query answer.
type QueryOutput struct {
	Items            []Item // nil with Select COUNT
	Count            int
	ScannedCount     int
	LastEvaluatedKey Item
	Units            float64
}

// env checks a request's placeholder maps and normalizes the values.
func newEnv(x Expressions) (*Env, error) {
	if x.Names != nil && len(x.Names) == 0 {
		return nil, validationf("ExpressionAttributeNames must not be empty")
	}
	if x.Values != nil && len(x.Values) == 0 {
		return nil, validationf("ExpressionAttributeValues must not be empty")
	}
	for _, k := range sortedKeys(x.Names) {
		if !strings.HasPrefix(k, "#") {
			return nil, validationf("ExpressionAttributeNames contains invalid key: Syntax error; key: %q", k)
		}
	}
	env := &Env{Names: x.Names, Values: make(map[string]Value, len(x.Values)), usedNames: map[string]bool{}, usedValues: map[string]bool{}}
	for _, k := range sortedKeys(x.Values) {
		if !strings.HasPrefix(k, ":") {
			return nil, validationf("ExpressionAttributeValues contains invalid key: Syntax error; key: %q", k)
		}
		v, err := Normalize(x.Values[k])
		if err != nil {
			return nil, validationf("ExpressionAttributeValues contains invalid value: %s for key %s", err.(*Error).Message, k)
		}
		env.Values[k] = v
	}
	return env, nil
}

// checkUnused fails when a supplied name or value was not used by any
// expression; writes prefix the message as AWS does.
func (e *Env) checkUnused(prefix bool) error {
	p := ""
	if prefix {
		p = "1 validation error detected: "
	}
	var unused []string
	for _, k := range sortedKeys(e.Names) {
		if !e.usedNames[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return validationf("%sValue provided in ExpressionAttributeNames unused in expressions: keys: {%s}", p, strings.Join(unused, ", "))
	}
	for _, k := range sortedKeys(e.Values) {
		if !e.usedValues[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		return validationf("%sValue provided in ExpressionAttributeValues unused in expressions: keys: {%s}", p, strings.Join(unused, ", "))
	}
	return nil
}

func checkReturnValues(rv string, allowed ...string) error {
	switch rv {
	case "":
		return nil
	case ReturnNone, ReturnAllOld, ReturnUpdatedOld, ReturnAllNew, ReturnUpdatedNew:
		if !slices.Contains(allowed, rv) {
			return validationf("Return values set to invalid value")
		}
		return nil
	}
	return validationf("1 validation error detected: Value '%s' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]", rv)
}

func checkOnFailure(rv string) error {
	switch rv {
	case "", ReturnNone, ReturnAllOld:
		return nil
	}
	return validationf("1 validation error detected: Value '%s' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]", rv)
}

func normalizeItem(it Item) (Item, error) {
	out := make(Item, len(it))
	for k, v := range it {
		n, err := Normalize(v)
		if err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, nil
}

const emptyKeyMsg = "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty %s value. Key: %s"

func emptyKind(v Value) string {
	if v.Type == TypeB {
		return "binary"
	}
	return "string"
}

// keyOf checks a Key against the schema and returns its storage key.
func (tb *table) keyOf(key Item) (string, error) {
	for _, name := range sortedKeys(key) {
		if v := key[name]; (v.Type == TypeS || v.Type == TypeB) && v.Str == "" {
			return "", validationf(emptyKeyMsg, emptyKind(v), name)
		}
	}
	if len(key) != len(tb.keyNames()) {
		return "", validationf("The provided key element does not match the schema")
	}
	for _, k := range []KeyElement{tb.hash, tb.rng} {
		if k.Name == "" {
			continue
		}
		if v, ok := key[k.Name]; !ok || v.Type != k.Type {
			return "", validationf("The provided key element does not match the schema")
		}
	}
	return tb.storageKey(key), nil
}

func (tb *table) storageKey(it Item) string {
	k := it[tb.hash.Name].Str
	if tb.rng.Name != "" {
		return k + "\x00" + it[tb.rng.Name].Str
	}
	return k
}

// keyFrom returns the key attributes of an item.
func (tb *table) keyFrom(it Item) Item {
	out := Item{tb.hash.Name: it[tb.hash.Name]}
	if tb.rng.Name != "" {
		out[tb.rng.Name] = it[tb.rng.Name]
	}
	return out
}

// checkItem checks a whole item (PutItem) against the schema and limits.
func (tb *table) checkItem(it Item) error {
	for _, k := range []KeyElement{tb.hash, tb.rng} {
		if k.Name == "" {
			continue
		}
		v, ok := it[k.Name]
		if !ok {
			return validationf("One or more parameter values were invalid: Missing the key %s in the item", k.Name)
		}
		if v.Type != k.Type {
			return validationf("One or more parameter values were invalid: Type mismatch for key %s expected: %s actual: %s", k.Name, k.Type, v.Type)
		}
		if (v.Type == TypeS || v.Type == TypeB) && v.Str == "" {
			return validationf(emptyKeyMsg, emptyKind(v), k.Name)
		}
	}
	if it.Size() > maxItemSize {
		return validationf("Item size has exceeded the maximum allowed size")
	}
	return nil
}

// writeUnits is the write capacity of writing an item: 1 per KB, at
// least 1.
func writeUnits(items ...Item) float64 {
	size := 0
	for _, it := range items {
		size = max(size, it.Size())
	}
	return math.Max(1, math.Ceil(float64(size)/1024))
}

// readUnits is the read capacity of reading size bytes: 1 per 4 KB, half
// that for an eventually consistent read.
func readUnits(size int, consistent bool) float64 {
	u := math.Max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		u /= 2
	}
	return u
}

// condition parses an optional condition expression.
func parseOptionalCondition(kind exprKind, src *string, env *Env) (*cond, error) {
	if src == nil {
		return nil, nil
	}
	return parseCondition(kind, *src, env)
}

// GetItem returns the item with the key (nil when there is none),
// projected by the ProjectionExpression if any.
func (t *Tables) GetItem(in GetItemInput) (Item, float64, error) {
	name, err := t.resolveName(in.Table)
	if err != nil {
		return nil, 0, err
	}
	if in.Projection == nil && in.Names != nil {
		return nil, 0, validationf("ExpressionAttributeNames can only be specified when using expressions")
	}
	env, err := newEnv(Expressions{Names: in.Names})
	if err != nil {
		return nil, 0, err
	}
	var paths []docPath
	if in.Projection != nil {
		if paths, err = parseProjection(*in.Projection, env); err != nil {
			return nil, 0, err
		}
	}
	if err := env.checkUnused(false); err != nil {
		return nil, 0, err
	}
	key, err := normalizeItem(in.Key)
	if err != nil {
		return nil, 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, err := t.activeLocked(name)
	if err != nil {
		return nil, 0, err
	}
	k, err := tb.keyOf(key)
	if err != nil {
		return nil, 0, err
	}
	it, ok := tb.items[k]
	if !ok {
		return nil, readUnits(0, in.ConsistentRead), nil
	}
	units := readUnits(it.Size(), in.ConsistentRead)
	if paths != nil {
		return project(it, paths), units, nil
	}
	return it.Clone(), units, nil
}

// prepareWrite validates what every conditional write shares: return
// values, placeholders and the condition.
func prepareWrite(x Expressions, condition *string, onFailure string) (*Env, *cond, error) {
	if err := checkOnFailure(onFailure); err != nil {
		return nil, nil, err
	}
	env, err := newEnv(x)
	if err != nil {
		return nil, nil, err
	}
	c, err := parseOptionalCondition(kindCondition, condition, env)
	return env, c, err
}

// prepareItemWrite checks, in AWS's order and before the lock is taken,
// what PutItem and DeleteItem share: the table name, ReturnValues (NONE or
// ALL_OLD), the placeholders and the condition, unused placeholders, and
// the item or key.
func (t *Tables) prepareItemWrite(table, returnValues string, x Expressions, condition *string, onFailure string, it Item) (string, *cond, Item, error) {
	name, err := t.resolveName(table)
	if err != nil {
		return "", nil, nil, err
	}
	if err := checkReturnValues(returnValues, ReturnNone, ReturnAllOld); err != nil {
		return "", nil, nil, err
	}
	env, c, err := prepareWrite(x, condition, onFailure)
	if err != nil {
		return "", nil, nil, err
	}
	if condition == nil {
		if err := noExpressions(x, "ConditionExpression is null"); err != nil {
			return "", nil, nil, err
		}
	}
	if err := env.checkUnused(true); err != nil {
		return "", nil, nil, err
	}
	it, err = normalizeItem(it)
	if err != nil {
		return "", nil, nil, err
	}
	return name, c, it, nil
}

// noExpressions is the error for placeholders sent without an expression.
func noExpressions(x Expressions, which string) error {
	if x.Values != nil {
		return validationf("ExpressionAttributeValues can only be specified when using expressions: %s", which)
	}
	if x.Names != nil {
		return validationf("ExpressionAttributeNames can only be specified when using expressions")
	}
	return nil
}

func (t *Tables) failCondition(old Item, onFailure string) error {
	t.rec.Data(EventConditionFail)
	if onFailure == ReturnAllOld && old != nil {
		return conditionFailed(old.Clone())
	}
	return conditionFailed(nil)
}

// PutItem writes an item if its condition holds. Errors:
// ValidationException, ResourceNotFoundException,
// ConditionalCheckFailedException (with the old item when asked).
func (t *Tables) PutItem(in PutItemInput) (WriteOutput, error) {
	name, c, item, err := t.prepareItemWrite(in.Table, in.ReturnValues, in.Expressions, in.Condition, in.ReturnValuesOnConditionCheckFailure, in.Item)
	if err != nil {
		return WriteOutput{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, err := t.activeLocked(name)
	if err != nil {
		return WriteOutput{}, err
	}
	if err := tb.checkItem(item); err != nil {
		return WriteOutput{}, err
	}
	k := tb.storageKey(item)
	old := tb.items[k]
	if c != nil && !c.eval(old) {
		return WriteOutput{}, t.failCondition(old, in.ReturnValuesOnConditionCheckFailure)
	}
	tb.items[k] = item
	t.rec.Data(EventItemPut)
	out := WriteOutput{Units: writeUnits(old, item)}
	if in.ReturnValues == ReturnAllOld && old != nil {
		out.Attributes = old
	}
	return out, nil
}

// UpdateItem applies an update expression to the item with the key,
// creating it when missing, if the condition holds.
func (t *Tables) UpdateItem(in UpdateItemInput) (WriteOutput, error) {
	name, err := t.resolveName(in.Table)
	if err != nil {
		return WriteOutput{}, err
	}
	if err := checkReturnValues(in.ReturnValues, ReturnNone, ReturnAllOld, ReturnUpdatedOld, ReturnAllNew, ReturnUpdatedNew); err != nil {
		return WriteOutput{}, err
	}
	if err := checkOnFailure(in.ReturnValuesOnConditionCheckFailure); err != nil {
		return WriteOutput{}, err
	}
	env, err := newEnv(in.Expressions)
	if err != nil {
		return WriteOutput{}, err
	}
	var upd *update
	if in.Update != nil {
		if strings.TrimSpace(*in.Update) == "" {
			return WriteOutput{}, validationf("1 validation error detected: Invalid UpdateExpression: The expression can not be empty;")
		}
		if upd, err = parseUpdate(*in.Update, env); err != nil {
			return WriteOutput{}, err
		}
	}
	c, err := parseOptionalCondition(kindCondition, in.Condition, env)
	if err != nil {
		return WriteOutput{}, err
	}
	if in.Update == nil && in.Condition == nil {
		if err := noExpressions(in.Expressions, "UpdateExpression and ConditionExpression are null"); err != nil {
			return WriteOutput{}, err
		}
	}
	if err := env.checkUnused(true); err != nil {
		return WriteOutput{}, err
	}
	key, err := normalizeItem(in.Key)
	if err != nil {
		return WriteOutput{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, err := t.activeLocked(name)
	if err != nil {
		return WriteOutput{}, err
	}
	k, err := tb.keyOf(key)
	if err != nil {
		return WriteOutput{}, err
	}
	var paths []docPath
	if upd != nil {
		paths = upd.paths()
		for _, p := range paths {
			if tb.isKey(p[0].name) {
				return WriteOutput{}, validationf("One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of the key", p[0].name)
			}
		}
	}
	old := tb.items[k]
	if c != nil && !c.eval(old) {
		return WriteOutput{}, t.failCondition(old, in.ReturnValuesOnConditionCheckFailure)
	}
	next := old.Clone()
	if next == nil {
		next = key
	}
	if upd != nil {
		if next, err = upd.apply(old, key); err != nil {
			return WriteOutput{}, err
		}
	}
	if next.Size() > maxItemSize {
		return WriteOutput{}, errSizeExceeded
	}
	tb.items[k] = next
	t.rec.Data(EventItemUpdated)
	out := WriteOutput{Units: writeUnits(old, next)}
	switch in.ReturnValues {
	case ReturnAllOld:
		if old != nil {
			out.Attributes = old
		}
	case ReturnAllNew:
		out.Attributes = next.Clone()
	case ReturnUpdatedOld:
		if old != nil && paths != nil {
			out.Attributes = nonEmpty(project(old, paths))
		}
	case ReturnUpdatedNew:
		if paths != nil {
			out.Attributes = nonEmpty(project(next, paths))
		}
	}
	return out, nil
}

func nonEmpty(it Item) Item {
	if len(it) == 0 {
		return nil
	}
	return it
}

// DeleteItem deletes the item with the key if the condition holds;
// deleting a missing item succeeds.
func (t *Tables) DeleteItem(in DeleteItemInput) (WriteOutput, error) {
	name, c, key, err := t.prepareItemWrite(in.Table, in.ReturnValues, in.Expressions, in.Condition, in.ReturnValuesOnConditionCheckFailure, in.Key)
	if err != nil {
		return WriteOutput{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tb, err := t.activeLocked(name)
	if err != nil {
		return WriteOutput{}, err
	}
	k, err := tb.keyOf(key)
	if err != nil {
		return WriteOutput{}, err
	}
	old := tb.items[k]
	if c != nil && !c.eval(old) {
		return WriteOutput{}, t.failCondition(old, in.ReturnValuesOnConditionCheckFailure)
	}
	out := WriteOutput{Units: writeUnits(old)}
	if old != nil {
		delete(tb.items, k)
		t.rec.Data(EventItemDeleted)
		if in.ReturnValues == ReturnAllOld {
			out.Attributes = old
		}
	}
	return out, nil
}
