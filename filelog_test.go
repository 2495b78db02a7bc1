package audit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forgeries are texts a user could type into a username, an email, a trip
// title or a file name, meant to break a trek.log line or fake another.
var forgeries = []string{
	"line\nbreak",
	"carriage\rreturn",
	"crlf\r\n[INFO] x",
	"\x1b[31mred\x1b[0m",
	"line\u2028separator",
	"paragraph\u2029separator",
	"bidi\u202Eoverride",
	"isolate\u2066x\u2069",
	"invalid\xff\xfeutf8",
	"\n[INFO] 2026-01-01T00:00:00 admin@x logged in ip=1.2.3.4",
	"tab\there",
	"nul\x00byte",
	"del\x7f",
	"next\u0085line",
	"csi\u009b31mred",
	`quote" ip=6.6.6.6`,
	`back\slash`,
	"hangul\u3164filler deleted",
	"\u115falice",
	"braille\u2800blank",
	"joiner\u034fmark",
	"variation\ufe0fselector",
	"halfwidth\uffa0filler",
}

// badLogRune reports runes that must never stand raw in trek.log: controls
// (line breaks, escapes), the Unicode line and paragraph separators, the
// bidi controls that reorder how a line reads, and the letters and marks
// that show as nothing or a blank, which make one word read as two.
func badLogRune(r rune) bool {
	switch {
	case r == '\u3164' || r == '\u115f' || r == '\u1160' || r == '\uffa0' || r == '\u2800' || r == '\u034f' || (r >= '\ufe00' && r <= '\ufe0f'):
		return true
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	case r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
		return true
	}
	return false
}

// TestUserTextCannotBreakOrForgeLogLines records every forgery through the
// actor, the resource and the details, and reads trek.log back.
func TestUserTextCannotBreakOrForgeLogLines(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		t.Run("LOG_LEVEL="+level, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.LogLevel = level
			a := openAuditor(t, cfg)

			events := 0
			for _, s := range forgeries {
				for _, e := range []Event{
					{Action: UserLogin, Actor: Actor{UserID: 1, Email: s}},
					{Action: UserLoginFailed, Actor: Actor{UserID: 1, Username: s}},
					{Action: BackupDelete, Resource: s},
					{Action: MCPToolCall, Resource: s},
					{Action: TripCreate, Details: map[string]any{"title": s, s: s}},
					{Action: TripDelete, Details: map[string]any{"tripId": 1, "trip": s}},
					{Action: SettingsAppUpdate, Details: map[string]any{"nested": map[string]any{"list": []any{s}}}},
				} {
					require.NoError(t, a.Record(t.Context(), e), "%+v", e)
					events++
				}
			}
			require.NoError(t, a.Close())

			raw := readLog(t, cfg.LogPath)
			require.True(t, utf8.Valid(raw), "trek.log is valid UTF-8")
			lines := logLines(t, cfg.LogPath)
			for i, l := range lines {
				ok := strings.HasPrefix(l, "[INFO] ") || strings.HasPrefix(l, "[DEBUG] ")
				assert.True(t, ok, "line %d starts with neither [INFO] nor [DEBUG]: %q", i, l)
				for _, r := range l {
					if badLogRune(r) {
						assert.Failf(t, "raw control or separator in trek.log", "line %d has %U: %q", i, r, l)
						break
					}
				}
			}

			ev := eventLines(lines)
			perEvent := 1
			if level == "debug" {
				perEvent = 2
			}
			require.Len(t, ev, perEvent*events, "lines per event")
			for i := 0; i < len(ev); i += perEvent {
				info := ev[i]
				assert.True(t, strings.HasPrefix(info, "[INFO] "), "%q", info)
				assert.True(t, strings.HasSuffix(info, " ip=-"), "the real ip field ends the line: %q", info)
				if perEvent == 2 {
					assert.True(t, strings.HasPrefix(ev[i+1], "[DEBUG] "), "%q", ev[i+1])
					assert.Contains(t, ev[i+1], " AUDIT ")
				}
			}
		})
	}
}

