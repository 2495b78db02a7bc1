package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
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
// Values under keys that name secrets (DefaultSecretKeys, Config.SecretKeys)
// are written as "[REDACTED]", as in events: the attribute's own key, the
// name of a group it is in (a group stands for a nested object), or the
// dotted key whole, each read as a detail key is. Maps, slices and structs
// are written as JSON, with what lies under secret keys inside them (map
// keys, field names, json names, the keys of a slog.Value or slog.Attr they
// hold) redacted as in details, and so is JSON held in a []byte or
// json.RawMessage; the handler walks them itself, calling no MarshalJSON
// (see valueWriter). A key, the message or a value longer than 8 KiB is
// cut with a mark, and a line longer than 64 KiB after its last whole
// attribute, so that no record is too large for the rotation and lost.
// Groups nest at most 100 deep. opts may be nil: the level is then
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
	attrEnds  []int    // where each of them ends in attrs
	groups    []string // open groups, from WithGroup
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	b, ends := h.format(r, false)
	if isAnchorShaped(b) {
		// A record without a time whose message reads like the time and
		// the tag of a chain head: quoted, it cannot be taken for one.
		b, ends = h.format(r, true)
	}
	if len(b) > maxLogLine {
		// Cut after the last whole attribute that fits, so that every
		// key and value left reads back; the message always fits.
		n := ends[0]
		for _, e := range ends {
			if e+1+len(truncatedMark) <= maxLogLine {
				n = e
			}
		}
		b = append(append(b[:n], ' '), truncatedMark...)
	}
	b = append(b, '\n')
	if lw, ok := h.w.(interface{ writeLines([]byte) error }); ok {
		// trek.log: a host's unfinished raw line is ended first.
		return hostWriteError(lw.writeLines(b))
	}
	_, err := h.w.Write(b)
	return hostWriteError(err)
}

// format builds r's line, without its newline, and says where the message
// and each attribute end in it.
func (h *logHandler) format(r slog.Record, quoteMsg bool) (b []byte, ends []int) {
	b = make([]byte, 0, 128+len(h.attrs))
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
	ends = append(ends, len(b))
	if h.addSource && r.PC != 0 {
		// A *slog.Source, as slog's handlers pass it to ReplaceAttr.
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		b = h.appendAttr(b, nil, slog.Any(slog.SourceKey, &slog.Source{Function: f.Function, File: f.File, Line: f.Line}))
		ends = append(ends, len(b))
	}
	for _, e := range h.attrEnds {
		ends = append(ends, len(b)+e)
	}
	b = append(b, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		b = h.appendAttr(b, h.groups, a)
		ends = append(ends, len(b))
		return true
	})
	return b, ends
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.attrs = append([]byte(nil), h.attrs...)
	c.attrEnds = slices.Clone(h.attrEnds)
	for _, a := range attrs {
		c.attrs = h.appendAttr(c.attrs, h.groups, a)
		c.attrEnds = append(c.attrEnds, len(c.attrs))
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
	return h.appendAttrAt(b, groups, a, 0)
}

// appendAttrAt is appendAttr within depth groups of the attribute's own.
// Past maxDetailsDepth of them, which a LogValuer holding itself in a
// group (a tree node that logs its parent) would nest without end, the
// attribute is written as truncatedMark: each level would also copy the
// whole path, and the memory grow with the square of the depth.
func (h *logHandler) appendAttrAt(b []byte, groups []string, a slog.Attr, depth int) []byte {
	if depth >= maxDetailsDepth {
		b = append(b, ' ')
		b = appendWord(b, cutString(strings.Join(append(slices.Clip(groups), a.Key), "."), maxLogValue))
		return append(append(b, '='), truncatedMark...)
	}
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
			b = h.appendAttrAt(b, groups, ga, depth+1)
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
	case h.secret(key, groups, a.Key):
		return append(b, redactedValue...)
	case a.Value.Kind() == slog.KindTime:
		return append(b, a.Value.Time().Format(time.RFC3339Nano)...)
	default:
		return appendWord(b, cutString(h.valueText(a.Value), maxLogValue))
	}
}

// secret reports whether the attribute whose dotted key is key, in groups,
// holds a secret: its own key, or the name of a group it is in, read as a
// detail key is (a group stands for a nested object: db.pass as
// {"db":{"pass":...}}), or the dotted key whole.
func (h *logHandler) secret(key string, groups []string, own string) bool {
	if h.redact == nil {
		return false
	}
	return h.redact.isSecret(own) || h.redact.isSecret(key) || slices.ContainsFunc(groups, h.redact.isSecret)
}

// valueText is v as slog's text handler writes it: []byte as text, a
// TextMarshaler's text, a source as file:line, anything else as fmt prints
// it (a String, Error or MarshalText method that panics is caught, see
// leafText). Maps, slices, arrays and structs, and JSON in a
// []byte, are written as JSON instead, so that what lies under secret keys
// in them is redacted as in details (see valueWriter and cleanJSONBytes).
func (h *logHandler) valueText(v slog.Value) string {
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
	case json.RawMessage:
		return h.jsonBytes(x)
	case []byte:
		return h.jsonBytes(x)
	}
	if composite(x) {
		return logValueJSON(h.redact, x)
	}
	// A TextMarshaler's text, or as fmt prints it (a Stringer, an error),
	// through leafText, which survives a method that panics, and a panic
	// value that panics again as it is printed, where fmt alone would not.
	return leafText(x)
}

// jsonBytes is b, JSON redacted as details are where it is JSON, else the
// text it holds. JSON too long to be kept whole on a line is not decoded.
func (h *logHandler) jsonBytes(b []byte) string {
	if len(b) > maxLogLine {
		if json.Valid(b) {
			return truncatedMark
		}
		return string(b)
	}
	switch enc, isJSON, err := cleanJSONBytes(h.redact, b, maxDetailsDepth); {
	case !isJSON:
		return string(b)
	case err != nil:
		return redactedValue
	default:
		return string(enc)
	}
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
