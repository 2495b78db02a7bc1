package audit

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// LogHandler returns a slog.Handler that writes the host's own log lines to
// trek.log in TREK's format, so one rotated file has one owner:
//
//	[INFO] 2026-04-20T10:11:53 server started port=3000
//
// Times are in the Auditor's TZ. The message and every value are escaped as
// the audit lines are, so no log call can break a line, and no value can
// pass for another field. Keep the message a constant, as slog intends, and
// put what users typed in values: a message of plain words is written
// bare, so user text passed as the message could read like an audit line.
//
// Values under keys that name secrets (DefaultSecretKeys, Config.SecretKeys,
// the dotted key read as a detail key is) are written as "[REDACTED]", as
// in events. Maps, slices and structs are written as JSON, with what lies
// under secret keys inside them redacted as in details, and so is JSON
// held in a []byte or json.RawMessage. A key, the message or a value
// longer than 8 KiB is cut with a mark, and a line longer than 64 KiB too,
// so that no record is too large for the rotation and lost. opts may be nil: the level is then
// debug where LOG_LEVEL is debug, info otherwise. opts.ReplaceAttr is called
// for each attribute, with the groups it is in; the level, time and message
// are TREK's line's own and do not pass through it. opts.AddSource adds
// source=file:line.
func (a *Auditor) LogHandler(opts *slog.HandlerOptions) slog.Handler {
	h := &logHandler{w: a.log, loc: a.loc, level: slog.LevelInfo, redact: &a.redact}
	if a.debug {
		h.level = slog.LevelDebug
	}
	if opts != nil {
		if opts.Level != nil {
			h.level = opts.Level
		}
		h.replace, h.addSource = opts.ReplaceAttr, opts.AddSource
	}
	return h
}

// maxLogValue bounds one key, one value and the message on a host's line,
// and maxLogLine the line, its escapes included.
const (
	maxLogValue = 8 << 10
	maxLogLine  = 64 << 10
)

type logHandler struct {
	w         io.Writer
	loc       *time.Location
	level     slog.Leveler
	redact    *redactor // nil: no redaction (tests of slog's rules)
	replace   func(groups []string, a slog.Attr) slog.Attr
	addSource bool
	attrs     []byte   // " k=v" pairs from WithAttrs, already formatted
	groups    []string // open groups, from WithGroup
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	b := h.format(r, false)
	if isAnchorShaped(b) {
		// A record without a time whose message reads like the time and
		// the tag of a chain head: quoted, it cannot be taken for one.
		b = h.format(r, true)
	}
	if len(b) > maxLogLine {
		// Escaped, the line is printable ASCII and whole runes: cut on a
		// rune's start, it stays one valid line.
		n := maxLogLine - len(truncatedMark) - 1
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = append(append(b[:n], ' '), truncatedMark...)
	}
	b = append(b, '\n')
	if lw, ok := h.w.(interface{ writeLines([]byte) error }); ok {
		// trek.log: a host's unfinished raw line is ended first.
		return lw.writeLines(b)
	}
	_, err := h.w.Write(b)
	return err
}

// format builds r's line, without its newline.
func (h *logHandler) format(r slog.Record, quoteMsg bool) []byte {
	b := make([]byte, 0, 128+len(h.attrs))
	b = append(b, '[')
	b = append(b, r.Level.String()...)
	b = append(b, "] "...)
	if !r.Time.IsZero() {
		b = r.Time.In(h.loc).AppendFormat(b, logTimeLayout)
		b = append(b, ' ')
	}
	if msg := cutString(r.Message, maxLogValue); quoteMsg {
		b = appendQuoted(b, msg)
	} else {
		b = appendMessage(b, msg)
	}
	if h.addSource && r.PC != 0 {
		// A *slog.Source, as slog's handlers pass it to ReplaceAttr.
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		b = h.appendAttr(b, nil, slog.Any(slog.SourceKey, &slog.Source{Function: f.Function, File: f.File, Line: f.Line}))
	}
	b = append(b, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		b = h.appendAttr(b, h.groups, a)
		return true
	})
	return b
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.attrs = append([]byte(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = h.appendAttr(c.attrs, h.groups, a)
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(slices.Clip(h.groups), name)
	return &c
}

// appendAttr writes " key=value", groups flattened to dotted keys as
// slog's text handler does.
func (h *logHandler) appendAttr(b []byte, groups []string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if h.replace != nil && a.Value.Kind() != slog.KindGroup {
		a = h.replace(slices.Clip(groups), a)
		a.Value = a.Value.Resolve()
	}
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return b
		}
		if a.Key != "" {
			groups = append(slices.Clip(groups), a.Key)
		}
		for _, ga := range attrs {
			b = h.appendAttr(b, groups, ga)
		}
		return b
	}
	key := a.Key
	if len(groups) > 0 {
		key = strings.Join(groups, ".") + "." + key
	}
	b = append(b, ' ')
	b = appendWord(b, cutString(key, maxLogValue))
	b = append(b, '=')
	switch {
	case h.redact != nil && h.redact.isSecret(key):
		return append(b, redactedValue...)
	case a.Value.Kind() == slog.KindTime:
		return append(b, a.Value.Time().Format(time.RFC3339Nano)...)
	default:
		return appendWord(b, cutString(h.valueText(a.Value), maxLogValue))
	}
}