// TestTrekLogRotatesAt10MBKeepingFourBackups writes well past 10 MB several
// times through the shared writer and Record, with the default rotation:
// trek.log and its four newest backups are each at most 10 MB of whole
// lines, and read in name order they hold the last events in the order
// they were recorded, none lost or repeated at a rotation.
//
// lumberjack deletes the backups beyond four in a goroutine of its own (its
// "mill") that each rotation only signals, and nothing waits for it, so the
// test does not count the backups left over: it reads only the newest four,
// which the mill never deletes.
func TestTrekLogRotatesAt10MBKeepingFourBackups(t *testing.T) {
	const maxFile = 10 * 1024 * 1024
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	w := a.LogWriter()

	line := "[INFO] 2026-04-20T10:11:53 host filler " + strings.Repeat("x", 984) + "\n" // 1 KiB
	require.Len(t, line, 1024)
	chunk := []byte(strings.Repeat(line, 1024)) // 1 MiB of whole lines
	written := 0
	// The events' resources, in the order recorded.
	var recorded []string
	for i := 0; written < 65*maxFile/10; i++ { // 65 MiB: six rotations at least
		n, err := w.Write(chunk)
		require.NoError(t, err)
		written += n
		res := fmt.Sprintf("backup-%02d", i)
		require.NoError(t, a.Record(t.Context(), Event{Action: BackupCreate, Resource: res}))
		recorded = append(recorded, res)
	}
	require.NoError(t, a.Record(t.Context(), Event{Action: BackupDelete, Resource: "last-one"}))
	recorded = append(recorded, "last-one")
	require.NoError(t, a.Close())

	dir := filepath.Dir(cfg.LogPath)
	backupName := regexp.MustCompile(`^trek-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$`)
	entries, err := os.ReadDir(dir) // sorted by name: the backups oldest first
	require.NoError(t, err)
	var backups []string
	for _, e := range entries {
		if e.Name() == "trek.log" {
			continue
		}
		if assert.Regexp(t, backupName, e.Name(), "only trek.log and its backups") {
			backups = append(backups, e.Name())
		}
	}
	require.GreaterOrEqual(t, len(backups), 4, "backups: %v", backups)
	files := append(append([]string(nil), backups[len(backups)-4:]...), "trek.log")

	eventLine := regexp.MustCompile(`^\[INFO\] \S+ anonymous (?:created|deleted) backup "([^"]+)" ip=-$`)
	var logged []string // the events' resources, in file and line order
	for _, name := range files {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.LessOrEqual(t, len(raw), maxFile, "%s is over 10 MB", name)
		if name != "trek.log" {
			assert.Greater(t, len(raw), maxFile/2, "%s holds a real share of the writes", name)
		}
		require.True(t, bytes.HasSuffix(raw, []byte("\n")), "%s ends mid-line", name)
		for i, l := range strings.Split(string(raw[:len(raw)-1]), "\n") {
			if !strings.HasPrefix(l, "[INFO] ") {
				require.Failf(t, "torn line", "%s line %d: %.60q", name, i, l)
			}
			if m := eventLine.FindStringSubmatch(l); m != nil {
				logged = append(logged, m[1])
			}
		}
	}
	// Over 20 MB of the 65 written are in the four backups, and an event
	// follows every MB.
	require.Greater(t, len(logged), 20, "events in the newest backups and trek.log")
	assert.Equal(t, recorded[len(recorded)-len(logged):], logged,
		"the newest backups, in name order, and trek.log hold the last events in the order recorded")
}

// TestTrekLogMovedAwayIsReopened moves trek.log the ways an operator or
// logrotate does while the Auditor runs, and checks that the next event
// lands in a trek.log at the configured path, not in the file that moved
// away (or, once deleted, nowhere). The writer looks at trek.log itself
// only when its folder has changed, so each move is made both right after
// the folder changed (trek.log was just created) and when the folder's
// time is long past, as it is on a server that has run for a while.
func TestTrekLogMovedAwayIsReopened(t *testing.T) {
	moves := []struct {
		name  string
		move  func(t *testing.T, path string)
		moved string // where the earlier lines went, if anywhere
		extra string // a line already in the new trek.log
	}{
		{name: "renamed away", moved: ".1",
			move: func(t *testing.T, path string) { require.NoError(t, os.Rename(path, path+".1")) }},
		{name: "deleted",
			move: func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) }},
		{name: "replaced by a new file", moved: ".old", extra: "[INFO] 2026-04-20T10:11:53 host started",
			move: func(t *testing.T, path string) {
				require.NoError(t, os.Rename(path, path+".old"))
				require.NoError(t, os.WriteFile(path, []byte("[INFO] 2026-04-20T10:11:53 host started\n"), 0o640))
			}},
	}
	for _, m := range moves {
		for _, settled := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/folder settled=%v", m.name, settled), func(t *testing.T) {
				cfg := testConfig(t)
				a := openAuditor(t, cfg)
				ctx := t.Context()
				record := func(res string) {
					require.NoError(t, a.Record(ctx, Event{Action: BackupCreate, Resource: res}))
				}
				record("before-1")
				if settled {
					long := time.Now().Add(-time.Hour)
					require.NoError(t, os.Chtimes(filepath.Dir(cfg.LogPath), long, long))
				}
				record("before-2")
				record("before-3")
				m.move(t, cfg.LogPath)
				record("after")
				require.NoError(t, a.Close())

				backupLines := func(path string) []string {
					var out []string
					for _, l := range logLines(t, path) {
						if strings.Contains(l, " created backup ") {
							out = append(out, l)
						}
					}
					return out
				}
				got := backupLines(cfg.LogPath)
				require.Len(t, got, 1, "trek.log holds the event after the move only: %q", got)
				assert.Contains(t, got[0], `anonymous created backup "after" ip=-`)
				if m.extra != "" {
					assert.Equal(t, m.extra, logLines(t, cfg.LogPath)[0], "the new file's own line is kept")
				}
				if m.moved != "" {
					old := backupLines(cfg.LogPath + m.moved)
					require.Len(t, old, 3, "the moved file keeps the events before the move")
					for i, l := range old {
						assert.Contains(t, l, fmt.Sprintf(`created backup "before-%d"`, i+1))
					}
				}
			})
		}
	}
}

