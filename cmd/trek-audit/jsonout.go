package main

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// jsonPrinter writes values as JSON for the commands' --json output (and
// export's JSON Lines). Stored text is whatever users typed: encoding/json
// escapes the controls below U+0020 but passes on others a terminal acts
// on, such as U+009B (a one-byte CSI) and the bidi overrides (U+202E), so
// those are written as \u escapes too. The JSON means exactly what it did,
// and printing it, on a terminal or in a pager, does no more than print.
type jsonPrinter struct {
	buf    bytes.Buffer
	enc    *json.Encoder
	indent bool
}

func newJSONPrinter(indent bool) *jsonPrinter {
	p := &jsonPrinter{indent: indent}
	p.enc = json.NewEncoder(&p.buf)
	p.enc.SetEscapeHTML(false)
	if indent {
		p.enc.SetIndent("", "  ")
	}
	return p
}

// print writes v to w as JSON and a newline.
func (p *jsonPrinter) print(w io.Writer, v any) error {
	p.buf.Reset()
	if err := p.enc.Encode(v); err != nil {
		return err
	}
	b := p.buf.Bytes()
	if printable(b) {
		_, err := w.Write(b)
		return err
	}
	_, err := io.WriteString(w, escapeJSONText(string(b)))
	return err
}

// printable reports whether JSON text b holds nothing escapeJSONText would
// escape: ASCII is checked byte by byte, the rest rune by rune.
func printable(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if (c < ' ' && c != '\n') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || !visibleRune(r) {
			return false
		}
		i += size
	}
	return true
}
