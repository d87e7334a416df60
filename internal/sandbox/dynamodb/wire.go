package dynamodb

import (
	"encoding/base64"
	"encoding/json"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
)

// rawItem is an item, key or placeholder map as it arrives.
type rawItem map[string]json.RawMessage

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// decodeValue reads one AttributeValue: exactly one type member.
func decodeValue(raw json.RawMessage) (tables.Value, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return tables.Value{}, serialization("Unexpected value for an AttributeValue: expected an object such as {\"S\": \"text\"}.")
	}
	var typ string
	var member json.RawMessage
	n := 0
	for k, v := range m {
		switch k {
		case "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS":
			if !isNull(v) {
				typ, member = k, v
				n++
			}
		}
	}
	switch {
	case n == 0:
		return tables.Value{}, validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
	case n > 1:
		return tables.Value{}, validation("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
	}
	bad := func(want string) (tables.Value, error) {
		return tables.Value{}, serialization("Unexpected value for AttributeValue member " + typ + ": expected " + want + ".")
	}
	switch typ {
	case "S", "N":
		var s string
		if json.Unmarshal(member, &s) != nil {
			return bad("a string")
		}
		return tables.Value{Type: tables.Type(typ), Str: s}, nil
	case "B":
		b, err := decodeBinary(member)
		if err != nil {
			return tables.Value{}, err
		}
		return tables.B(b), nil
	case "BOOL", "NULL":
		var b bool
		if json.Unmarshal(member, &b) != nil {
			return bad("true or false")
		}
		if typ == "NULL" {
			if !b {
				return tables.Value{}, validation("One or more parameter values were invalid: Null attribute value types must have the value of true")
			}
			return tables.Null(), nil
		}
		return tables.Bool(b), nil
	case "M":
		var mm rawItem
		if json.Unmarshal(member, &mm) != nil {
			return bad("an object")
		}
		it, err := decodeItem(mm)
		if err != nil {
			return tables.Value{}, err
		}
		if it == nil {
			it = tables.Item{}
		}
		return tables.M(it), nil
	case "L":
		var l []json.RawMessage
		if json.Unmarshal(member, &l) != nil {
			return bad("an array")
		}
		out := tables.Value{Type: tables.TypeL, L: make([]tables.Value, len(l))}
		for i, e := range l {
			v, err := decodeValue(e)
			if err != nil {
				return tables.Value{}, err
			}
			out.L[i] = v
		}
		return out, nil
	case "SS", "NS":
		var s []string
		if json.Unmarshal(member, &s) != nil {
			return bad("an array of strings")
		}
		return tables.Value{Type: tables.Type(typ), Set: s}, nil
	default: // BS
		var l []json.RawMessage
		if json.Unmarshal(member, &l) != nil {
			return bad("an array of base64 strings")
		}
		out := tables.Value{Type: tables.TypeBS}
		for _, e := range l {
			b, err := decodeBinary(e)
			if err != nil {
				return tables.Value{}, err
			}
			out.Set = append(out.Set, string(b))
		}
		return out, nil
	}
}

func decodeBinary(raw json.RawMessage) ([]byte, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, serialization("Unexpected value for a binary AttributeValue: expected a base64 string.")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, serialization("Base64 encoded binary is invalid: " + err.Error())
	}
	return b, nil
}

// decodeItem reads an attribute map; nil stays nil (the member was absent).
func decodeItem(m rawItem) (tables.Item, error) {
	if m == nil {
		return nil, nil
	}
	out := make(tables.Item, len(m))
	for k, raw := range m {
		v, err := decodeValue(raw)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// encodeValue renders a value in the wire form ([]byte marshals as base64).
func encodeValue(v tables.Value) map[string]any {
	switch v.Type {
	case tables.TypeS, tables.TypeN:
		return map[string]any{string(v.Type): v.Str}
	case tables.TypeB:
		return map[string]any{"B": []byte(v.Str)}
	case tables.TypeBOOL:
		return map[string]any{"BOOL": v.Bool}
	case tables.TypeNULL:
		return map[string]any{"NULL": true}
	case tables.TypeM:
		return map[string]any{"M": encodeItem(v.M)}
	case tables.TypeL:
		l := make([]any, len(v.L))
		for i, e := range v.L {
			l[i] = encodeValue(e)
		}
		return map[string]any{"L": l}
	case tables.TypeBS:
		l := make([][]byte, len(v.Set))
		for i, e := range v.Set {
			l[i] = []byte(e)
		}
		return map[string]any{"BS": l}
	default: // SS, NS
		return map[string]any{string(v.Type): v.Set}
	}
}

func encodeItem(it map[string]tables.Value) map[string]any {
	if it == nil {
		return nil
	}
	out := make(map[string]any, len(it))
	for k, v := range it {
		out[k] = encodeValue(v)
	}
	return out
}