// A host's write through LogWriter that ends within a line must not
// swallow the library's next line: the event's line would read as the end
// of the host's, and whatever looks for lines that begin with "[INFO]"
// (a log shipper, an operator's grep) would miss it.
func TestHostsUnfinishedLineDoesNotSwallowTheNext(t *testing.T) {
	a := openAuditor(t, testConfig(t))
	_, err := a.LogWriter().Write([]byte("[INFO] 2026-04-20T10:11:53 host: upload of "))
	require.NoError(t, err)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin, Actor: Actor{UserID: 1, Email: "u1@example.com"}}))
	_, err = a.LogWriter().Write([]byte("[INFO] 2026-04-20T10:11:54 host: done\n"))
	require.NoError(t, err)

	lines := logLines(t, a.log.path)
	require.Len(t, lines, 4)
	assert.Equal(t, "[INFO] 2026-04-20T10:11:53 host: upload of ", lines[0], "the host's line, ended")
	assert.Regexp(t, `^\[INFO\] \S+ u1@example\.com logged in ip=-$`, lines[1])
	assert.Regexp(t, chainAnchorLine, lines[2])
	assert.Equal(t, "[INFO] 2026-04-20T10:11:54 host: done", lines[3], "a whole line after the library's needs nothing")
}

// lumberjackMills counts the goroutines lumberjack has started to tidy
// rotated files; it never ends them.
func lumberjackMills(t *testing.T) int {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&b, 2))
	return strings.Count(b.String(), ".(*Logger).millRun(")
}

// A host that opens and closes the library again and again (a reload, a
// command run in a loop) must not leave a goroutine behind each time: the
// process keeps one lumberjack.Logger per trek.log path.
func TestOpenAndCloseLeaveNoGoroutineBehind(t *testing.T) {
	cfg := testConfig(t)
	before := lumberjackMills(t)
	for range 10 {
		a, err := Open(cfg)
		require.NoError(t, err)
		require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
		require.NoError(t, a.Close())
	}
	assert.LessOrEqual(t, lumberjackMills(t), before+1, "one for the path, however many Opens")
	assert.Len(t, eventLines(logLines(t, cfg.LogPath)), 10)
}

// Two Auditors of one process on the same trek.log share its one owner:
// their lines all land, whole, in the same file.
func TestTwoAuditorsShareOneTrekLog(t *testing.T) {
	cfg := testConfig(t)
	other := cfg
	other.DBPath = filepath.Join(filepath.Dir(cfg.DBPath), "other.db")
	a, b := openAuditor(t, cfg), openAuditor(t, other)
	require.Same(t, a.log.sharedLog, b.log.sharedLog)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	require.NoError(t, b.Record(context.Background(), Event{Action: UserLoginFailed}))
	require.NoError(t, a.Close())
	require.NoError(t, b.Record(context.Background(), Event{Action: UserLogin}), "the file stays open for b")
	assert.Len(t, eventLines(logLines(t, cfg.LogPath)), 3)
}

// A host that reloads its settings opens the new Auditor before closing
// the old, so that no event is refused in between. New rotation limits
// apply from when the old Auditor closes: until then trek.log keeps one
// owner, with the limits it runs with.
func TestReloadedRotationLimitsApplyOnceTheOldAuditorCloses(t *testing.T) {
	cfg := testConfig(t)
	old := openAuditor(t, cfg)
	reloaded := cfg
	reloaded.LogMaxSizeMB, reloaded.LogMaxBackups = 1, 2
	a := openAuditor(t, reloaded)
	require.Same(t, old.log.sharedLog, a.log.sharedLog)
	assert.Equal(t, logLimits{10, 4}, a.log.running(), "the running Auditor's limits, while it is open")
	require.NoError(t, old.Close())
	assert.Equal(t, logLimits{1, 2}, a.log.running())

	line := "[INFO] 2026-04-20T10:11:53 host filler " + strings.Repeat("x", 984) + "\n"
	chunk := []byte(strings.Repeat(line, 512)) // 512 KiB
	for range 6 {
		_, err := a.LogWriter().Write(chunk)
		require.NoError(t, err)
	}
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	st, err := os.Stat(cfg.LogPath)
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Size(), int64(1<<20), "rotated at the reloaded 1 MB")
	assert.True(t, strings.Contains(string(readLog(t, cfg.LogPath)), " anonymous logged in ip=-\n"), "the event is logged after the rotations")
}

// After Close, the host's writes through LogWriter fail rather than reopen
// trek.log behind the library's back.
func TestLogWriterAfterClose(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))
	w := a.LogWriter()
	require.NoError(t, a.Close())
	before := readLog(t, cfg.LogPath)
	_, err := w.Write([]byte("[INFO] 2026-04-20T10:11:53 server stopped\n"))
	require.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, before, readLog(t, cfg.LogPath))
}

