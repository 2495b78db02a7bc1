package audit

import (
	"context"
	"io"
	"log/slog"
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
// opts may be nil (level info).
func (a *Auditor) LogHandler(opts *slog.HandlerOptions) slog.Handler {
	h := &logHandler{w: a.log, loc: a.loc, level: slog.LevelInfo}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h
}

type logHandler struct {
	w      io.Writer
	loc    *time.Location
	level  slog.Leveler
	attrs  []byte // " k=v" pairs from WithAttrs, already formatted
	prefix string // open groups, "a.b."
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	b := make([]byte, 0, 128+len(h.attrs))
	b = append(b, '[')
	b = append(b, r.Level.String()...)
	b = append(b, "] "...)
	if !r.Time.IsZero() {
		b = r.Time.In(h.loc).AppendFormat(b, logTimeLayout)
		b = append(b, ' ')
	}
	b = appendMessage(b, r.Message)
	b = append(b, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, h.prefix, a)
		return true
	})
	b = append(b, '\n')
	_, err := h.w.Write(b)
	return err
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.attrs = append([]byte(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// appendAttr writes " key=value", groups flattened to dotted keys as
// slog's text handler does.
func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return b
		}
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range attrs {
			b = appendAttr(b, prefix, ga)
		}
		return b
	}
	b = append(b, ' ')
	b = appendWord(b, prefix+a.Key)
	b = append(b, '=')
	switch a.Value.Kind() {
	case slog.KindTime:
		return append(b, a.Value.Time().Format(time.RFC3339Nano)...)
	default:
		return appendWord(b, a.Value.String())
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
