package tables

import (
	"fmt"
	"strconv"
	"strings"
)

// exprKind is which request member an expression came from; it names the
// expression in error messages and selects the grammar.
type exprKind int

const (
	kindCondition exprKind = iota
	kindUpdate
	kindKeyCondition
	kindFilter
	kindProjection
)

func (k exprKind) member() string {
	return [...]string{"ConditionExpression", "UpdateExpression", "KeyConditionExpression", "FilterExpression", "ProjectionExpression"}[k]
}

// Env holds a request's ExpressionAttributeNames and
// ExpressionAttributeValues and records which ones its expressions use.
type Env struct {
	Names  map[string]string
	Values map[string]Value

	usedNames  map[string]bool
	usedValues map[string]bool
}

// pathElem is one step of a document path: a map key or a list index.
type pathElem struct {
	name    string
	index   int
	isIndex bool
}

// docPath is a document path with its placeholders resolved.
type docPath []pathElem

func (p docPath) String() string {
	var b strings.Builder
	for i, e := range p {
		switch {
		case e.isIndex:
			fmt.Fprintf(&b, "[%d]", e.index)
		case i > 0:
			b.WriteString("." + e.name)
		default:
			b.WriteString(e.name)
		}
	}
	return b.String()
}

// list renders the path as AWS does in overlap errors: [a, b, [0]].
func (p docPath) list() string {
	parts := make([]string, len(p))
	for i, e := range p {
		if e.isIndex {
			parts[i] = fmt.Sprintf("[%d]", e.index)
		} else {
			parts[i] = e.name
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// overlaps reports whether one path is a prefix of the other (or equal).
func (p docPath) overlaps(q docPath) bool {
	n := min(len(p), len(q))
	for i := 0; i < n; i++ {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

type opKind int

const (
	opPath  opKind = iota
	opValue        // :placeholder
	opFunc         // size, if_not_exists, list_append
	opArith        // a + b, a - b
)

// operand is a value in an expression: a path, a placeholder's value, a
// function call or (in SET) an arithmetic operation.
type operand struct {
	kind opKind
	path docPath
	val  Value
	text string // the source text of a placeholder or function name
	args []*operand
	op   string // "+" or "-" for opArith
}

type condKind int

const (
	cOr condKind = iota
	cAnd
	cNot
	cCmp
	cBetween
	cIn
	cFunc
)

// cond is a node of a condition (condition, filter, key condition).
type cond struct {
	kind condKind
	l, r *cond
	op   string // comparator for cCmp, function name for cFunc
	args []*operand
}

// update is a parsed UpdateExpression.
type update struct {
	sets    []setAction
	removes []docPath
	adds    []setAction // val is a placeholder's value
	deletes []setAction
}

type setAction struct {
	path docPath
	val  *operand
}

// paths returns every path the update writes, in clause order.
func (u *update) paths() []docPath {
	var out []docPath
	for _, s := range u.sets {
		out = append(out, s.path)
	}
	out = append(out, u.removes...)
	for _, s := range u.adds {
		out = append(out, s.path)
	}
	for _, s := range u.deletes {
		out = append(out, s.path)
	}
	return out
}

type parser struct {
	src      string
	toks     []token
	i        int
	kind     exprKind
	env      *Env
	deferred *Error // the first undefined placeholder, reported after syntax
}

// parseErr is how the parser stops: a panic carrying the error, recovered
// at the entry points.
type parseErr struct{ err *Error }

func newParser(kind exprKind, src string, env *Env) *parser {
	if env.usedNames == nil {
		env.usedNames, env.usedValues = map[string]bool{}, map[string]bool{}
	}
	return &parser{src: src, toks: lex(src), kind: kind, env: env}
}

func (p *parser) errorf(format string, args ...any) *Error {
	return validationf("Invalid %s: %s", p.kind.member(), fmt.Sprintf(format, args...))
}

func (p *parser) fail(format string, args ...any) {
	panic(parseErr{p.errorf(format, args...)})
}

// syntax fails at the current token, quoting it and its neighbours as AWS
// does.
func (p *parser) syntax() {
	t := p.toks[p.i]
	start := t.pos
	if p.i > 0 {
		start = p.toks[p.i-1].pos
	}
	end := len(p.src)
	if t.kind != tEOF && p.i+1 < len(p.toks) && p.toks[p.i+1].kind != tEOF {
		end = p.toks[p.i+1].end
	}
	p.fail("Syntax error; token: %q, near: %q", t.text, p.src[start:end])
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) expect(k tokKind) token {
	if p.peek().kind != k {
		p.syntax()
	}
	return p.next()
}

// keyword reports whether the current token is the (case-insensitive)
// keyword kw.
func (p *parser) keyword(kw string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) isGrammarKeyword(s string) bool {
	switch strings.ToUpper(s) {
	case "AND", "OR", "NOT", "BETWEEN", "IN":
		return p.kind != kindUpdate && p.kind != kindProjection
	case "SET", "REMOVE", "ADD", "DELETE":
		return p.kind == kindUpdate
	}
	return false
}

// run parses with f and turns a parse failure, or an undefined
// placeholder, into the error.
func (p *parser) run(f func()) (err *Error) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(parseErr)
			if !ok {
				panic(r)
			}
			err = pe.err
		}
	}()
	if p.src == "" {
		return p.errorf("The expression can not be empty;")
	}
	f()
	if p.peek().kind != tEOF {
		p.syntax()
	}
	return p.deferred
}

func (p *parser) name(placeholder string) string {
	p.env.usedNames[placeholder] = true
	n, ok := p.env.Names[placeholder]
	if !ok && p.deferred == nil {
		p.deferred = p.errorf("An expression attribute name used in the document path is not defined; attribute name: %s", placeholder)
	}
	return n
}

func (p *parser) value(placeholder string) Value {
	p.env.usedValues[placeholder] = true
	v, ok := p.env.Values[placeholder]
	if !ok && p.deferred == nil {
		p.deferred = p.errorf("An expression attribute value used in expression is not defined; attribute value: %s", placeholder)
	}
	return v
}

// path parses a document path: name ( .name | [index] )*.
func (p *parser) path() docPath {
	var out docPath
	out = append(out, p.pathName())
	for {
		switch p.peek().kind {
		case tDot:
			p.next()
			out = append(out, p.pathName())
		case tLBrack:
			p.next()
			t := p.peek()
			if t.kind != tNum {
				p.syntax()
			}
			n, err := strconv.Atoi(t.text)
			if err != nil || n > 1<<20 {
				p.syntax()
			}
			p.next()
			p.expect(tRBrack)
			out = append(out, pathElem{index: n, isIndex: true})
		default:
			return out
		}
	}
}

func (p *parser) pathName() pathElem {
	t := p.peek()
	switch t.kind {
	case tIdent:
		if p.isGrammarKeyword(t.text) {
			p.syntax()
		}
		if reserved()[strings.ToUpper(t.text)] {
			p.fail("Attribute name is a reserved keyword; reserved keyword: %s", t.text)
		}
		p.next()
		return pathElem{name: t.text}
	case tName:
		p.next()
		return pathElem{name: p.name(t.text)}
	}
	p.syntax()
	return pathElem{}
}

// Condition grammar --------------------------------------------------------

var condFuncs = map[string]int{ // name → number of operands
	"attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2,
	"begins_with": 2, "contains": 2,
}

var updateFuncs = map[string]int{"if_not_exists": 2, "list_append": 2}

func isComparator(k tokKind) bool {
	return k == tEq || k == tNe || k == tLt || k == tLe || k == tGt || k == tGe
}

func (p *parser) or() *cond {
	c := p.and()
	for p.keyword("OR") {
		p.next()
		c = &cond{kind: cOr, l: c, r: p.and()}
	}
	return c
}

func (p *parser) and() *cond {
	c := p.not()
	for p.keyword("AND") {
		p.next()
		c = &cond{kind: cAnd, l: c, r: p.not()}
	}
	return c
}

func (p *parser) not() *cond {
	if p.keyword("NOT") {
		p.next()
		return &cond{kind: cNot, l: p.not()}
	}
	return p.primary()
}

func (p *parser) primary() *cond {
	t := p.peek()
	if t.kind == tLParen {
		p.next()
		c := p.or()
		p.expect(tRParen)
		return c
	}
	if t.kind == tIdent && p.toks[p.i+1].kind == tLParen && t.text != "size" {
		if _, ok := condFuncs[t.text]; ok {
			args := p.call(false)
			if n := p.peek(); isComparator(n.kind) || p.keyword("BETWEEN") || p.keyword("IN") {
				p.fail("The function is not allowed to be used this way in an expression; function: %s", t.text)
			}
			return &cond{kind: cFunc, op: t.text, args: args}
		}
	}
	lhs := p.condOperand()
	switch {
	case isComparator(p.peek().kind):
		op := p.next().text
		return &cond{kind: cCmp, op: op, args: []*operand{lhs, p.condOperand()}}
	case p.keyword("BETWEEN"):
		p.next()
		lo := p.condOperand()
		if !p.keyword("AND") {
			p.syntax()
		}
		p.next()
		return &cond{kind: cBetween, args: []*operand{lhs, lo, p.condOperand()}}
	case p.keyword("IN"):
		p.next()
		p.expect(tLParen)
		args := []*operand{lhs, p.condOperand()}
		for p.peek().kind == tComma {
			p.next()
			args = append(args, p.condOperand())
		}
		p.expect(tRParen)
		if len(args) > 101 {
			p.fail("The IN operator is provided with too many operands; number of operands: %d", len(args)-1)
		}
		return &cond{kind: cIn, args: args}
	}
	p.syntax()
	return nil
}

// condOperand parses a path, a value placeholder or size(path).
func (p *parser) condOperand() *operand {
	t := p.peek()
	switch {
	case t.kind == tValue:
		p.next()
		return &operand{kind: opValue, val: p.value(t.text), text: t.text}
	case t.kind == tIdent && p.toks[p.i+1].kind == tLParen:
		if t.text != "size" {
			if _, ok := condFuncs[t.text]; ok {
				p.fail("The function is not allowed to be used this way in an expression; function: %s", t.text)
			}
			p.unknownFunc(t.text)
		}
		return &operand{kind: opFunc, text: t.text, args: p.call(false)}
	case t.kind == tIdent || t.kind == tName:
		return &operand{kind: opPath, path: p.path()}
	}
	p.syntax()
	return nil
}

func (p *parser) unknownFunc(name string) {
	if p.kind == kindUpdate {
		if _, ok := condFuncs[name]; ok || name == "size" {
			p.fail("The function is not allowed in an update expression; function: %s", name)
		}
	} else if _, ok := updateFuncs[name]; ok {
		p.fail("The function is not allowed in a %s; function: %s", strings.ToLower(strings.TrimSuffix(p.kind.member(), "Expression"))+" expression", name)
	}
	p.fail("Invalid function name; function: %s", name)
}

// call parses name(args) and checks the number of operands.
func (p *parser) call(update bool) []*operand {
	name := p.next().text
	want, ok := condFuncs[name]
	if name == "size" {
		want, ok = 1, !update
	}
	if update {
		want, ok = updateFuncs[name]
	}
	if !ok {
		p.unknownFunc(name)
	}
	p.expect(tLParen)
	var args []*operand
	for {
		if update {
			args = append(args, p.updateOperand())
		} else {
			args = append(args, p.condOperand())
		}
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	p.expect(tRParen)
	if len(args) != want {
		p.fail("Incorrect number of operands for operator or function; operator or function: %s, number of operands: %d", name, len(args))
	}
	return args
}

// Update grammar -------------------------------------------------------------

func (p *parser) update() *update {
	u := &update{}
	seen := map[string]bool{}
	for p.peek().kind != tEOF {
		t := p.peek()
		if t.kind != tIdent {
			p.syntax()
		}
		clause := strings.ToUpper(t.text)
		switch clause {
		case "SET", "REMOVE", "ADD", "DELETE":
		default:
			p.syntax()
		}
		if seen[clause] {
			panic(parseErr{validationf("1 validation error detected: Invalid UpdateExpression: The %q section can only be used once in an update expression;", clause)})
		}
		seen[clause] = true
		p.next()
		for {
			switch clause {
			case "SET":
				path := p.path()
				p.expect(tEq)
				u.sets = append(u.sets, setAction{path: path, val: p.setValue()})
			case "REMOVE":
				u.removes = append(u.removes, p.path())
			case "ADD", "DELETE":
				path := p.path()
				v := p.expect(tValue)
				a := setAction{path: path, val: &operand{kind: opValue, val: p.value(v.text), text: v.text}}
				if clause == "ADD" {
					u.adds = append(u.adds, a)
				} else {
					u.deletes = append(u.deletes, a)
				}
			}
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	return u
}

func (p *parser) setValue() *operand {
	l := p.updateOperand()
	if k := p.peek().kind; k == tPlus || k == tMinus {
		op := p.next().text
		return &operand{kind: opArith, op: op, args: []*operand{l, p.updateOperand()}}
	}
	return l
}

func (p *parser) updateOperand() *operand {
	t := p.peek()
	switch {
	case t.kind == tValue:
		p.next()
		return &operand{kind: opValue, val: p.value(t.text), text: t.text}
	case t.kind == tIdent && p.toks[p.i+1].kind == tLParen:
		return &operand{kind: opFunc, text: t.text, args: p.call(true)}
	case t.kind == tIdent || t.kind == tName:
		return &operand{kind: opPath, path: p.path()}
	}
	p.syntax()
	return nil
}

// Projection grammar ---------------------------------------------------------

func (p *parser) projection() []docPath {
	out := []docPath{p.path()}
	for p.peek().kind == tComma {
		p.next()
		out = append(out, p.path())
	}
	return out
}

// Entry points -----------------------------------------------------------------

// parseCondition parses a condition, filter or key condition expression
// and checks what can be checked without an item.
func parseCondition(kind exprKind, src string, env *Env) (*cond, error) {
	p := newParser(kind, src, env)
	var c *cond
	if err := p.run(func() { c = p.or() }); err != nil {
		return nil, err
	}
	if err := p.checkCond(c); err != nil {
		return nil, err
	}
	return c, nil
}

func parseUpdate(src string, env *Env) (*update, error) {
	p := newParser(kindUpdate, src, env)
	var u *update
	if err := p.run(func() { u = p.update() }); err != nil {
		return nil, err
	}
	if err := p.checkUpdate(u); err != nil {
		return nil, err
	}
	return u, nil
}

func parseProjection(src string, env *Env) ([]docPath, error) {
	p := newParser(kindProjection, src, env)
	var paths []docPath
	if err := p.run(func() { paths = p.projection() }); err != nil {
		return nil, err
	}
	if err := checkOverlap(paths, "ProjectionExpression"); err != nil {
		return nil, err
	}
	return paths, nil
}

func checkOverlap(paths []docPath, member string) error {
	for i := range paths {
		for j := i + 1; j < len(paths); j++ {
			if paths[i].overlaps(paths[j]) {
				return validationf("1 validation error detected: Invalid %s: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: %s, path two: %s",
					member, paths[i].list(), paths[j].list())
			}
		}
	}
	return nil
}

// Static checks ------------------------------------------------------------------

// longType is a type's name in ADD/DELETE operand errors.
var longType = map[Type]string{
	TypeS: "STRING", TypeN: "NUMBER", TypeB: "BINARY", TypeBOOL: "BOOLEAN", TypeNULL: "NULL",
	TypeM: "MAP", TypeL: "LIST", TypeSS: "STRING_SET", TypeNS: "NUMBER_SET", TypeBS: "BINARY_SET",
}

func (p *parser) operandType(fn string, t Type) *Error {
	return p.errorf("Incorrect operand type for operator or function; operator or function: %s, operand type: %s", fn, t)
}

func (p *parser) checkCond(c *cond) *Error {
	switch c.kind {
	case cOr, cAnd:
		if err := p.checkCond(c.l); err != nil {
			return err
		}
		return p.checkCond(c.r)
	case cNot:
		return p.checkCond(c.l)
	case cCmp, cBetween:
		name := c.op
		if c.kind == cBetween {
			name = "BETWEEN"
		}
		for _, a := range c.args {
			if err := p.checkOperand(a); err != nil {
				return err
			}
			if a.kind == opValue && name != "=" && name != "<>" {
				if t := a.val.Type; t != TypeN && t != TypeS && t != TypeB {
					return p.operandType(name, t)
				}
			}
		}
		if c.kind == cBetween && c.args[1].kind == opValue && c.args[2].kind == opValue {
			lo, hi := c.args[1].val, c.args[2].val
			if n, ok := compare(lo, hi); ok && n > 0 {
				return p.errorf("The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {%s:%s}, upper bound operand: AttributeValue: {%s:%s}",
					lo.Type, lo.Str, hi.Type, hi.Str)
			}
		}
	case cIn:
		for _, a := range c.args {
			if err := p.checkOperand(a); err != nil {
				return err
			}
		}
	case cFunc:
		if c.args[0].kind != opPath {
			return p.errorf("Operator or function requires a document path; operator or function: %s", c.op)
		}
		for _, a := range c.args[1:] {
			if err := p.checkOperand(a); err != nil {
				return err
			}
		}
		if len(c.args) < 2 || c.args[1].kind != opValue {
			return nil
		}
		v := c.args[1].val
		switch c.op {
		case "attribute_type":
			if v.Type != TypeS {
				return p.operandType(c.op, v.Type)
			}
			if !knownType(v.Str) {
				return p.errorf("Invalid attribute type name found; type: %s, valid types: %s", v.Str, validTypes)
			}
		case "begins_with":
			if v.Type != TypeS && v.Type != TypeB {
				return p.operandType(c.op, v.Type)
			}
		}
	}
	return nil
}

func (p *parser) checkOperand(o *operand) *Error {
	if o.kind == opFunc && o.args[0].kind != opPath {
		return p.errorf("Operator or function requires a document path; operator or function: %s", o.text)
	}
	return nil
}

func (p *parser) checkUpdate(u *update) *Error {
	if err := checkOverlap(u.paths(), "UpdateExpression"); err != nil {
		return err.(*Error)
	}
	for _, s := range u.sets {
		if err := p.checkUpdateOperand(s.val); err != nil {
			return err
		}
	}
	for _, a := range u.adds {
		if t := a.val.val.Type; t != TypeN && !a.val.val.isSet() {
			return p.errorf("Incorrect operand type for operator or function; operator: ADD, operand type: %s, typeSet: ALLOWED_FOR_ADD_OPERAND", longType[t])
		}
	}
	for _, d := range u.deletes {
		if t := d.val.val.Type; !d.val.val.isSet() {
			return p.errorf("Incorrect operand type for operator or function; operator: DELETE, operand type: %s, typeSet: ALLOWED_FOR_DELETE_OPERAND", longType[t])
		}
	}
	return nil
}

func (p *parser) checkUpdateOperand(o *operand) *Error {
	for _, a := range o.args {
		if err := p.checkUpdateOperand(a); err != nil {
			return err
		}
	}
	switch o.kind {
	case opArith:
		for _, a := range o.args {
			if a.kind == opValue && a.val.Type != TypeN {
				return p.operandType(o.op, a.val.Type)
			}
		}
	case opFunc:
		switch o.text {
		case "if_not_exists":
			if o.args[0].kind != opPath {
				return p.errorf("Operator or function requires a document path; operator or function: %s", o.text)
			}
		case "list_append":
			for _, a := range o.args {
				if a.kind == opValue && a.val.Type != TypeL {
					return p.operandType(o.text, a.val.Type)
				}
			}
		}
	}
	return nil
}