// earlierEnds are ways an earlier process left trek.log: before, and the
// first line then, as it reads.
var earlierEnds = []struct{ name, before, first string }{
	{"torn", "[INFO] 2026-01-01T00:00:00 old@example.com created tr", "[INFO] 2026-01-01T00:00:00 old@example.com created tr"},
	{"whole", "[INFO] 2026-01-01T00:00:00 old@example.com logged in ip=-\n", "[INFO] 2026-01-01T00:00:00 old@example.com logged in ip=-"},
	{"empty", "", ""},
}

// openAfter opens an Auditor on a trek.log that holds before.
func openAfter(t *testing.T, before string) (Config, *Auditor) {
	t.Helper()
	cfg := testConfig(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(cfg.LogPath), 0o750))
	require.NoError(t, os.WriteFile(cfg.LogPath, []byte(before), 0o600))
	return cfg, openAuditor(t, cfg)
}

// TestTornLineFromAnEarlierProcessIsEnded: trek.log can be left ending
// within a line by a process that stopped mid-write (a full disk and a
// restart, a crash, a host's unfinished line at exit). The next process's
// first line must still begin a line of its own.
func TestTornLineFromAnEarlierProcessIsEnded(t *testing.T) {
	for _, tc := range earlierEnds[:2] {
		t.Run(tc.name, func(t *testing.T) {
			cfg, a := openAfter(t, tc.before)
			require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1, Email: "u1@example.com"}}))
			require.NoError(t, a.Close())

			lines := logLines(t, cfg.LogPath)
			require.Len(t, lines, 3, "no empty line after a whole one: %q", lines)
			assert.Equal(t, tc.first, lines[0], "the earlier line, as it was")
			assert.Regexp(t, `^\[INFO\] \S+ u1@example\.com logged in ip=-$`, lines[1])
			assert.Regexp(t, chainAnchorLine, lines[2])
		})
	}
}

// TestHostsFirstWriteAfterATornLineStartsItsOwn: the host's text through
// LogWriter must not continue a line an earlier process left unfinished
// either: the torn audit line would read as one with the host's words at
// its end. A line the host writes in parts stays one line.
func TestHostsFirstWriteAfterATornLineStartsItsOwn(t *testing.T) {
	for _, tc := range earlierEnds {
		t.Run(tc.name, func(t *testing.T) {
			cfg, a := openAfter(t, tc.before)
			for _, part := range []string{"", "host: listening ", "on :3000\n", "host: ready\n"} {
				n, err := a.LogWriter().Write([]byte(part))
				require.NoError(t, err)
				require.Equal(t, len(part), n)
			}
			require.NoError(t, a.Close())

			want := []string{"host: listening on :3000", "host: ready"}
			if tc.first != "" {
				want = append([]string{tc.first}, want...)
			}
			assert.Equal(t, want, logLines(t, cfg.LogPath))
		})
	}
}

// TestAnotherLogBesideTrekLogIsNotRead: only trek.log and the files
// lumberjack rotates it into are its files. A second instance's log in
// the same folder (trek-staging.log) under the same key file holds heads
// of another chain, which read as trek.log's would call an untouched
// chain rewritten.
func TestAnotherLogBesideTrekLogIsNotRead(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
	staging := Config{DBPath: filepath.Join(dir, "staging.db"), LogPath: filepath.Join(dir, "logs", "trek-staging.log")}
	a, b := openAuditor(t, cfg), openAuditor(t, staging)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
	require.NoError(t, b.Record(t.Context(), Event{Action: UserLoginFailed, Actor: Actor{UserID: 2}}))

	rep, err := a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.Equal(t, 1, rep.Anchors, "trek.log's own head only")
	assert.Zero(t, rep.RejectedAnchors)

	files, err := logFiles(cfg.LogPath)
	require.NoError(t, err)
	assert.Equal(t, []string{cfg.LogPath}, files)
}

// TestRotatedNames: what lumberjack names a rotated trek.log, and what
// only looks like it.
func TestRotatedNames(t *testing.T) {
	for name, want := range map[string]bool{
		"trek-2026-04-20T08-11-53.123.log":    true,
		"trek-1999-12-31T23-59-59.000.log":    true,
		"trek-staging.log":                    false,
		"trek-2026-04-20T08-11-53.log":        false, // no milliseconds
		"trek-2026-13-20T08-11-53.123.log":    false, // no such month
		"trek-2026-04-20T08-11-53.123.txt":    false,
		"trek-2026-04-20T08-11-53.123.log.gz": false,
		"trek.log":                            false,
		"xtrek-2026-04-20T08-11-53.123.log":   false,
	} {
		assert.Equal(t, want, isRotatedName(name, "trek-", ".log"), name)
	}
}

