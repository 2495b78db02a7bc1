package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

func TestTailPrintsTheNewest(t *testing.T) {
	f := newFixture(t, 8, trekRows...) // ids 1..8, then TREK's 9 and 10
	cases := []struct {
		name string
		args []string
		want []int64 // oldest first
	}{
		{"the default ten", nil, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"-n 3", []string{"-n", "3"}, []int64{8, 9, 10}},
		{"-n 0 prints nothing", []string{"-n", "0"}, nil},
		{"more than there are", []string{"-n", "1000"}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"with a filter", []string{"-n", "2", "--action", "user.login"}, []int64{6, 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, append([]string{"tail", "--json"}, tc.args...)...)
			require.Equal(t, exitOK, code, stderr)
			var got []int64
			for _, l := range lines(stdout) {
				var e audit.Entry
				require.NoError(t, json.Unmarshal([]byte(l), &e), l)
				got = append(got, e.ID)
			}
			assert.Equal(t, tc.want, got)
		})
	}

	code, stdout, _ := f.run(t, "tail", "-n", "2")
	require.Equal(t, exitOK, code)
	rows := lines(stdout)
	require.Len(t, rows, 2)
	assert.Equal(t, "2025-03-01T10:00:00Z  9  -  user.passkey_register  -  10.0.0.1  -", rows[0])
	assert.Equal(t, `2025-03-02T11:30:00Z  10  #1  user.login  -  10.0.0.2  {"method":"oidc"}`, rows[1])
}

// lineSink is a writer that hands each complete line to the test as it is
// written, so the test waits for output rather than for time.
type lineSink struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func newLineSink() *lineSink { return &lineSink{lines: make(chan string, 1000)} }

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		s.lines <- string(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
}

// next returns the next line, failing the test if none comes within a
// generous bound (a hang, not a timing assumption).
func (s *lineSink) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no line printed")
		return ""
	}
}

func (s *lineSink) nextEntry(t *testing.T) audit.Entry {
	t.Helper()
	var e audit.Entry
	l := s.next(t)
	require.NoError(t, json.Unmarshal([]byte(l), &e), l)
	return e
}

func TestTailFollow(t *testing.T) {
	f := newFixture(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLineSink()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"tail", "-f", "-n", "2", "--interval", "10ms", "--json",
			"--action", "Authentication", "--db", f.db, "--log", f.log}, out, &stderr)
	}()

	// Of ids 1..5 only 1 (a login) and 2 (a failed login) are in the
	// Authentication category.
	assert.EqualValues(t, 1, out.nextEntry(t).ID)
	assert.EqualValues(t, 2, out.nextEntry(t).ID)

	// New events, matching and not, recorded while it follows: through
	// the library (ids 6..10) and by TREK's own code (id 11).
	for i := 5; i < 10; i++ {
		f.record(t, sampleEvent(i))
	}
	e := out.nextEntry(t)
	assert.EqualValues(t, 6, e.ID)
	assert.Equal(t, audit.UserLogin, e.Action)
	assert.EqualValues(t, 7, out.nextEntry(t).ID)
	f.exec(t, `INSERT INTO audit_log (user_id, action, ip) VALUES (3, 'user.login', '10.1.1.1')`)
	e = out.nextEntry(t)
	assert.EqualValues(t, 11, e.ID)
	require.NotNil(t, e.IP)
	assert.Equal(t, "10.1.1.1", *e.IP)

	// A burst larger than a poll's first page, committed at once, comes
	// out whole and in order: ids 12..71.
	tx, err := f.raw.Begin()
	require.NoError(t, err)
	for range 60 {
		_, err := tx.Exec(`INSERT INTO audit_log (action, ip) VALUES ('user.login_failed', '10.2.2.2')`)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	for id := int64(12); id <= 71; id++ {
		require.EqualValues(t, id, out.nextEntry(t).ID)
	}

	stopTail(t, cancel, done, stderr.String)
	assert.Empty(t, stderr.String())
	select {
	case l := <-out.lines:
		t.Fatalf("printed more than was recorded: %s", l)
	default:
	}
}

// stopTail cancels tail -f's context and checks that it ends, exit 0.
func stopTail(t *testing.T, cancel context.CancelFunc, done <-chan int, stderr func() string) {
	t.Helper()
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code, stderr())
	case <-time.After(20 * time.Second):
		t.Fatal("tail -f did not stop when its context was cancelled")
	}
}

