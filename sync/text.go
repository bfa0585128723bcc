package sync

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Text rules (SPEC §12): every string a client sends — in a REST body, a URL or a
// WebSocket message — is valid UTF-8 without the NUL character. No store keeps NUL in
// text (Postgres refuses it in text and jsonb), and invalid UTF-8 compares differently
// in each, so both are refused before they reach one.

// ValidText reports whether s is valid UTF-8 without NUL.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// NULEscape returns the offset of the first \u0000 escape in the strings of a
// well-formed JSON text, or -1. An escaped backslash followed by "u0000" is not one.
func NULEscape(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' && string(b[i+2:i+6]) == "0000" {
			return i
		}
		i++ // skip the escaped character (a backslash, say)
	}
	return -1
}

// ValidJSONText reports whether a JSON text is valid UTF-8 and holds no NUL, raw or
// escaped.
func ValidJSONText(b []byte) bool {
	return utf8.Valid(b) && NULEscape(b) < 0 && bytes.IndexByte(b, 0) < 0
}

// checkText is the validation_failed error for a field whose text breaks the rules.
func checkText(field, s string) error {
	if ValidText(s) {
		return nil
	}
	return Invalid(field, "text", "", "%s must be valid UTF-8 without the NUL character", field)
}

// MaxJSONDepth bounds the nesting of any JSON a client sends (a body, a message, a
// setting, widget data): deeper than this is refused, so that every answer that holds
// such a value stays within what JSON parsers take (encoding/json stops at 10,000).
const MaxJSONDepth = 64

// JSONDepth returns the deepest nesting of arrays and objects in a JSON text (0 for a
// scalar), stopping early once it passes MaxJSONDepth.
func JSONDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > deepest {
				if deepest = depth; deepest > MaxJSONDepth {
					return deepest
				}
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
