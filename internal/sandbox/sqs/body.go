package sqs

import (
	"encoding/json"
	"reflect"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// body is a message body as the client sent it. encoding/json would turn
// bytes that are not UTF-8 into U+FFFD, which SQS accepts, and store a
// message the client never sent; body keeps them, so the broker refuses
// them with InvalidMessageContents as it does for the query protocol. A
// \u escape of a lone surrogate is kept as its three-byte (WTF-8) form,
// which is not UTF-8 either.
type body string

// UnmarshalJSON reads a JSON string without replacing anything in it.
func (b *body) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '"' {
		if string(data) == "null" {
			return nil
		}
		kind := "number"
		switch data[0] {
		case '[':
			kind = "array"
		case '{':
			kind = "object"
		case 't', 'f':
			kind = "bool"
		}
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[string]()}
	}
	s, ok := unquoteRaw(data)
	if !ok {
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[string]()}
	}
	*b = body(s)
	return nil
}

// unquoteRaw unquotes a JSON string literal (already checked by the JSON
// scanner) byte for byte: escapes are decoded, every other byte is kept
// as it is, valid UTF-8 or not.
func unquoteRaw(lit []byte) (string, bool) {
	lit = lit[1 : len(lit)-1]
	out := make([]byte, 0, len(lit))
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(lit) {
			return "", false
		}
		switch lit[i] {
		case '"', '\\', '/':
			out = append(out, lit[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(lit[i+1:])
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(lit) && lit[i+1] == '\\' && lit[i+2] == 'u' {
					if r2, ok := hex4(lit[i+3:]); ok {
						if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
							out = utf8.AppendRune(out, pair)
							i += 6
							continue
						}
					}
				}
				// A lone surrogate: its WTF-8 bytes, which are not UTF-8.
				out = append(out, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
				continue
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(n), err == nil
}
