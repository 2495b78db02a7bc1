package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseLogLine reads one of LogHandler's lines back into the map shape
// testing/slogtest expects: level, time, msg and dotted keys as nested maps.
func parseLogLine(t *testing.T, line string) map[string]any {
	t.Helper()
	m := map[string]any{}
	require.True(t, strings.HasPrefix(line, "["), "line %q", line)
	end := strings.IndexByte(line, ']')
	require.Positive(t, end)
	m[slog.LevelKey] = line[1:end]
	rest := line[end+2:]
	if len(rest) >= len(logTimeLayout) {
		if _, err := time.Parse(logTimeLayout, rest[:len(logTimeLayout)]); err == nil {
			m[slog.TimeKey] = rest[:len(logTimeLayout)]
			rest = strings.TrimPrefix(rest[len(logTimeLayout):], " ")
		}
	}
	toks := splitQuoted(t, rest)
	var msg []string
	for _, tok := range toks {
		k, v, ok := strings.Cut(tok, "=")
		if !ok || strings.HasPrefix(tok, `"`) {
			msg = append(msg, unquoteMaybe(t, tok))
			continue
		}
		dst := m
		parts := strings.Split(k, ".")
		for _, g := range parts[:len(parts)-1] {
			sub, _ := dst[g].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				dst[g] = sub
			}
			dst = sub
		}
		dst[parts[len(parts)-1]] = unquoteMaybe(t, v)
	}
	m[slog.MessageKey] = strings.Join(msg, " ")
	return m
}

func splitQuoted(t *testing.T, s string) []string {
	var toks []string
	for len(s) > 0 {
		i := 0
		inQuote := false
		for i < len(s) && (inQuote || s[i] != ' ') {
			switch {
			case s[i] == '\\' && inQuote:
				i++
			case s[i] == '"':
				inQuote = !inQuote
			}
			i++
		}
		toks = append(toks, s[:min(i, len(s))])
		s = strings.TrimPrefix(s[min(i, len(s)):], " ")
	}
	return toks
}

func unquoteMaybe(t *testing.T, s string) string {
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		require.NoError(t, err, "token %q", s)
		return u
	}
	return s
}

func TestLogHandlerFollowsSlogRules(t *testing.T) {
	var buf bytes.Buffer
	r := newRedactor(nil) // as LogHandler sets it up
	h := &logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo, redact: &r,
		replace: func(_ []string, a slog.Attr) slog.Attr { return a }}
	results := func() []map[string]any {
		var out []map[string]any
		sc := bufio.NewScanner(&buf)
		for sc.Scan() {
			out = append(out, parseLogLine(t, sc.Text()))
		}
		return out
	}
	require.NoError(t, slogtest.TestHandler(h, results))
}

func TestLogHandlerSharesTrekLog(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"), TZ: "Europe/Berlin"})
	require.NoError(t, err)
	logger := slog.New(a.LogHandler(nil))
	logger.Info("server started", "port", 3000)
	logger.Debug("not shown at info level")
	logger.Warn("forged?\n[INFO] 2026-01-01T00:00:00 admin@example.com logged in ip=1.2.3.4", "user", "eve\r\n[INFO] x")
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1, Email: "a@example.com"}}))
	require.NoError(t, a.Close())

	raw, err := os.ReadFile(filepath.Join(dir, "logs", "trek.log"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Len(t, lines, 4) // three lines and the chain anchor of the one batch
	assert.Regexp(t, `^\[INFO\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d server started port=3000$`, lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "[WARN] "), lines[1])
	assert.Contains(t, lines[1], `"forged?\n[INFO] 2026-01-01T00:00:00 admin@example.com logged in ip=1.2.3.4"`)
	assert.Contains(t, lines[1], `user="eve\r\n[INFO] x"`)
	assert.Regexp(t, `^\[INFO\] \S+ a@example.com logged in ip=-$`, lines[2])
	assert.Regexp(t, `^\[INFO\] \S+ AUDIT-CHAIN head id=1 seq=1 mac=[0-9a-f]{64} tag=[0-9a-f]{32}$`, lines[3])
}

