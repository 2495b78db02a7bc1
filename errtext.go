package audit

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The library's errors end up in the host's logs (TREK's server logs
// every audit error), in Stats().LastError and on an operator's terminal.
// Some carry text the library did not write: the caller's own input
// (an action key, a detail key) and SQLite's messages, which quote names
// from the schema and the text of a trigger's RAISE. Whoever can write to
// travel.db chooses both of the latter, so neither may reach a log line
// as it is: a line break in it would forge log lines, an ANSI escape
// would act on the terminal that shows it.

// quotedMax bounds the caller's text quoted in an error: enough to
// recognise it, not a megabyte of key repeated into every log line.
const quotedMax = 128

// errTextMax bounds the text of an error safeError passes on.
const errTextMax = 4 << 10

// quoted is s cut to quotedMax bytes and quoted in Go syntax, which
// escapes every character that is not printable.
func quoted(s string) string { return strconv.Quote(cutString(s, quotedMax)) }

// schemaNames lists names read from the schema (with their types, where
// a check shows them), each as it is when it holds only ASCII letters,
// digits, '_' and spaces, quoted otherwise: whoever can write to
// travel.db names triggers and columns.
func schemaNames(names []string) string {
	shown := make([]string, len(names))
	for i, n := range names {
		shown[i] = n
		if n == "" {
			shown[i] = `""`
		}
		for _, c := range []byte(n) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ' ') {
				shown[i] = quoted(n)
				break
			}
		}
	}
	return strings.Join(shown, ", ")
}

// safeError returns err when its text is printable and at most errTextMax
// bytes, and otherwise an error that wraps err (errors.Is and errors.As
// still see everything err does) with that text cut to errTextMax bytes
// and every character that is not printable escaped as in a Go string
// (\n, \x1b, \u202e).
func safeError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(msg) <= errTextMax && printableText(msg) {
		return err
	}
	return &escapedError{err: err, text: escapeText(cutString(msg, errTextMax))}
}

// escapedError is an error whose text safeError has made safe to show.
type escapedError struct {
	err  error
	text string
}

func (e *escapedError) Error() string { return e.text }
func (e *escapedError) Unwrap() error { return e.err }

// printableText reports whether s is valid UTF-8 with only printable
// characters (strconv.IsPrint: letters, marks, numbers, punctuation,
// symbols and the ASCII space).
func printableText(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// escapeText writes each character of s that is not printable as its Go
// escape, and each byte of invalid UTF-8 as \xNN; the rest is kept.
func escapeText(s string) string {
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = fmt.Appendf(b, `\x%02x`, s[i])
		case r != utf8.RuneError && strconv.IsPrint(r):
			b = append(b, s[i:i+n]...)
		default:
			q := strconv.QuoteRune(r) // 'x' with x escaped
			b = append(b, q[1:len(q)-1]...)
		}
		i += n
	}
	return string(b)
}
