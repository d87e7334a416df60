package tables

import (
	_ "embed"
	"strings"
	"sync"
)

// reservedText is DynamoDB's list of reserved words (the developer guide's
// "Reserved words in DynamoDB"), one a line. None may be used as a bare
// attribute name in an expression.
//
//go:embed reserved.txt
var reservedText string

// reserved is built on first use: a program that never parses an
// expression (the agent, a step's supervisor) does not pay for it.
var reserved = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(reservedText) {
		m[w] = true
	}
	return m
})

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // attribute name, keyword or function name
	tName           // #placeholder
	tValue          // :placeholder
	tNum            // digits (list index)
	tLParen         // (
	tRParen         // )
	tLBrack         // [
	tRBrack         // ]
	tComma          // ,
	tDot            // .
	tEq             // =
	tNe             // <>
	tLt             // <
	tLe             // <=
	tGt             // >
	tGe             // >=
	tPlus           // +
	tMinus          // -
	tBad            // anything else
)

type token struct {
	kind     tokKind
	text     string
	pos, end int
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isWord(c byte) bool   { return isLetter(c) || isDigit(c) || c == '_' }

// lex splits an expression into tokens, ending with tEOF. It never fails:
// characters outside the grammar become tBad tokens for the parser to
// report.
func lex(src string) []token {
	var toks []token
	i := 0
	for {
		for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
			i++
		}
		if i >= len(src) {
			return append(toks, token{kind: tEOF, text: "<EOF>", pos: len(src), end: len(src)})
		}
		start := i
		c := src[i]
		kind := tBad
		switch {
		case isLetter(c) || c == '_':
			for i < len(src) && isWord(src[i]) {
				i++
			}
			kind = tIdent
		case isDigit(c):
			for i < len(src) && isDigit(src[i]) {
				i++
			}
			kind = tNum
		case c == '#' || c == ':':
			i++
			for i < len(src) && isWord(src[i]) {
				i++
			}
			if i > start+1 {
				kind = tName
				if c == ':' {
					kind = tValue
				}
			}
		case c == '<':
			i++
			kind = tLt
			if i < len(src) && src[i] == '>' {
				i, kind = i+1, tNe
			} else if i < len(src) && src[i] == '=' {
				i, kind = i+1, tLe
			}
		case c == '>':
			i++
			kind = tGt
			if i < len(src) && src[i] == '=' {
				i, kind = i+1, tGe
			}
		default:
			i++
			kind = map[byte]tokKind{'(': tLParen, ')': tRParen, '[': tLBrack, ']': tRBrack, ',': tComma,
				'.': tDot, '=': tEq, '+': tPlus, '-': tMinus}[c]
			if kind == tEOF { // not in the map
				kind = tBad
				// keep a whole UTF-8 sequence together
				for i < len(src) && src[i]&0xC0 == 0x80 {
					i++
				}
			}
		}
		toks = append(toks, token{kind: kind, text: src[start:i], pos: start, end: i})
	}
}
