package tables

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Type is a DynamoDB data type, as named on the wire.
type Type string

// The DynamoDB data types.
const (
	TypeS    Type = "S"
	TypeN    Type = "N"
	TypeB    Type = "B"
	TypeBOOL Type = "BOOL"
	TypeNULL Type = "NULL"
	TypeM    Type = "M"
	TypeL    Type = "L"
	TypeSS   Type = "SS"
	TypeNS   Type = "NS"
	TypeBS   Type = "BS"
)

// validTypes lists the types in the order AWS prints them in the
// attribute_type error.
const validTypes = "{ B,NULL,SS,BOOL,L,BS,N,NS,S,M }"

func knownType(t string) bool {
	switch Type(t) {
	case TypeS, TypeN, TypeB, TypeBOOL, TypeNULL, TypeM, TypeL, TypeSS, TypeNS, TypeBS:
		return true
	}
	return false
}

// Value is one DynamoDB attribute value. Exactly the fields of its Type
// are meaningful: Str for S, N (canonical decimal) and B (raw bytes);
// Bool for BOOL; L and M for lists and maps; Set for SS, NS (canonical)
// and BS (raw bytes). NULL carries nothing (it is always true).
type Value struct {
	Type Type
	Str  string
	Bool bool
	L    []Value
	M    map[string]Value
	Set  []string
}

// Item is a DynamoDB item: attribute name → value.
type Item map[string]Value

// S, N, B, … build values.
func S(s string) Value           { return Value{Type: TypeS, Str: s} }
func N(n string) Value           { return Value{Type: TypeN, Str: n} }
func B(b []byte) Value           { return Value{Type: TypeB, Str: string(b)} }
func Bool(b bool) Value          { return Value{Type: TypeBOOL, Bool: b} }
func Null() Value                { return Value{Type: TypeNULL} }
func L(vs ...Value) Value        { return Value{Type: TypeL, L: vs} }
func M(m map[string]Value) Value { return Value{Type: TypeM, M: m} }
func SS(s ...string) Value       { return Value{Type: TypeSS, Set: s} }
func NS(n ...string) Value       { return Value{Type: TypeNS, Set: n} }
func BS(b ...[]byte) Value {
	v := Value{Type: TypeBS}
	for _, x := range b {
		v.Set = append(v.Set, string(x))
	}
	return v
}

func (v Value) isSet() bool { return v.Type == TypeSS || v.Type == TypeNS || v.Type == TypeBS }

// elemType is the scalar type of a set's elements.
func (v Value) elemType() Type {
	switch v.Type {
	case TypeSS:
		return TypeS
	case TypeNS:
		return TypeN
	case TypeBS:
		return TypeB
	}
	return ""
}

func setOf(t Type) Type {
	switch t {
	case TypeS:
		return TypeSS
	case TypeN:
		return TypeNS
	case TypeB:
		return TypeBS
	}
	return ""
}

// Normalize checks a value as DynamoDB does on input and returns it with
// numbers in canonical form. Errors carry AWS's ValidationException texts.
func Normalize(v Value) (Value, error) {
	switch v.Type {
	case TypeS, TypeB, TypeBOOL:
		return v, nil
	case TypeNULL:
		return Value{Type: TypeNULL}, nil
	case TypeN:
		n, err := canonicalNumber(v.Str)
		if err != nil {
			return Value{}, err
		}
		return N(n), nil
	case TypeL:
		out := Value{Type: TypeL, L: make([]Value, len(v.L))}
		for i, e := range v.L {
			n, err := Normalize(e)
			if err != nil {
				return Value{}, err
			}
			out.L[i] = n
		}
		return out, nil
	case TypeM:
		out := Value{Type: TypeM, M: make(map[string]Value, len(v.M))}
		for k, e := range v.M {
			n, err := Normalize(e)
			if err != nil {
				return Value{}, err
			}
			out.M[k] = n
		}
		return out, nil
	case TypeSS, TypeNS, TypeBS:
		if len(v.Set) == 0 {
			article, word := "An", map[Type]string{TypeSS: "string", TypeNS: "number", TypeBS: "binary"}[v.Type]
			if v.Type == TypeBS {
				article = "A"
			}
			return Value{}, validationf("One or more parameter values were invalid: %s %s set  may not be empty", article, word)
		}
		out := Value{Type: v.Type, Set: make([]string, len(v.Set))}
		seen := make(map[string]bool, len(v.Set))
		for i, e := range v.Set {
			if v.Type == TypeNS {
				n, err := canonicalNumber(e)
				if err != nil {
					return Value{}, err
				}
				e = n
			}
			if seen[e] {
				return Value{}, validationf("One or more parameter values were invalid: Input collection [%s] contains duplicates.", strings.Join(v.Set, ", "))
			}
			seen[e] = true
			out.Set[i] = e
		}
		return out, nil
	}
	return Value{}, validationf("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
}

// Equal reports whether two values are equal as DynamoDB compares them:
// same type, numbers by value, sets regardless of order.
func Equal(a, b Value) bool {
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case TypeS, TypeB:
		return a.Str == b.Str
	case TypeN:
		return compareNumbers(a.Str, b.Str) == 0
	case TypeBOOL:
		return a.Bool == b.Bool
	case TypeNULL:
		return true
	case TypeL:
		return slices.EqualFunc(a.L, b.L, Equal)
	case TypeM:
		return maps.EqualFunc(a.M, b.M, Equal)
	case TypeSS, TypeBS:
		return len(a.Set) == len(b.Set) && subset(a.Set, b.Set, func(x, y string) bool { return x == y })
	case TypeNS:
		return len(a.Set) == len(b.Set) && subset(a.Set, b.Set, func(x, y string) bool { return compareNumbers(x, y) == 0 })
	}
	return false
}

