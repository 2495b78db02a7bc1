package audit

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	h := &logHandler{w: &buf, loc: time.UTC, level: slog.LevelInfo}
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