// TestABatchJustUnderTheWriteLimitKeepsItsLines: a batch's lines are split
// between writes that lumberjack takes (none larger than its rotation
// size, here the smallest, 1 MB), the chain head's line included: a batch
// whose event lines come within a head's length of the limit once made one
// write too large, and lost every line of it.
func TestABatchJustUnderTheWriteLimitKeepsItsLines(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	cfg.LogLevel = "debug"
	a := openAuditor(t, cfg)
	const n = 6
	prepare := func(pad int) *pending {
		// U+E0001: 4 bytes stored, 12 on the debug line (\udb40\udc01).
		e := Event{Action: TripCreate, Details: map[string]any{"title": "x",
			"blob": strings.Repeat("\U000E0001", 14000) + strings.Repeat("a", pad)}}
		p, err := a.prepare(t.Context(), &e)
		require.NoError(t, err)
		return p
	}
	lineLen := func(p *pending) int { return len(appendDebugLine(appendInfoLine(nil, p, time.UTC), p, time.UTC)) }
	pad := (maxLogWrite-20)/n - lineLen(prepare(0))
	require.Equal(t, (maxLogWrite-20)/n, lineLen(prepare(pad)), "a line of the size wanted")
	batch := make([]*pending, n)
	total := 0
	for i := range batch {
		batch[i] = prepare(pad)
		batch[i].id, batch[i].seq, batch[i].mac = int64(i+1), int64(i+1), strings.Repeat("ab", 32)
		total += lineLen(batch[i])
	}
	require.LessOrEqual(t, total, maxLogWrite, "the events' lines fit one write")
	require.Greater(t, total+len(appendAnchorLine(nil, batch[n-1], time.UTC, a.log.anchors)), maxLogWrite,
		"with the head's line they would not")

	require.NoError(t, a.log.writeEvents(batch, time.UTC, true))
	require.NoError(t, a.Close())
	// The head's line no longer fits the file after the events' lines:
	// lumberjack rotates before it. Read the files oldest first.
	files, err := logFiles(cfg.LogPath)
	require.NoError(t, err)
	require.Len(t, files, 2)
	lines := append(logLines(t, files[1]), logLines(t, files[0])...)
	require.Len(t, lines, 2*n+1)
	assert.Equal(t, n, len(linesWithPrefix(lines, "[INFO] "))-1, "each event's line, and the head's")
	assert.Regexp(t, chainAnchorLine, lines[2*n])
}

// A host's line trek.log refuses comes back as ErrLogWrite, from
// LogWriter and from LogHandler alike, so a host tells it apart as it does
// the library's other errors: one larger than the rotation size, which
// lumberjack never writes, and any line once trek.log's folder is a file.
func TestHostWritesTrekLogRefusesAreErrLogWrite(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	a := openAuditor(t, cfg)
	_, err := a.LogWriter().Write([]byte(strings.Repeat("x", 2<<20) + "\n"))
	assert.ErrorIs(t, err, ErrLogWrite)

	h := a.LogHandler(nil)
	require.NoError(t, h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "host line", 0)))
	dir := filepath.Dir(cfg.LogPath)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o600))
	err = h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "host line", 0))
	assert.ErrorIs(t, err, ErrLogWrite)
	_, err = a.LogWriter().Write([]byte("host line\n"))
	assert.ErrorIs(t, err, ErrLogWrite)

	require.NoError(t, a.Close())
	_, err = a.LogWriter().Write([]byte("after close\n"))
	assert.ErrorIs(t, err, ErrClosed, "as it is")
	assert.NotErrorIs(t, err, ErrLogWrite)
}

// trek.log emptied in place (logrotate's copytruncate, "> trek.log" to
// free the disk) goes on from its start: the next line is not written at
// the old offset, behind a run of NUL bytes that would make grep take the
// file for binary. So whether lumberjack made the file at the first write
// or at a rotation.
func TestTrekLogEmptiedInPlaceGoesOnFromItsStart(t *testing.T) {
	for _, rotated := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotated=%v", rotated), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.LogMaxSizeMB = 1
			a := openAuditor(t, cfg)
			ctx := t.Context()
			if rotated {
				filler := []byte(strings.Repeat("[INFO] 2026-04-20T10:11:53 host filler "+strings.Repeat("x", 984)+"\n", 700))
				for range 2 { // 1.4 MB: one rotation
					_, err := a.LogWriter().Write(filler)
					require.NoError(t, err)
				}
				require.Len(t, rotatedLogs(t, cfg.LogPath), 1)
			}
			for i := range 50 {
				require.NoError(t, a.Record(ctx, Event{Action: BackupCreate, Resource: fmt.Sprintf("before-%d", i)}))
			}
			require.NoError(t, os.Truncate(cfg.LogPath, 0))
			require.NoError(t, a.Record(ctx, Event{Action: BackupCreate, Resource: "after"}))

			raw := readLog(t, cfg.LogPath)
			assert.Zero(t, bytes.Count(raw, []byte{0}), "NUL bytes in trek.log (%d bytes in all)", len(raw))
			assert.True(t, bytes.HasPrefix(raw, []byte("[INFO] ")), "trek.log begins %.40q", raw)
			assert.Contains(t, string(raw), `created backup "after"`)
		})
	}
}

// rotatedLogs lists the names of trek.log's rotated files beside it.
func rotatedLogs(t *testing.T, logPath string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(logPath))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if isRotatedName(e.Name(), "trek-", ".log") {
			names = append(names, e.Name())
		}
	}
	return names
}