func TestLogHandlerLevels(t *testing.T) {
	var buf bytes.Buffer
	h := &logHandler{w: &buf, loc: time.UTC, level: slog.LevelWarn}
	logger := slog.New(h)
	logger.Info("hidden")
	logger.Warn("shown", "n", 1)
	logger.Error("failed", "err", "disk full")
	assert.Regexp(t, `^\[WARN\] \S+ shown n=1\n\[ERROR\] \S+ failed err="disk full"\n$`, buf.String())
}

// openLogTest opens an Auditor on a fresh folder and returns it with the
// path of its trek.log; closed when the test ends.
func openLogTest(t *testing.T, cfg Config) (*Auditor, string) {
	t.Helper()
	dir := t.TempDir()
	cfg.DBPath, cfg.LogPath = filepath.Join(dir, "travel.db"), filepath.Join(dir, "logs", "trek.log")
	return openAuditor(t, cfg), cfg.LogPath
}

// TestLogHandlerOptionsAndSecrets: ReplaceAttr runs for every attribute
// with its groups, AddSource names the caller, and values under secret
// keys are redacted as in events, whatever groups they sit in.
func TestLogHandlerOptionsAndSecrets(t *testing.T) {
	a, path := openLogTest(t, Config{})
	var groups []string
	opts := &slog.HandlerOptions{AddSource: true, ReplaceAttr: func(gs []string, at slog.Attr) slog.Attr {
		if at.Key == "card" {
			groups = append(groups, strings.Join(gs, "."))
			return slog.String("card", "****")
		}
		return at
	}}
	logger := slog.New(a.LogHandler(opts)).WithGroup("req")
	_, file, line, _ := runtime.Caller(0)
	logger.Info("login failed", "card", "4111", "password", "hunter2",
		slog.Group("smtp", "pass", "s3cr3t", "host", "mail.example.com"), "user", "alice")
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	got := lines[0]
	assert.Equal(t, []string{"req"}, groups, "ReplaceAttr sees the open groups")
	assert.Contains(t, got, " req.card=**** ")
	assert.Contains(t, got, " req.password=[REDACTED] ")
	assert.Contains(t, got, " req.smtp.pass=[REDACTED] ")
	assert.Contains(t, got, " req.smtp.host=mail.example.com ")
	assert.Contains(t, got, " req.user=alice")
	assert.Contains(t, got, fmt.Sprintf(" source=%s:%d ", file, line+1))
	for _, secret := range []string{"4111", "hunter2", "s3cr3t"} {
		assert.NotContains(t, got, secret)
	}
}

// TestHostLinesFollowTrekLogRemoved: host lines written after trek.log was
// removed go to a new trek.log, as events' do, not into the removed file.
func TestHostLinesFollowTrekLogRemoved(t *testing.T) {
	a, path := openLogTest(t, Config{})
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
	require.NoError(t, os.Remove(path))
	slog.New(a.LogHandler(nil)).Info("after the removal")
	_, err := a.LogWriter().Write([]byte("raw after the removal\n"))
	require.NoError(t, err)
	lines := logLines(t, path)
	require.Len(t, lines, 2)
	assert.Regexp(t, `^\[INFO\] \S+ after the removal$`, lines[0])
	assert.Equal(t, "raw after the removal", lines[1])
}

func TestLogHandlerLevelFollowsLOG_LEVEL(t *testing.T) {
	a, path := openLogTest(t, Config{LogLevel: "debug"})
	slog.New(a.LogHandler(nil)).Debug("cache miss", "key", "trip:12")
	b, _ := openLogTest(t, Config{})
	slog.New(b.LogHandler(nil)).Debug("not shown")
	assert.Equal(t, slog.LevelInfo, b.LogHandler(nil).(*logHandler).level.Level())
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	assert.Regexp(t, `^\[DEBUG\] \S+ cache miss key=trip:12$`, lines[0])
}