// valueText is v as slog's text handler writes it: []byte as text, a
// TextMarshaler's text, a source as file:line, an error or a Stringer as
// fmt prints it (which survives a String method that panics; a MarshalText
// that panics is caught here). Maps, slices and structs, and JSON in a
// []byte, are written as JSON instead, so that what lies under secret keys
// in them is redacted as in details (see redactedJSON).
func (h *logHandler) valueText(v slog.Value) (s string) {
	if v.Kind() != slog.KindAny {
		return v.String()
	}
	x := v.Any()
	if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return "<nil>" // as fmt and slog write it; MarshalText of a nil pointer would panic
	}
	switch x := x.(type) {
	case *slog.Source:
		return x.File + ":" + strconv.Itoa(x.Line)
	case []byte:
		if json.Valid(x) {
			if t, ok := h.redactedJSON(json.RawMessage(x)); ok {
				return t
			}
		}
		return string(x) // text, as a string value is
	case encoding.TextMarshaler:
		defer func() {
			if p := recover(); p != nil {
				s = fmt.Sprintf("!PANIC: %v", p)
			}
		}()
		t, err := x.MarshalText()
		if err != nil {
			return "!ERROR:" + err.Error()
		}
		return string(t)
	case error, fmt.Stringer:
		return v.String()
	}
	switch reflect.Indirect(reflect.ValueOf(x)).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		if t, ok := h.redactedJSON(x); ok {
			return t
		}
		return h.redactedText(v.String())
	}
	return v.String()
}

// redactedJSON encodes x as details are encoded: as JSON, what lies under
// secret keys redacted, nesting past maxDetailsDepth cut. ok is false
// where JSON cannot encode x (a channel, a func, a cycle).
func (h *logHandler) redactedJSON(x any) (string, bool) {
	enc, err := marshalText(x)
	if err != nil {
		return "", false
	}
	if h.redact == nil {
		return string(enc), true
	}
	enc = capDepth(bytes.ToValidUTF8(enc, []byte("\uFFFD")))
	if !h.redact.mayHoldSecret(enc) {
		return string(enc), true
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(enc))
	dec.UseNumber()
	if dec.Decode(&tree) != nil {
		return "", false
	}
	h.redact.scrub(tree)
	if enc, err = marshalText(tree); err != nil {
		return "", false
	}
	return string(enc), true
}

// redactedText is s, a map, slice or struct as fmt prints it where JSON
// cannot encode it, unless s may hold a secret: then the mark alone, since
// its keys cannot be told from its values.
func (h *logHandler) redactedText(s string) string {
	if h.redact != nil && h.redact.mayHoldSecret([]byte(s)) {
		return redactedValue
	}
	return s
}

// appendMessage writes a message bare when it is printable text that cannot
// be mistaken for an attribute (no '=', no quote, no leading or trailing
// space) nor for the library's own AUDIT lines, and quoted otherwise.
func appendMessage(b []byte, msg string) []byte {
	if msg == "" || msg[0] == ' ' || msg[len(msg)-1] == ' ' || strings.HasPrefix(msg, "AUDIT") {
		return appendQuoted(b, msg)
	}
	for _, r := range msg {
		if r == '=' || (r != ' ' && !plainRune(r)) {
			return appendQuoted(b, msg)
		}
	}
	return append(b, msg...)
}