// After a clock that ran ahead is set back (NTP correcting it, a VM
// restored from a snapshot), the rotated files made before carry later
// times, in their names and as their modification times, than the one a
// rotation makes now. The file rotated last holds the newest lines and
// chain heads: it is kept, and the oldest of the others removed, now and
// at the next rotation.
func TestRotationAfterTheClockIsSetBackKeepsTheNewest(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	dir := filepath.Dir(cfg.LogPath)
	require.NoError(t, os.MkdirAll(dir, 0o750))
	ahead := time.Now().UTC().Add(24 * time.Hour)
	var old []string
	for i := range 4 {
		at := ahead.Add(time.Duration(i) * time.Minute)
		name := "trek-" + at.Format(rotatedTimeLayout) + ".log"
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte("[INFO] written while the clock ran ahead\n"), 0o600))
		require.NoError(t, os.Chtimes(path, at, at))
		old = append(old, name)
	}
	a := openAuditor(t, cfg)
	// 1,024,000 bytes: with what trek.log holds, one rotation each.
	filler := []byte(strings.Repeat("[INFO] 2026-04-20T10:11:53 host filler "+strings.Repeat("x", 984)+"\n", 1000))
	rotate := func(mark string) {
		t.Helper()
		require.NoError(t, a.Record(t.Context(), Event{Action: BackupCreate, Resource: mark}))
		_, err := a.LogWriter().Write(filler)
		require.NoError(t, err)
		// A line in the new trek.log.
		require.NoError(t, a.Record(t.Context(), Event{Action: BackupCreate, Resource: "after-" + mark}))
	}
	holding := func(mark string) []string {
		var in []string
		for _, name := range rotatedLogs(t, cfg.LogPath) {
			if bytes.Contains(readLog(t, filepath.Join(dir, name)), []byte(`"`+mark+`"`)) {
				in = append(in, name)
			}
		}
		return in
	}

	_, err := a.LogWriter().Write(filler) // trek.log almost full: the next filler rotates it
	require.NoError(t, err)
	require.Len(t, rotatedLogs(t, cfg.LogPath), 4)
	rotate("first-since-set-back")
	backups := rotatedLogs(t, cfg.LogPath)
	assert.Len(t, backups, 4)
	assert.Len(t, holding("first-since-set-back"), 1, "the file rotated last is kept: %v", backups)
	assert.NotContains(t, backups, old[0], "the oldest is removed")

	rotate("second-since-set-back")
	backups = rotatedLogs(t, cfg.LogPath)
	assert.Len(t, backups, 4)
	assert.Len(t, holding("first-since-set-back"), 1, "both files rotated since are kept: %v", backups)
	assert.Len(t, holding("second-since-set-back"), 1, "both files rotated since are kept: %v", backups)
	assert.Equal(t, old[2:], backups[2:], "the two newest from before, by their names, which sort after: %v", backups)
}

// A host restarted with trek.log at its size limit: the first write after
// Open rotates it, and lumberjack makes the new trek.log itself, for plain
// writes. It is reopened to append all the same: emptied in place
// afterwards, trek.log goes on from its start.
func TestTrekLogEmptiedInPlaceAfterARotationAtTheFirstWrite(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	require.NoError(t, os.MkdirAll(filepath.Dir(cfg.LogPath), 0o750))
	line := "[INFO] 2026-04-20T10:11:53 host filler " + strings.Repeat("x", 984) + "\n" // 1 KiB
	require.NoError(t, os.WriteFile(cfg.LogPath, []byte(strings.Repeat(line, 1024)), 0o600))

	a := openAuditor(t, cfg)
	ctx := t.Context()
	for i := range 20 {
		require.NoError(t, a.Record(ctx, Event{Action: BackupCreate, Resource: "before"}), i)
	}
	require.Len(t, rotatedLogs(t, cfg.LogPath), 1, "the first write rotated trek.log")
	require.NoError(t, os.Truncate(cfg.LogPath, 0))
	require.NoError(t, a.Record(ctx, Event{Action: BackupCreate, Resource: "after"}))

	raw := readLog(t, cfg.LogPath)
	assert.Zero(t, bytes.Count(raw, []byte{0}), "NUL bytes in trek.log (%d bytes in all)", len(raw))
	assert.True(t, bytes.HasPrefix(raw, []byte("[INFO] ")), "trek.log begins %.40q", raw)
}