// TestLogHandlerEndsAHostsUnfinishedLine: as for the library's own lines.
func TestLogHandlerEndsAHostsUnfinishedLine(t *testing.T) {
	a, path := openLogTest(t, Config{})
	_, err := a.LogWriter().Write([]byte("progress 50%"))
	require.NoError(t, err)
	slog.New(a.LogHandler(nil)).Info("server started")
	lines := logLines(t, path)
	require.Len(t, lines, 2)
	assert.Equal(t, "progress 50%", lines[0])
	assert.Regexp(t, `^\[INFO\] \S+ server started$`, lines[1])
}

// TestLogHandlerCutsHugeValues: a record larger than the rotation size
// would be refused whole by lumberjack, and slog drops a handler's error.
func TestLogHandlerCutsHugeValues(t *testing.T) {
	a, path := openLogTest(t, Config{})
	slog.New(a.LogHandler(nil)).Info(strings.Repeat("m", 20<<10), "body", strings.Repeat("a", 11<<20), "n", 1)
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	assert.Less(t, len(lines[0]), 3*maxLogValue)
	// (Not assert.Contains: its message would print the whole line.)
	assert.Equal(t, 2, strings.Count(lines[0], truncatedMark), "the message and the value are cut")
	assert.True(t, strings.HasSuffix(lines[0], truncatedMark+" n=1"), "the attributes after them are kept")
}

// TestLogHandlerCannotWriteAnAnchorShapedLine: a record without a time
// whose message reads like a chain head's time and tag.
func TestLogHandlerCannotWriteAnAnchorShapedLine(t *testing.T) {
	a, path := openLogTest(t, Config{})
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "2026-04-20T10:11:53 AUDIT-CHAIN head", 0)
	r.AddAttrs(slog.Int("id", 99), slog.Int("seq", 99), slog.String("mac", strings.Repeat("a", 64)), slog.String("tag", strings.Repeat("b", 32)))
	require.NoError(t, a.LogHandler(nil).Handle(t.Context(), r))
	lines := logLines(t, path)
	require.Len(t, lines, 3)
	assert.False(t, isAnchorShaped([]byte(lines[2])), lines[2])
	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact)
	assert.Zero(t, rep.RejectedAnchors)
}

type panicText struct{}

func (panicText) MarshalText() ([]byte, error) { panic("boom") }

// TestLogHandlerValuesAsSlogWritesThem: []byte as text and a
// TextMarshaler's text, as slog's text handler writes them.
func TestLogHandlerValuesAsSlogWritesThem(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(&logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo})
	logger.Info("bad request", "body", []byte(`{"a":1}`), "ip", netip.MustParseAddr("203.0.113.9"), "odd", panicText{})
	assert.Contains(t, buf.String(), ` body="{\"a\":1}" ip=203.0.113.9 odd="!PANIC: boom"`)
}

// TestLogHandlerRedactsWithinValues: a request body or a headers map
// logged under an ordinary key is how secrets reach a log file. Such
// values are written as JSON and redacted as event details are.
func TestLogHandlerRedactsWithinValues(t *testing.T) {
	a, path := openLogTest(t, Config{})
	type login struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	slog.New(a.LogHandler(nil)).Info("bad request",
		"body", map[string]any{"password": "hunter2", "email": "a@example.com"},
		"raw", []byte(`{"token":"abc123","n":1}`),
		"msg", json.RawMessage(`{"api-key":"k-42"}`),
		"form", &login{Email: "b@example.com", Password: "pw-7"},
		"list", []map[string]string{{"cookie": "sid=9"}},
		"text", []byte("not json, no keys"),
		"deadline", (*time.Time)(nil))
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	for _, secret := range []string{"hunter2", "abc123", "k-42", "pw-7", "sid=9"} {
		assert.NotContains(t, lines[0], secret)
	}
	for _, kept := range []string{`\"email\":\"a@example.com\"`, `\"n\":1`, `\"email\":\"b@example.com\"`,
		`text="not json, no keys"`, `deadline=<nil>`} {
		assert.Contains(t, lines[0], kept)
	}
}