// syncBuffer is a bytes.Buffer one goroutine writes while another reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTailFollowsARestore: travel.db restored from a backup under tail -f,
// copied over the file (its ids start again below the last one printed)
// or moved into place (another file): tail says so and prints the
// entries recorded since, rather than wait for ids it has printed.
func TestTailFollowsARestore(t *testing.T) {
	f := newFixture(t, 5)
	backup := filepath.Join(t.TempDir(), "backup.db")
	f.exec(t, `VACUUM INTO '`+backup+`'`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLineSink()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"tail", "-f", "-n", "1", "--interval", "10ms", "--json", "--db", f.db, "--log", f.log}, out, &stderr)
	}()
	assert.EqualValues(t, 5, out.nextEntry(t).ID)
	for i := 5; i < 8; i++ {
		f.record(t, sampleEvent(i))
	}
	for id := int64(6); id <= 8; id++ {
		require.EqualValues(t, id, out.nextEntry(t).ID)
	}

	// Copied over: the rows after the backup gone, their ids given again
	// once tail has seen the table go back.
	f.exec(t, `DELETE FROM audit_log WHERE id > 5`)
	f.exec(t, `UPDATE sqlite_sequence SET seq = 5 WHERE name = 'audit_log'`)
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "the newest entry matching is now 5, before 8, the last one printed")
	}, 20*time.Second, 5*time.Millisecond, "tail says the table went back")
	f.exec(t, `INSERT INTO audit_log (action, resource) VALUES ('user.login', 'after the restore')`)
	e := out.nextEntry(t)
	assert.EqualValues(t, 6, e.ID)
	require.NotNil(t, e.Resource)
	assert.Equal(t, "after the restore", *e.Resource)

	// Moved into place: another file at the path.
	require.NoError(t, f.a.Close())
	b, err := sql.Open("sqlite3", backup)
	require.NoError(t, err)
	// (Its row 6 takes an id printed already, which tail cannot tell
	// from the one it printed: only the ids past it come out.)
	_, err = b.Exec(`INSERT INTO audit_log (action, resource) VALUES ('user.login', 'in the moved file'), ('user.login', 'and another')`)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	// (A restore takes the old file's -wal and -shm away with it, as they
	// would hand the new file the old one's pages.)
	for _, side := range []string{"-wal", "-shm"} {
		require.NoError(t, os.Remove(f.db+side))
	}
	require.NoError(t, os.Rename(backup, f.db))
	e = out.nextEntry(t)
	assert.EqualValues(t, 7, e.ID)
	require.NotNil(t, e.Resource)
	assert.Equal(t, "and another", *e.Resource)
	assert.Contains(t, stderr.String(), "is another file now")

	stopTail(t, cancel, done, stderr.String)
}

// A value a client chose (an MCP tool name) or TREK's own row holds cannot
// add a column to a line of tail, nor pass for an absent value: each line
// has its seven columns, two spaces apart, and no more; the table quotes
// the same values.
func TestTailValuesCannotForgeColumns(t *testing.T) {
	f := newFixture(t, 0)
	f.record(t, audit.Event{Action: audit.MCPToolCall, Resource: `get_trip  10.9.9.9  {"ok":true}`, IP: "203.0.113.9"})
	f.record(t, audit.Event{Action: audit.MCPToolCall, Resource: "-", IP: "203.0.113.9"})
	f.record(t, audit.Event{Action: audit.TripCreate, Resource: "trip:12", IP: "203.0.113.9",
		Details: map[string]any{"title": "Lisbon  203.0.113.66  -"}})
	f.exec(t, `INSERT INTO audit_log (created_at, user_id, action, resource, details, ip) VALUES
		('yesterday  noon', NULL, ?, '/api/trips', NULL, '10.0.0.1  10.0.0.2'),
		(NULL, NULL, 'user.login', ' trip:1', NULL, '')`, "\u2212") // a minus sign

	code, stdout, stderr := f.run(t, "tail")
	require.Equal(t, exitOK, code, stderr)
	rows := lines(stdout)
	require.Len(t, rows, 5)
	for _, r := range rows {
		assert.Len(t, strings.Split(r, "  "), 7, "one entry, seven columns: %q", r)
	}
	afterTime := func(r string) string { _, rest, _ := strings.Cut(r, "  "); return rest }
	assert.Equal(t, `1  -  mcp.tool_call  "get_trip\x20\x2010.9.9.9\x20\x20{\"ok\":true}"  203.0.113.9  -`, afterTime(rows[0]))
	assert.Equal(t, `2  -  mcp.tool_call  "-"  203.0.113.9  -`, afterTime(rows[1]))
	assert.Equal(t, `3  -  trip.create  trip:12  203.0.113.9  {"title":"Lisbon\u0020\u0020203.0.113.66\u0020\u0020-"}`, afterTime(rows[2]))
	assert.Equal(t, "\"yesterday\\x20\\x20noon\"  4  -  \"\u2212\"  /api/trips  \"10.0.0.1\\x20\\x2010.0.0.2\"  -", rows[3])
	assert.Equal(t, `-  5  -  user.login  " trip:1"  -  -`, rows[4])

	code, stdout, stderr = f.run(t, "list")
	require.Equal(t, exitOK, code, stderr)
	rows = lines(stdout)
	require.Len(t, rows, 6)
	assert.Regexp(t, `^4 +"yesterday\\x20\\x20noon" +- +"`+"\u2212"+`" +/api/trips +"10\.0\.0\.1\\x20\\x2010\.0\.0\.2" +-$`, rows[2])
	assert.Regexp(t, `^2 +\S+ +- +mcp\.tool_call +"-" +203\.0\.113\.9 +-$`, rows[4])
	assert.Regexp(t, `^1 +\S+ +- +mcp\.tool_call +"get_trip\\x20\\x2010\.9\.9\.9\\x20\\x20\{\\"ok\\":true\}" +203\.0\.113\.9 +-$`, rows[5])
}