// The clock ran ahead and was set back: the rotated files from before carry
// later times than a rotation makes now. The file rotated since is kept
// also when the Auditor closes right after the write that rotated it (a
// restart) and another opens.
func TestTheNewestBackupIsKeptAcrossARestartAfterTheClockIsSetBack(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	cfg.LogMaxBackups = 2
	dir := filepath.Dir(cfg.LogPath)
	require.NoError(t, os.MkdirAll(dir, 0o750))
	ahead := time.Now().UTC().Add(24 * time.Hour)
	for i := range 2 {
		at := ahead.Add(time.Duration(i) * time.Minute)
		path := filepath.Join(dir, "trek-"+at.Format(rotatedTimeLayout)+".log")
		require.NoError(t, os.WriteFile(path, []byte("[INFO] written while the clock ran ahead\n"), 0o600))
		require.NoError(t, os.Chtimes(path, at, at))
	}
	filler := []byte(strings.Repeat("[INFO] 2026-04-20T10:11:53 host filler "+strings.Repeat("x", 984)+"\n", 1000))

	a, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, a.Record(t.Context(), Event{Action: BackupCreate, Resource: "newest-lines"}))
	_, err = a.LogWriter().Write(filler)
	require.NoError(t, err)
	_, err = a.LogWriter().Write(filler) // rotates: the file holding "newest-lines"
	require.NoError(t, err)
	require.Len(t, rotatedLogs(t, cfg.LogPath), 2, "pruned by the write that rotated")
	require.NoError(t, a.Close())

	b := openAuditor(t, cfg)
	require.NoError(t, b.Record(t.Context(), Event{Action: BackupCreate, Resource: "after-restart"}))
	var holding []string
	for _, name := range rotatedLogs(t, cfg.LogPath) {
		if bytes.Contains(readLog(t, filepath.Join(dir, name)), []byte(`"newest-lines"`)) {
			holding = append(holding, name)
		}
	}
	assert.Len(t, holding, 1, "the file rotated last is kept; left: %v", rotatedLogs(t, cfg.LogPath))
}

// Reloads that change the rotation limits keep trek.log's one
// lumberjack.Logger, whose goroutine never ends, rather than make another.
func TestReloadedLimitsLeaveNoGoroutineBehind(t *testing.T) {
	cfg := testConfig(t)
	cur, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, cur.Record(context.Background(), Event{Action: UserLogin}))
	before := lumberjackMills(t)
	for i := range 10 {
		next := cfg
		next.LogMaxBackups = 2 + i%2
		n, err := Open(next)
		require.NoError(t, err)
		require.NoError(t, cur.Close())
		require.NoError(t, n.Record(context.Background(), Event{Action: UserLogin}))
		cur = n
	}
	require.NoError(t, cur.Close())
	assert.LessOrEqual(t, lumberjackMills(t), before+1, "reloads leave lumberjack goroutines behind")
}

// A read-only Auditor writes nothing to trek.log: opened first, with the
// default limits (4 backups), it does not set those the writing Auditor
// opened after it runs with.
func TestAReadOnlyAuditorSetsNoRotationLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	w0 := openAuditor(t, cfg) // make travel.db
	require.NoError(t, w0.Close())

	ro := cfg
	ro.ReadOnly = true // LogMaxBackups: the default, 4
	openAuditor(t, ro)

	wcfg := cfg
	wcfg.LogMaxBackups = 6
	w := openAuditor(t, wcfg)
	filler := []byte(strings.Repeat("[INFO] 2026-04-20T10:11:53 host filler "+strings.Repeat("x", 984)+"\n", 1000))
	for range 6 {
		_, err := w.LogWriter().Write(filler)
		require.NoError(t, err)
		require.NoError(t, w.Record(t.Context(), Event{Action: UserLogin})) // prunes after each rotation
	}
	assert.Equal(t, logLimits{1, 6}, w.log.running())
	assert.Len(t, rotatedLogs(t, cfg.LogPath), 5, "LogMaxBackups 6, five rotations: none is deleted")
}

// Rotations within one millisecond (a small LogMaxSizeMB and a burst of
// lines) lose no line: lumberjack names a rotated file by the millisecond
// and would rename over the one rotated just before.
func TestRotationsWithinAMillisecondLoseNoLine(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogMaxSizeMB = 1
	cfg.LogMaxBackups = 100
	a := openAuditor(t, cfg)
	chunk := []byte(strings.Repeat("[INFO] 2026-04-20T10:11:53 host filler "+strings.Repeat("x", 984)+"\n", 1024)) // 1 MiB: a rotation each
	const writes = 30
	for i := range writes {
		_, err := a.LogWriter().Write(chunk)
		require.NoError(t, err, i)
	}
	require.NoError(t, a.Close())

	files, err := logFiles(cfg.LogPath)
	require.NoError(t, err)
	var total int64
	for _, f := range files {
		info, err := os.Stat(f)
		require.NoError(t, err)
		total += info.Size()
	}
	assert.Equal(t, int64(writes*len(chunk)), total, "bytes in trek.log and its %d rotated files", len(files)-1)
}