// TestLogHandlerRedactsInGroupsAsInNestedObjects: a slog group stands for
// a nested object, so a key within it is read as the same key of a nested
// map is (db.pass as {"db":{"pass":...}}, pass being secret only whole);
// and a slog.Value or slog.Attr held in a map is written as what it holds,
// redacted, not as its String.
func TestLogHandlerRedactsInGroupsAsInNestedObjects(t *testing.T) {
	a, path := openLogTest(t, Config{})
	logger := slog.New(a.LogHandler(nil))
	logger.Info("db connect", slog.Group("db", "pass", "grp-pass", "host", "db.local"))
	logger.WithGroup("req").Info("card check", "pin", "1234", "otp", "987654", "amount", 12)
	logger.Info("held", "m", map[string]any{
		"auth": slog.GroupValue(slog.String("token", "tok-in-group"), slog.Int("n", 1)),
		"attr": slog.String("password", "pw-in-attr"),
	})
	lines := logLines(t, path)
	require.Len(t, lines, 3)
	all := strings.Join(lines, "\n")
	for _, secret := range []string{"grp-pass", "1234", "987654", "tok-in-group", "pw-in-attr"} {
		assert.NotContains(t, all, secret)
	}
	for _, kept := range []string{"db.host=db.local", "req.amount=12", `\"n\":1`} {
		assert.Contains(t, all, kept)
	}
}

// TestLogHandlerSourceAsSlogPassesIt: ReplaceAttr gets the source as a
// *slog.Source, as from slog's own handlers, and can rewrite it.
func TestLogHandlerSourceAsSlogPassesIt(t *testing.T) {
	a, path := openLogTest(t, Config{})
	opts := &slog.HandlerOptions{AddSource: true, ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		if at.Key == slog.SourceKey {
			src := at.Value.Any().(*slog.Source)
			at.Value = slog.StringValue(filepath.Base(src.File))
		}
		return at
	}}
	slog.New(a.LogHandler(opts)).Info("ok")
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	assert.Regexp(t, `^\[INFO\] \S+ ok source=loghandler_test.go$`, lines[0])
}

// TestLogHandlerCapsTheLine: many long keys and values, each growing four
// times when escaped, must not make a record too large for the rotation.
func TestLogHandlerCapsTheLine(t *testing.T) {
	a, path := openLogTest(t, Config{LogMaxSizeMB: 1})
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "big", 0)
	for i := range 40 {
		r.Add(strings.Repeat("k", 20<<10)+strconv.Itoa(i), strings.Repeat("\x01", maxLogValue))
	}
	require.NoError(t, a.LogHandler(nil).Handle(t.Context(), r))
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	assert.LessOrEqual(t, len(lines[0]), maxLogLine)
	assert.True(t, strings.HasSuffix(lines[0], " "+truncatedMark), "the cut is marked")
}

// lockedCounter's MarshalJSON takes the lock its callers log under, as
// such types do: a handler that called it would hang the host.
type lockedCounter struct {
	mu sync.Mutex
	N  int
}

func (c *lockedCounter) MarshalJSON() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []byte(strconv.Itoa(c.N)), nil
}

// TestLogHandlerValuesThatMustNotHangOrCrash: the handler walks maps,
// slices and structs itself: it calls no MarshalJSON, stops at cycles, and
// redacts struct fields by their Go name and their json name, whatever
// JSON could or could not encode.
func TestLogHandlerValuesThatMustNotHangOrCrash(t *testing.T) {
	type signup struct {
		Email    string
		Password string  `json:"pw"`
		Score    float64 `json:"score"`
		hidden   string
	}
	type hook struct {
		URL    string
		Token  string
		OnDone func()
	}
	self := map[string]any{"a": 1}
	self["self"] = self
	c := &lockedCounter{N: 3}
	c.mu.Lock() // held while logging, as by the caller
	var buf bytes.Buffer
	r := newRedactor(nil)
	logger := slog.New(&logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo, redact: &r})
	logger.Info("values",
		"counter", c,
		"form", signup{Email: "a@example.com", Password: "hunter2", Score: math.NaN(), hidden: "x"},
		"hook", &hook{URL: "https://x", Token: "tok-42", OnDone: func() {}},
		"self", self,
		"nil map", map[string]int(nil))
	c.mu.Unlock()
	line := buf.String()
	for _, secret := range []string{"hunter2", "tok-42"} {
		assert.NotContains(t, line, secret)
	}
	for _, want := range []string{
		`counter="{\"N\":3}"`,
		`form="{\"Email\":\"a@example.com\",\"pw\":\"[REDACTED]\",\"score\":\"NaN\"}"`,
		`\"Token\":\"[REDACTED]\"`,
		`self="{\"a\":1,\"self\":\"[cycle]\"}"`,
		`"nil map"=null`,
	} {
		assert.Contains(t, line, want)
	}
}