func subset(a, b []string, eq func(x, y string) bool) bool {
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y string) bool { return eq(x, y) }) {
			return false
		}
	}
	return true
}

// compare orders two values of the same scalar type (N, S, B); ok is
// false for anything else.
func compare(a, b Value) (int, bool) {
	if a.Type != b.Type {
		return 0, false
	}
	switch a.Type {
	case TypeN:
		return compareNumbers(a.Str, b.Str), true
	case TypeS, TypeB:
		return strings.Compare(a.Str, b.Str), true
	}
	return 0, false
}

// clone returns a deep copy.
func (v Value) clone() Value {
	switch v.Type {
	case TypeL:
		out := Value{Type: TypeL, L: make([]Value, len(v.L))}
		for i, e := range v.L {
			out.L[i] = e.clone()
		}
		return out
	case TypeM:
		out := Value{Type: TypeM, M: make(map[string]Value, len(v.M))}
		for k, e := range v.M {
			out.M[k] = e.clone()
		}
		return out
	case TypeSS, TypeNS, TypeBS:
		return Value{Type: v.Type, Set: slices.Clone(v.Set)}
	}
	return v
}

// Clone returns a deep copy of the item.
func (it Item) Clone() Item {
	if it == nil {
		return nil
	}
	out := make(Item, len(it))
	for k, v := range it {
		out[k] = v.clone()
	}
	return out
}

// size is the value's size as DynamoDB counts it for the item limit.
func (v Value) size() int {
	switch v.Type {
	case TypeS, TypeB:
		return len(v.Str)
	case TypeN:
		return (len(strings.TrimLeft(strings.ReplaceAll(strings.TrimPrefix(v.Str, "-"), ".", ""), "0"))+1)/2 + 1
	case TypeBOOL, TypeNULL:
		return 1
	case TypeL, TypeM:
		n := 3
		for _, e := range v.L {
			n += e.size() + 1
		}
		for k, e := range v.M {
			n += len(k) + e.size() + 1
		}
		return n
	default:
		n := 0
		for _, e := range v.Set {
			n += len(e)
		}
		return n
	}
}

// Size is the item's size as DynamoDB counts it: names plus values.
func (it Item) Size() int {
	n := 0
	for k, v := range it {
		n += len(k) + v.size()
	}
	return n
}

// maxItemSize is DynamoDB's item size limit (400 KB).
const maxItemSize = 400 * 1024

// sizeOf is the size() function of expressions: characters of a string,
// bytes of a binary, elements of a set, list or map; ok is false for
// other types.
func sizeOf(v Value) (int, bool) {
	switch v.Type {
	case TypeS:
		return utf8.RuneCountInString(v.Str), true
	case TypeB:
		return len(v.Str), true
	case TypeSS, TypeNS, TypeBS:
		return len(v.Set), true
	case TypeL:
		return len(v.L), true
	case TypeM:
		return len(v.M), true
	}
	return 0, false
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