// An operator who lowers LogMaxBackups (LOG_MAX_BACKUPS) to free the disk
// sees the rotated files past the new limit removed at the first write
// after the Auditor opens with it, as lumberjack does when it opens a file,
// not at the next rotation, months away on a quiet instance. The newest are
// told by modification time, the order rotations leave whatever the clock
// did, not by the time in their names. An Auditor that writes no line
// removes nothing (trek-audit acknowledge, with the default limit beside a
// server that keeps more), nor does a read-only one, nor limits that wait
// for the running Auditor to close, until it does.
func TestLoweredLogMaxBackupsApplyAtTheFirstWrite(t *testing.T) {
	// Four rotated files whose names sort the other way from their
	// modification times (a clock set back): newest is the newest by
	// the latter.
	const newest = "trek-2026-01-01T00-00-00.000.log"
	names := []string{newest, "trek-2026-01-02T00-00-00.000.log", "trek-2026-01-03T00-00-00.000.log", "trek-2026-01-04T00-00-00.000.log"}
	others := []string{"trek.log.1", "trek-staging.log", "travel.log"} // not trek.log's rotated files
	event := Event{Action: UserLogin, Resource: "after the restart"}
	cases := []struct {
		name string
		// run opens what the case does with cfg (LogMaxBackups 4) and
		// lowered (LogMaxBackups 1), and writes what it does.
		run  func(t *testing.T, cfg, lowered Config)
		kept []string
	}{
		{"lowered to 1, an event", func(t *testing.T, _, lowered Config) {
			require.NoError(t, openAuditor(t, lowered).Record(t.Context(), event))
		}, []string{newest}},
		{"lowered to 2, a host's line", func(t *testing.T, _, lowered Config) {
			lowered.LogMaxBackups = 2
			_, err := openAuditor(t, lowered).LogWriter().Write([]byte("[INFO] host started\n"))
			require.NoError(t, err)
		}, []string{newest, names[3]}},
		{"lowered to 1, nothing written", func(t *testing.T, _, lowered Config) {
			openAuditor(t, lowered)
		}, names},
		{"raised to 6, an event", func(t *testing.T, _, lowered Config) {
			lowered.LogMaxBackups = 6
			require.NoError(t, openAuditor(t, lowered).Record(t.Context(), event))
		}, names},
		{"read-only, lowered to 1", func(t *testing.T, _, lowered Config) {
			lowered.ReadOnly = true
			openAuditor(t, lowered)
		}, names},
		{"reloaded while the Auditor with 4 runs, an event", func(t *testing.T, cfg, lowered Config) {
			openAuditor(t, cfg)
			require.NoError(t, openAuditor(t, lowered).Record(t.Context(), event))
		}, names},
		{"reloaded, the Auditor with 4 closes, an event", func(t *testing.T, cfg, lowered Config) {
			old := openAuditor(t, cfg)
			a := openAuditor(t, lowered)
			require.NoError(t, old.Close())
			require.NoError(t, a.Record(t.Context(), event))
		}, []string{newest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			w := openAuditor(t, cfg) // makes travel.db, for the read-only case
			require.NoError(t, w.Record(t.Context(), Event{Action: UserLogin}))
			require.NoError(t, w.Close())
			dir := filepath.Dir(cfg.LogPath)
			base := time.Now().Add(-time.Hour)
			for i, name := range names {
				path := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(path, []byte("[INFO] rotated\n"), 0o600))
				at := base.Add(-time.Duration(i) * time.Minute)
				if name != newest {
					at = base.Add(-time.Duration(10-i) * time.Minute)
				}
				require.NoError(t, os.Chtimes(path, at, at))
			}
			for _, name := range others {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("kept\n"), 0o600))
			}
			trekLog := readLog(t, cfg.LogPath)

			lowered := cfg
			lowered.LogMaxBackups = 1
			tc.run(t, cfg, lowered)

			assert.ElementsMatch(t, tc.kept, rotatedLogs(t, cfg.LogPath))
			for _, name := range others {
				assert.FileExists(t, filepath.Join(dir, name), "not a rotated file of trek.log")
			}
			assert.True(t, bytes.HasPrefix(readLog(t, cfg.LogPath), trekLog), "trek.log itself is only appended to")
		})
	}
}

// While a host's text is unfinished, the library asks the file at
// trek.log's path whether it still ends within a line (it may have been
// emptied in place since, and then needs no newline at its start), but
// only while that file is the one it writes to: where a move went
// unnoticed (the folder's times are not trusted everywhere), the file at
// the path says nothing of the one written to, and the newline is kept, so
// that the library's line never continues the host's text.
func TestMidLineIsLearnedOnlyFromTheFileWrittenTo(t *testing.T) {
	cases := []struct {
		name  string
		after func(t *testing.T, path string)
		mid   bool
	}{
		{"left as it is", func(*testing.T, string) {}, true},
		{"emptied in place", func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 0)) }, false},
		{"moved away, another file put in its place", func(t *testing.T, path string) {
			require.NoError(t, os.Rename(path, path+".moved"))
			require.NoError(t, os.WriteFile(path, []byte("[INFO] another file\n"), 0o600))
		}, true},
		{"moved away, nothing in its place", func(t *testing.T, path string) {
			require.NoError(t, os.Rename(path, path+".moved"))
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			a := openAuditor(t, cfg)
			require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin}))
			_, err := a.LogWriter().Write([]byte("[INFO] 2026-04-20T10:11:53 host: unfinished"))
			require.NoError(t, err)
			tc.after(t, cfg.LogPath)

			// What the next line's write asks, without the look at the
			// folder before it that notices a move.
			l := a.log.sharedLog
			l.mu.Lock()
			l.learnMidLine()
			mid := l.midLine
			l.mu.Unlock()
			assert.Equal(t, tc.mid, mid)
		})
	}
}