// panicsAsString and panicsAsError panic with themselves, a value that
// panics again as the panic is printed: fmt catches the first panic, not
// the second.
type (
	panicsAsString struct{}
	panicsAsError  struct{}
)

func (panicsAsString) String() string { panic(panicsAsString{}) }
func (panicsAsError) Error() string   { panic(panicsAsError{}) }

// TestLogHandlerSurvivesAValueThatPanicsTwice: a Stringer or error whose
// method panics with such a value, logged as an attribute of its own, is
// written as a panic marker; the logging call returns, where a panic
// would take the host down.
func TestLogHandlerSurvivesAValueThatPanicsTwice(t *testing.T) {
	for name, v := range map[string]any{"stringer": panicsAsString{}, "error": panicsAsError{}} {
		t.Run(name, func(t *testing.T) {
			a, path := openLogTest(t, Config{})
			require.NotPanics(t, func() { slog.New(a.LogHandler(nil)).Info("request", "v", v) })
			lines := logLines(t, path)
			require.Len(t, lines, 1)
			assert.Contains(t, lines[0], " v=!PANIC")
		})
	}
}

// nestsItself is a LogValuer whose value holds itself in a group, as a
// tree node that logs its parent would; calls counts its LogValue calls,
// and stops it past 4,000 so that a failing test ends.
type nestsItself struct{ calls *int }

func (d nestsItself) LogValue() slog.Value {
	if *d.calls++; *d.calls > 4000 {
		return slog.StringValue("end")
	}
	return slog.GroupValue(slog.Any("p", d))
}

// TestLogHandlerBoundsNestedGroups: groups nest at most maxDetailsDepth
// deep; past that the attribute is written as the truncation mark, so a
// value that nests itself costs neither endless calls nor memory that
// grows with the square of the depth (each level copies the path).
func TestLogHandlerBoundsNestedGroups(t *testing.T) {
	a, path := openLogTest(t, Config{})
	calls := 0
	slog.New(a.LogHandler(nil)).Info("tree", "node", nestsItself{&calls})
	assert.LessOrEqual(t, calls, maxDetailsDepth+1)
	lines := logLines(t, path)
	require.Len(t, lines, 1)
	assert.True(t, strings.HasSuffix(lines[0], " node"+strings.Repeat(".p", maxDetailsDepth)+"="+truncatedMark),
		"past maxDetailsDepth groups, the truncation mark (%d bytes of line)", len(lines[0]))
}

// TestLogHandlerCutsTheLineBetweenAttributes: every key and value left on
// a cut line reads back whole.
func TestLogHandlerCutsTheLineBetweenAttributes(t *testing.T) {
	for _, fill := range []string{"a b", `\\`, "\x01"} {
		var buf bytes.Buffer
		h := slog.New(&logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo}).With("with", strings.Repeat(fill, 2000/len(fill)))
		r := []any{}
		for i := range 12 {
			r = append(r, "k"+strconv.Itoa(i), strings.Repeat(fill, maxLogValue/len(fill)))
		}
		h.Info("big", r...)
		line := strings.TrimSuffix(buf.String(), "\n")
		require.LessOrEqual(t, len(line), maxLogLine)
		rest, ok := strings.CutSuffix(line, " "+truncatedMark)
		require.True(t, ok, "the cut is marked")
		toks := splitQuoted(t, strings.SplitN(rest, " ", 3)[2]) // after "[INFO] <time>"
		require.Greater(t, len(toks), 2)
		for _, tok := range toks[1:] { // after the message
			_, v, found := strings.Cut(tok, "=")
			require.True(t, found, "token %q", tok)
			got := unquoteMaybe(t, v)
			assert.True(t, got == strings.Repeat(fill, maxLogValue/len(fill)) || got == strings.Repeat(fill, 2000/len(fill)),
				"a value reads back whole")
		}
	}
}

