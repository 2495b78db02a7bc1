package main

// Fuzz targets for the text the command prints from the database, which
// anyone who could write to audit_log may have chosen: the terminal list's
// cells and the CSV export's fields. CI runs each for a bounded time with
// -fuzz; plain `go test` runs their seeds.

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// requireTerminalSafe fails unless s is valid UTF-8 of visible runes only:
// nothing that moves the cursor, colours the screen, reorders text,
// splits a tab-separated row or shows as a blank.
func requireTerminalSafe(t *testing.T, s, what string) {
	t.Helper()
	require.True(t, utf8.ValidString(s), "%s: invalid UTF-8 in %q", what, s)
	for _, r := range s {
		require.True(t, visible(r), "%s: unprintable or invisible %U in %q", what, r, s)
	}
}

// visible: printable, and not a rune that shows as nothing or a blank.
func visible(r rune) bool {
	return unicode.IsPrint(r) && r != '\u2800' && r != '\u3164' && r != '\u115f' && r != '\u1160' && r != '\uffa0' &&
		r != '\u034f' && !(r >= '\ufe00' && r <= '\ufe0f') && !(r >= 0xe0100 && r <= 0xe01ef)
}

// decodeExactly decodes valid JSON with its numbers as written, so that
// two texts compare equal when they mean the same: a number too large for
// a float64 (1E700) is still valid JSON, which testify's JSONEq refuses.
func decodeExactly(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "decoding %q", s)
	return v
}

func FuzzTerminalText(f *testing.F) {
	for _, s := range []string{
		"alice", "", "\x1b[31mred\x1b[0m", "a\tb\nc\r", "\u202eevil", "\xff\xfe", `back\slash`, "\u009b2J", "\u0085\u2028",
		`{"a":"\u001b[2J"}`, `{"title":"Lisbon"}`, `[1,"\u2028"]`, `{"a":`, "null", `"\ud800"`, "=HYPERLINK()", "a\u3164b", `{"a":"\u2800"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		requireTerminalSafe(t, escape(s), "escape")
		if strings.IndexFunc(s, func(r rune) bool { return r == '\\' || !visible(r) }) < 0 && utf8.ValidString(s) {
			require.Equal(t, s, escape(s), "plain text is printed as it is")
		}

		d := detailsText(json.RawMessage(s))
		requireTerminalSafe(t, d, "detailsText")
		var compact bytes.Buffer
		if json.Compact(&compact, []byte(s)) == nil && utf8.ValidString(s) && s != "null" {
			// Valid JSON stays JSON, and means what it meant.
			require.True(t, json.Valid([]byte(d)), "detailsText(%q) = %q is not JSON", s, d)
			require.Equal(t, decodeExactly(t, compact.String()), decodeExactly(t, d), "detailsText(%q) = %q", s, d)
		}

		// What --json prints: safe on a terminal, and the same text.
		for _, indent := range []bool{false, true} {
			var out bytes.Buffer
			require.NoError(t, newJSONPrinter(indent).print(&out, map[string]any{"s": s, "n": []string{s}}))
			require.True(t, strings.HasSuffix(out.String(), "\n"))
			for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				requireTerminalSafe(t, l, "jsonPrinter")
			}
			var back struct {
				S string   `json:"s"`
				N []string `json:"n"`
			}
			require.NoError(t, json.Unmarshal(out.Bytes(), &back))
			if utf8.ValidString(s) {
				require.Equal(t, s, back.S)
				require.Equal(t, []string{s}, back.N)
			}
		}

		c := defuse(s)
		if c != s {
			require.Equal(t, "'"+s, c)
		}
		if c != "" {
			require.NotContains(t, "=+-@\t\r", c[:1], "a spreadsheet would take %q for a formula", c)
		}
	})
}