type walkCreds struct{ User, Password string }

type walkOuter struct {
	In struct{ N int }
	P  *struct{ N int }
}

// TestLogHandlerWalkEdgeCases: values whose walk panicked, leaked a
// secret, saw a cycle where there was none, or ignored the limits.
func TestLogHandlerWalkEdgeCases(t *testing.T) {
	chain := make([]any, 100_001)
	for i := range len(chain) - 1 {
		chain[i] = &chain[i+1]
	}
	shared := make([]any, 2)
	shared[0], shared[1] = 1, shared[:1]
	outer := &walkOuter{}
	outer.In.N = 7
	outer.P = &outer.In
	cases := []struct {
		name  string
		value any
		want  string // in the line, as written there
		never string // a secret that must not be written
	}{
		{"a byte array", sha256.Sum256([]byte("x")), `v="\"-q\\u0016B`, ""},
		{"a chain of pointers", []any{&chain[0]}, truncatedMark, ""},
		{"a struct as a map key", map[walkCreds]int{{"alice", "hunter2"}: 3}, `[REDACTED]`, "hunter2"},
		{"a pointer as a map key", map[*walkCreds]int{{"bob", "s3cret"}: 3}, `[REDACTED]`, "s3cret"},
		{"JSON within a map", map[string]any{"body": json.RawMessage(`{"password":"hunter2"}`)},
			`v="{\"body\":{\"password\":\"[REDACTED]\"}}"`, "hunter2"},
		{"a slice holding a shorter one of its array", shared, `v=[1,[1]]`, ""},
		{"a pointer to a struct's first field", outer, `v="{\"In\":{\"N\":7},\"P\":{\"N\":7}}"`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := newRedactor(nil)
			slog.New(&logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo, redact: &r}).Info("m", "v", tc.value)
			line := buf.String()
			assert.True(t, strings.Contains(line, tc.want), "want %q in %.300q", tc.want, line)
			if tc.never != "" {
				assert.NotContains(t, line, tc.never)
			}
		})
	}
}

// TestLogHandlerWalkIsBoundedInMemory: a huge string or map costs what the
// 8 KiB written of it costs, not its size. Allocations are counted, not
// timed.
func TestLogHandlerWalkIsBoundedInMemory(t *testing.T) {
	huge := map[int]int{}
	for i := range 200_000 {
		huge[i] = i
	}
	for name, v := range map[string]any{
		"a 64 MiB string in a slice": []string{strings.Repeat("a", 64<<20)},
		"a map of 200,000 entries":   huge,
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			r := newRedactor(nil)
			logger := slog.New(&logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo, redact: &r})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			logger.Info("m", "v", v)
			runtime.ReadMemStats(&after)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated")
			assert.Less(t, buf.Len(), 2*maxLogValue)
		})
	}
}

type walkByte uint8

type walkEvent struct{ Kind string }

type walkKey struct {
	ID int
	P  *map[walkKey]bool
}

type walkSelf *walkSelf

// TestLogValueJSONIsWholeAndBounded: what the walk writes is whole JSON
// within maxLogValue and the depth limit, however the value is made; it
// names keys as they are, and redacts by a key only where the key is text.
func TestLogValueJSONIsWholeAndBounded(t *testing.T) {
	// Keys that all lead to the next level's map, four levels deep: a walk
	// that named every key of every level would take seconds.
	var level *map[walkKey]bool
	for range 4 {
		m := map[walkKey]bool{}
		for i := range 40 {
			m[walkKey{i, level}] = true
		}
		level = &m
	}
	deepJSON := any(json.RawMessage(nestedJSON(105, "x")))
	for range 30 {
		deepJSON = []any{deepJSON}
	}
	var self walkSelf
	self = &self
	longJSON := []byte(`{"password":"hunter2","pad":"` + strings.Repeat("x", maxLogLine) + `"}`)
	cases := []struct {
		name        string
		value       any
		want, never string
	}{
		{"a slice of a named byte type", map[string]any{"b": []walkByte("hi")}, `{"b":"hi"}`, ""},
		{"JSON too long to be read, with a secret", map[string]any{"body": longJSON}, `{"body":"` + truncatedMark + `"}`, "hunter2"},
		{"a long string", []string{strings.Repeat("a", 10_000)}, truncatedMark, ""},
		{"a long escaped string", []string{strings.Repeat("\x01", 3_000)}, truncatedMark, ""},
		{"many numbers", make([]int, 5_000), `[0,0,`, ""},
		{"a long key", map[string]int{strings.Repeat("k", 9_000): 1}, truncatedMark, ""},
		{"keys of any type", map[any]any{"name": "bob", 1: "x"}, `{"1":"x","name":"bob"}`, ""},
		{"a struct key names no secret", map[walkEvent]int{{"token_refresh"}: 42}, `{"{\"Kind\":\"token_refresh\"}":42}`, ""},
		{"keys leading to keys", level, "", ""},
		{"JSON deep within a value", deepJSON, truncatedMark, ""},
		{"a pointer type that points to itself", self, "", ""},
	}
	r := newRedactor(nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, composite(tc.value) || tc.name == "a pointer type that points to itself")
			out := logValueJSON(&r, tc.value)
			require.True(t, json.Valid([]byte(out)), "not JSON: %.200q", out)
			assert.LessOrEqual(t, len(out), maxLogValue)
			assert.LessOrEqual(t, jsonDepth(t, out), maxDetailsDepth)
			assert.True(t, strings.Contains(out, tc.want), "want %q in %.300q", tc.want, out)
			if tc.never != "" {
				assert.NotContains(t, out, tc.never)
			}
		})
	}
}

type walkBoom struct{}

func (walkBoom) String() string { panic(walkBoom{}) }

// TestLogValueJSONLastCases: a secret key longer than a key's name, JSON
// hidden behind white space, a panic that panics as it is printed, and
// bytes that cost far more to read than what is written of them.
func TestLogValueJSONLastCases(t *testing.T) {
	pad := []byte(strings.Repeat(" ", maxLogLine-1) + "1")
	many := make([]json.RawMessage, 5_000)
	for i := range many {
		many[i] = pad
	}
	cases := []struct {
		name        string
		value       any
		want, never string
	}{
		{"a long secret key", map[string]string{strings.Repeat("x", 300) + "_password": "hunter2"}, redactedValue, "hunter2"},
		{"a secret key as bytes", map[[8]byte]string{{'p', 'a', 's', 's', 'w', 'o', 'r', 'd'}: "hunter2"}, redactedValue, "hunter2"},
		{"JSON after much white space", map[string]any{"body": []byte(strings.Repeat(" ", 64) +
			`{"password":"hunter2","pad":"` + strings.Repeat("x", maxLogLine) + `"}`)}, truncatedMark, "hunter2"},
		{"a String that panics with itself", map[string]any{"k": walkBoom{}}, `"!PANIC`, ""},
		{"a key whose String panics with itself", map[walkBoom]int{{}: 1}, `"!PANIC`, ""},
		{"bytes that cost more than they write", many, truncatedMark, ""},
	}
	r := newRedactor(nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			out := logValueJSON(&r, tc.value)
			runtime.ReadMemStats(&after)
			require.True(t, json.Valid([]byte(out)), "not JSON: %.200q", out)
			assert.LessOrEqual(t, len(out), maxLogValue)
			assert.True(t, strings.Contains(out, tc.want), "want %q in %.300q", tc.want, out)
			if tc.never != "" {
				assert.NotContains(t, out, tc.never)
			}
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated")
		})
	}
}
