package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The properties trek.log owes whoever reads it, an operator's grep, a log
// shipper or Verify, checked against a model kept in Go while a short
// program runs against one Auditor (LogMaxSizeMB 1, LogMaxBackups 1 to 3,
// which a reopen may change):
// events recorded one by one or from several goroutines at once, host
// writes through LogWriter (chunks of whole lines that push trek.log over
// its limit, or text that ends within a line), trek.log moved away,
// deleted or emptied in place between steps as an operator or logrotate
// does (README, "What an operator sees"), and the Auditor closed and
// opened again on the same files.
//
//  1. Every event Record reported stored has its line exactly once, in
//     trek.log, a rotated file or a file moved away, unless it was in a
//     file that was then deleted or emptied, or in a rotated file the
//     backup limit removed; the model reads those files just before they
//     go, so it knows exactly which lines went with them. A file moved
//     away holds only lines written before the move: the next line goes to
//     a new trek.log ("The next line then goes to a new trek.log, or to the
//     start of the emptied one"). Within any file the event lines stand in
//     the order the events were stored, none missing between two of them,
//     and the events of one Record step that no goroutine shared were
//     stored in the order recorded. Each host chunk is likewise whole in
//     exactly one file, and each unfinished host text once.
//  2. No line is fused with another or torn: every line is an event's, a
//     chain head, the host's filler line, the host's unfinished texts
//     (run together only with the host's own next write, which the library
//     does not end: "A write that ends within a line is ended before the
//     library or LogHandler writes"). No line is empty: a host's text left
//     in a file that is then moved away, deleted, rotated or emptied in
//     place is not ended at the top of the next (README: "then it ends with
//     that file, and the next file does not begin with an empty line"). A
//     file ends with a newline, or with the host's unfinished text.
//  3. No file holds a NUL byte, as a write at the old offset after trek.log
//     was emptied in place would leave (filelog.go, sharedLog.write).
//  4. There are never more rotated files (trek-<time>.log) than
//     LogMaxBackups, those kept are the newest ones, and after a rotation
//     exactly min(rotations, LogMaxBackups) are left (README: "the 4 newest
//     are kept"); a reopen with another LogMaxBackups applies it from the
//     first write after it (README: "a lowered LogMaxBackups removes the
//     rotated files past it at the first line written after Open"). No file is larger than LogMaxSizeMB: lumberjack rotates
//     before a write that would take trek.log past it and refuses a larger
//     write, and the library never hands it one (maxLogWrite); this holds
//     after trek.log was emptied in place too, where lumberjack counts the
//     bytes that are gone and rotates early.
//  5. Each batch's lines are followed, in the same file, by its chain head,
//     whole, naming the batch's last row and its chain position ("a chain
//     anchor after each committed batch"); every head is there once; the
//     newest file read as Verify reads them (trek.log, then the rotated
//     files newest first) that holds a head ends with the head of the last
//     event stored, unless that event's line was taken away; and Verify
//     finds the chain intact with no head rejected.
//
// Not checked: that a folder whose time is long past still notices a
// move (the program runs in milliseconds, so trek.log's folder has always
// just changed; filelog_test.go's TestTrekLogMovedAwayIsReopened covers
// it), LogHandler's lines, and the clock being set back.

// trekLogOp is one step of a program.
type trekLogOp uint8

const (
	tlRecord           trekLogOp = iota // n events, one after the other
	tlRecordConcurrent                  // n events from n goroutines at once
	tlHostChunk                         // n KiB of whole filler lines, the last shortened by trim bytes
	tlHostUnfinished                    // a host text without its newline
	tlMoveAway                          // trek.log renamed to trek.log.moved-sNN
	tlDelete                            // trek.log removed
	tlEmpty                             // trek.log truncated to 0 in place
	tlReopen                            // Close, then Open on the same paths, with LogMaxBackups n (0: as before)
	tlNothing
)

var trekLogOpNames = [...]string{"record", "record-concurrently", "host-chunk", "host-unfinished",
	"move-away", "delete", "empty-in-place", "close-reopen", "nothing"}

func (o trekLogOp) String() string { return trekLogOpNames[o] }

type trekLogStep struct {
	op      trekLogOp
	n, trim int
}

func (s trekLogStep) String() string {
	switch s.op {
	case tlRecord, tlRecordConcurrent:
		return fmt.Sprintf("%s(%d)", s.op, s.n)
	case tlHostChunk:
		return fmt.Sprintf("%s(%d KiB - %d)", s.op, s.n, s.trim)
	case tlReopen:
		if s.n > 0 {
			return fmt.Sprintf("%s(LogMaxBackups %d)", s.op, s.n)
		}
	}
	return s.op.String()
}

type trekLogProgram struct {
	backups int
	steps   []trekLogStep
}

// trekLogMaxSteps bounds a program, so that each input runs in well under
// a second.
const trekLogMaxSteps = 12

// decodeTrekLogProgram reads a program: the first byte picks LogMaxBackups,
// then each pair of bytes is a step, its operation and an argument.
func decodeTrekLogProgram(in []byte) trekLogProgram {
	p := trekLogProgram{backups: 1}
	if len(in) == 0 {
		return p
	}
	p.backups = 1 + int(in[0])%3
	ops := [...]trekLogOp{tlRecord, tlRecordConcurrent, tlHostChunk, tlHostUnfinished, tlMoveAway,
		tlDelete, tlEmpty, tlReopen, tlNothing, tlHostChunk}
	for i := 1; i+1 < len(in) && len(p.steps) < trekLogMaxSteps; i += 2 {
		b, arg := int(in[i]), int(in[i+1])
		s := trekLogStep{op: ops[b%len(ops)]}
		switch s.op {
		case tlRecord:
			s.n = 1 + arg%5
		case tlRecordConcurrent:
			s.n = 2 + arg%4
		case tlHostChunk:
			// 200 to 700 KiB in steps of 2 KiB, less up to 850 bytes:
			// enough to bring trek.log within a line of its limit.
			s.n = 200 + arg%251*2
			s.trim = b / len(ops) * 34
		case tlReopen:
			s.n = arg % 4
		}
		p.steps = append(p.steps, s)
	}
	return p
}

// The host's lines. Each names its step, so that the oracle knows which
// write it came from.
const trekLogHostTime = "[INFO] 2026-04-20T10:11:53 host"

func trekLogFragment(step int) string {
	return fmt.Sprintf("%s: unfinished s%02d", trekLogHostTime, step)
}

// trekLogChunk is a host chunk: lines-1 full lines (1 KiB each with the
// newline) and a last one trim bytes shorter, without their newlines.
type trekLogChunk struct {
	full, last string
	lines      int
}

func newTrekLogChunk(step, kib, trim int) trekLogChunk {
	prefix := fmt.Sprintf("%s filler s%02d ", trekLogHostTime, step)
	return trekLogChunk{
		full:  prefix + strings.Repeat("x", 1023-len(prefix)),
		last:  prefix + strings.Repeat("x", 1023-len(prefix)-trim),
		lines: kib,
	}
}

func (c trekLogChunk) bytes() []byte {
	return []byte(strings.Repeat(c.full+"\n", c.lines-1) + c.last + "\n")
}

var (
	trekLogEventLine  = regexp.MustCompile(`^\[INFO\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d anonymous created backup "evt-(\d+)" ip=-$`)
	trekLogAnchorLine = regexp.MustCompile(`^\[INFO\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d AUDIT-CHAIN head id=(\d+) seq=(\d+) mac=[0-9a-f]{64} tag=[0-9a-f]{32}$`)
	trekLogFragments  = regexp.MustCompile(`^(?:` + regexp.QuoteMeta(trekLogHostTime) + `: unfinished s\d\d)*`)
	trekLogFragStep   = regexp.MustCompile(`: unfinished s(\d\d)`)
	trekLogFiller     = regexp.MustCompile(`^` + regexp.QuoteMeta(trekLogHostTime) + ` filler s(\d\d) x*$`)
)

// trekLogEvent is an event the program recorded, as evt-<index>.
type trekLogEvent struct {
	step       int
	concurrent bool
	stored     bool // Record returned nil
}

// trekLogView is a file as the oracle read it: one in the log folder at
// the end, or one the program saw go (deleted, emptied, pruned).
type trekLogView struct {
	name    string
	raw     []byte
	kind    string // trek.log, rotated, moved, deleted, emptied, pruned
	takenAt int    // the step that moved it away; -1 if it was not
}

// trekLogStats is what a program did, for the hand-picked cases to check
// they are about what they say.
type trekLogStats struct {
	rotationsBy                                      map[trekLogOp]int
	pruned, moved, deleted, emptied, reopened, frags int
	events                                           int
}

func (s trekLogStats) rotations() int {
	n := 0
	for _, c := range s.rotationsBy {
		n += c
	}
	return n
}

// trekLogRun is a program running, and the model of what it wrote.
type trekLogRun struct {
	t       *testing.T
	prog    trekLogProgram
	cfg     Config
	dir     string // trek.log's folder
	a       *Auditor
	events  []trekLogEvent
	chunks  map[int]trekLogChunk
	frags   map[int]bool
	gone    []trekLogView // files the program saw go, as they were
	moved   map[string]int
	rotated []string // rotated files in the order they appeared
	alive   []string // those of them the model says are left, in that order
	// limit is the LogMaxBackups the rotated files obey; a reopen's
	// applies from the first write after it (limitDue until then).
	limit    int
	limitDue bool
	kept     map[string][]byte // those still there, as first read
	stats    trekLogStats
}

func runTrekLogProgram(t *testing.T, prog trekLogProgram) trekLogStats {
	t.Helper()
	root := t.TempDir()
	r := &trekLogRun{
		t: t, prog: prog,
		cfg: Config{
			DBPath: filepath.Join(root, "travel.db"), LogPath: filepath.Join(root, "logs", "trek.log"),
			ChainKey: faultChainKey, LogMaxSizeMB: 1, LogMaxBackups: prog.backups, Synchronous: "NORMAL",
		},
		dir:    filepath.Join(root, "logs"),
		chunks: map[int]trekLogChunk{}, frags: map[int]bool{}, moved: map[string]int{}, kept: map[string][]byte{},
		stats: trekLogStats{rotationsBy: map[trekLogOp]int{}}, limit: prog.backups,
	}
	var err error
	r.a, err = Open(r.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { r.a.Close() })
	for i, s := range prog.steps {
		r.step(i, s)
		r.observe(s.op)
	}
	r.finish()
	return r.stats
}

func (r *trekLogRun) record(step, n int, concurrent bool) {
	first := len(r.events)
	for range n {
		r.events = append(r.events, trekLogEvent{step: step, concurrent: concurrent})
	}
	rec := func(i int) error {
		return r.a.Record(r.t.Context(), Event{Action: BackupCreate, Resource: fmt.Sprintf("evt-%d", i)})
	}
	errs := make([]error, n)
	if concurrent {
		var wg sync.WaitGroup
		for j := range n {
			wg.Go(func() { errs[j] = rec(first + j) })
		}
		wg.Wait()
	} else {
		for j := range n {
			errs[j] = rec(first + j)
		}
	}
	for j, err := range errs {
		// Nothing here makes a write fail: trek.log is only ever moved,
		// deleted or emptied, which the README says the next line
		// survives.
		assert.NoError(r.t, err, "step %d, evt-%d", step, first+j)
		r.events[first+j].stored = err == nil
	}
	r.stats.events += n
}

func (r *trekLogRun) step(i int, s trekLogStep) {
	t := r.t
	switch s.op {
	case tlRecord, tlRecordConcurrent:
		r.record(i, s.n, s.op == tlRecordConcurrent)
	case tlHostChunk:
		c := newTrekLogChunk(i, s.n, s.trim)
		b := c.bytes()
		n, err := r.a.LogWriter().Write(b)
		assert.NoError(t, err, "step %d: host chunk", i)
		if n == len(b) {
			r.chunks[i] = c
		}
	case tlHostUnfinished:
		_, err := r.a.LogWriter().Write([]byte(trekLogFragment(i)))
		assert.NoError(t, err, "step %d: host text", i)
		if err == nil {
			r.frags[i] = true
			r.stats.frags++
		}
	case tlMoveAway:
		name := fmt.Sprintf("trek.log.moved-s%02d", i)
		if err := os.Rename(r.cfg.LogPath, filepath.Join(r.dir, name)); err == nil {
			r.moved[name] = i
			r.stats.moved++
		} else {
			require.ErrorIs(t, err, os.ErrNotExist)
		}
	case tlDelete, tlEmpty:
		// Read just before it goes: these lines are the ones lost.
		raw, err := os.ReadFile(r.cfg.LogPath)
		if err != nil {
			require.ErrorIs(t, err, os.ErrNotExist)
			return
		}
		kind := "deleted"
		if s.op == tlDelete {
			require.NoError(t, os.Remove(r.cfg.LogPath))
			r.stats.deleted++
		} else {
			kind = "emptied"
			require.NoError(t, os.Truncate(r.cfg.LogPath, 0))
			r.stats.emptied++
		}
		r.gone = append(r.gone, trekLogView{name: fmt.Sprintf("trek.log %s at step %d", kind, i), raw: raw, kind: kind, takenAt: -1})
	case tlReopen:
		require.NoError(t, r.a.Close())
		if s.n > 0 {
			r.cfg.LogMaxBackups, r.limitDue = s.n, true
		}
		var err error
		r.a, err = Open(r.cfg)
		require.NoError(t, err)
		r.stats.reopened++
	}
}

// rotatedNow lists the rotated files in the log folder, by name.
func (r *trekLogRun) rotatedNow() []string {
	entries, err := os.ReadDir(r.dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(r.t, err)
	var names []string
	for _, e := range entries {
		if isRotatedName(e.Name(), "trek-", ".log") {
			names = append(names, e.Name())
		}
	}
	return names
}

// observe runs after each step: it reads each rotated file once, when it
// appears (lumberjack never writes to it again), and keeps what it held
// when the backup limit removes it. No step writes 1 MB, so no step
// rotates trek.log twice, and the backup limit never removes a file in
// the step that made it.
func (r *trekLogRun) observe(op trekLogOp) {
	t := r.t
	now := r.rotatedNow()
	for _, name := range now {
		if _, ok := r.kept[name]; ok {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(r.dir, name))
		require.NoError(t, err)
		r.kept[name] = raw
		r.rotated = append(r.rotated, name)
		r.alive = append(r.alive, name)
		r.stats.rotationsBy[op]++
	}
	for _, name := range r.rotated {
		if raw, ok := r.kept[name]; ok && !slices.Contains(now, name) {
			r.gone = append(r.gone, trekLogView{name: name + " (pruned)", raw: raw, kind: "pruned", takenAt: -1})
			delete(r.kept, name)
			r.stats.pruned++
		}
	}
	switch op {
	case tlRecord, tlRecordConcurrent, tlHostChunk, tlHostUnfinished:
		if r.limitDue {
			r.limit, r.limitDue = r.cfg.LogMaxBackups, false
		}
	}
	keep := min(len(r.alive), r.limit)
	r.alive = r.alive[len(r.alive)-keep:]
	assert.ElementsMatch(t, r.alive, now,
		"after %s: the %d newest rotated files are kept, no more, no fewer (in the order they appeared: %v)",
		op, keep, r.rotated)
}

func (r *trekLogRun) finish() {
	t := r.t
	rep, err := r.a.Verify(t.Context())
	require.NoError(t, err)
	assert.True(t, rep.Intact, "Verify: %+v", rep.Problem)
	assert.Zero(t, rep.RejectedAnchors, "Verify rejected chain heads")
	require.NoError(t, r.a.Close())
	r.observe(tlNothing)

	// The files at the end, and those the program saw go.
	var views []trekLogView
	entries, err := os.ReadDir(r.dir)
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	for _, e := range entries {
		name := e.Name()
		raw, err := os.ReadFile(filepath.Join(r.dir, name))
		require.NoError(t, err)
		v := trekLogView{name: name, raw: raw, takenAt: -1}
		switch at, moved := r.moved[name]; {
		case name == "trek.log":
			v.kind = "trek.log"
		case isRotatedName(name, "trek-", ".log"):
			v.kind = "rotated"
			assert.Equal(t, r.kept[name], raw, "%s changed after it was rotated", name)
		case moved:
			v.kind, v.takenAt = "moved", at
		default:
			assert.Fail(t, "a file the library should not have made", "%s", name)
			continue
		}
		views = append(views, v)
	}
	views = append(views, r.gone...)

	// Each stored event's row: its id and chain position, in id order.
	db := openPlainDB(t, r.cfg.DBPath)
	rows, err := db.Query(`SELECT id, resource, chain_seq FROM audit_log ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var stored []trekLogRow
	byID := map[int64]trekLogRow{}
	idOf := map[int]int64{}
	for rows.Next() {
		var row trekLogRow
		var res string
		require.NoError(t, rows.Scan(&row.id, &res, &row.seq))
		n, err := strconv.Atoi(strings.TrimPrefix(res, "evt-"))
		require.NoError(t, err, "resource %q", res)
		row.evt = n
		stored = append(stored, row)
		byID[row.id], idOf[n] = row, row.id
	}
	require.NoError(t, rows.Err())
	for i, e := range r.events {
		if e.stored {
			require.Contains(t, idOf, i, "evt-%d is stored", i)
		}
	}
	// Events one goroutine recorded one after the other were stored in
	// that order, and every step's before the next step's.
	for i := 1; i < len(stored); i++ {
		a, b := r.events[stored[i-1].evt], r.events[stored[i].evt]
		inOrder := a.step < b.step || a.step == b.step && (a.concurrent || stored[i-1].evt < stored[i].evt)
		assert.True(t, inOrder, "evt-%d stored before evt-%d", stored[i-1].evt, stored[i].evt)
	}

	c := trekLogCheck{run: r, byID: byID, idOf: idOf, evtIn: map[int][]string{}, headIn: map[int64][]string{},
		fragIn: map[int][]string{}, chunkIn: map[int]map[string]int{}, heads: map[string][][2]int64{}}
	for _, v := range views {
		c.view(v)
	}
	c.ledger()
	if len(c.problems) > 20 {
		c.problems = append(c.problems[:20], fmt.Sprintf("... and %d more", len(c.problems)-20))
	}
	assert.Empty(t, c.problems, "program: LogMaxBackups %d, steps %v", r.prog.backups, r.prog.steps)

	// Property 4: the count of rotated files at the end.
	rotated := 0
	for _, v := range views {
		if v.kind == "rotated" {
			rotated++
		}
	}
	assert.LessOrEqual(t, rotated, r.limit, "rotated files")

	// Property 5: the newest head, as Verify reads the files (trek.log,
	// then the rotated files newest first), is the last event's, unless
	// that event's line is not among them.
	if len(stored) == 0 {
		return
	}
	last := stored[len(stored)-1]
	var readable []trekLogView
	for _, v := range views {
		if v.kind == "trek.log" || v.kind == "rotated" {
			readable = append(readable, v)
		}
	}
	slices.SortFunc(readable, func(a, b trekLogView) int {
		if a.kind != b.kind {
			return strings.Compare(b.kind, a.kind) // "trek.log" before "rotated"
		}
		return strings.Compare(b.name, a.name) // newest first
	})
	lastInReadable := false
	for _, v := range readable {
		lastInReadable = lastInReadable || slices.Contains(c.evtIn[last.evt], v.name)
	}
	if !lastInReadable {
		return
	}
	for _, v := range readable {
		heads := c.heads[v.name]
		if len(heads) == 0 {
			continue
		}
		assert.Equal(t, [2]int64{last.id, last.seq}, heads[len(heads)-1],
			"the newest chain head, in %s, names the last event stored (evt-%d)", v.name, last.evt)
		break
	}
}

// trekLogRow is an event's row: its id, chain position and evt number.
type trekLogRow struct {
	id, seq int64
	evt     int
}

// trekLogCheck gathers where each item of the model was found, and what is
// wrong with each file.
type trekLogCheck struct {
	run      *trekLogRun
	byID     map[int64]trekLogRow
	idOf     map[int]int64
	evtIn    map[int][]string       // evt number -> the files holding its line
	headIn   map[int64][]string     // row id -> the files holding its head
	fragIn   map[int][]string       // step -> the files holding its text
	chunkIn  map[int]map[string]int // step -> file -> lines of its chunk
	heads    map[string][][2]int64  // file -> its heads' id and seq, in order
	problems []string
}

func (c *trekLogCheck) fail(v trekLogView, format string, args ...any) {
	c.problems = append(c.problems, v.name+": "+fmt.Sprintf(format, args...))
}

// view checks one file line by line (properties 2, 3 and 4's size, and
// 1's and 5's order within a file) and notes where each item is.
func (c *trekLogCheck) view(v trekLogView) {
	r := c.run
	if n := bytes.Count(v.raw, []byte{0}); n > 0 {
		c.fail(v, "%d NUL bytes", n)
	}
	if limit := r.cfg.LogMaxSizeMB << 20; len(v.raw) > limit {
		c.fail(v, "%d bytes, over the limit of %d", len(v.raw), limit)
	}
	lines := strings.Split(string(v.raw), "\n")
	tail := lines[len(lines)-1]
	lines = lines[:len(lines)-1]
	if trekLogFragments.FindString(tail) != tail {
		c.fail(v, "ends within a line that is not the host's unfinished text: %.100q", tail)
	} else {
		c.fragments(v, tail)
	}
	prevRow := int64(-1) // the row of the previous event line
	for j, line := range lines {
		if m := trekLogEventLine.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			c.evtIn[n] = append(c.evtIn[n], v.name)
			id, ok := c.idOf[n]
			if !ok || n >= len(r.events) {
				c.fail(v, "line %d: evt-%d, which no Record stored", j, n)
				continue
			}
			if prevRow >= 0 && id != prevRow+1 {
				c.fail(v, "line %d: evt-%d (row %d) follows row %d's line: out of order, or lines missing between", j, n, id, prevRow)
			}
			prevRow = id
			if v.takenAt >= 0 && r.events[n].step >= v.takenAt {
				c.fail(v, "line %d: evt-%d, recorded at step %d, went to the file moved away at step %d", j, n, r.events[n].step, v.takenAt)
			}
			// Next: the batch's next event, or its head, in this file.
			next := ""
			if j+1 < len(lines) {
				next = lines[j+1]
			}
			if h := trekLogAnchorLine.FindStringSubmatch(next); h != nil {
				if h[1] != strconv.FormatInt(id, 10) {
					c.fail(v, "line %d: evt-%d (row %d) is followed by the head of row %s", j, n, id, h[1])
				}
			} else if !r.events[n].concurrent || !trekLogEventLine.MatchString(next) {
				c.fail(v, "line %d: evt-%d is not followed by its batch's chain head but by %.100q", j, n, next)
			}
			continue
		}
		if m := trekLogAnchorLine.FindStringSubmatch(line); m != nil {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			seq, _ := strconv.ParseInt(m[2], 10, 64)
			c.headIn[id] = append(c.headIn[id], v.name)
			c.heads[v.name] = append(c.heads[v.name], [2]int64{id, seq})
			if row, ok := c.byID[id]; !ok {
				c.fail(v, "line %d: the head of row %d, which is not stored", j, id)
			} else if seq != row.seq {
				c.fail(v, "line %d: the head of row %d names chain position %d; stored: %d", j, id, seq, row.seq)
			}
			prev := ""
			if j > 0 {
				prev = lines[j-1]
			}
			if pm := trekLogEventLine.FindStringSubmatch(prev); pm == nil || c.idOf[atoiOrMinus(pm[1])] != id {
				c.fail(v, "line %d: the head of row %d does not follow that row's line but %.100q", j, id, prev)
			}
			continue
		}
		if strings.Contains(line, anchorTag) {
			c.fail(v, "line %d: a chain head that is not whole: %.200q", j, line)
			continue
		}
		if line == "" {
			c.fail(v, "line %d is empty", j)
			continue
		}
		// The host's: unfinished texts, then perhaps a filler line.
		frags := trekLogFragments.FindString(line)
		if rest := line[len(frags):]; rest != "" {
			m := trekLogFiller.FindStringSubmatch(rest)
			if m == nil {
				c.fail(v, "line %d is no one's, or lines run together: %.200q", j, line)
				continue
			}
			step, _ := strconv.Atoi(m[1])
			if ch, ok := r.chunks[step]; !ok || rest != ch.full && rest != ch.last {
				c.fail(v, "line %d: a host line torn or run together with another: %.100q (%d bytes)", j, rest, len(rest))
				continue
			}
			if c.chunkIn[step] == nil {
				c.chunkIn[step] = map[string]int{}
			}
			c.chunkIn[step][v.name]++
			if v.takenAt >= 0 && step >= v.takenAt {
				c.fail(v, "line %d: the host chunk of step %d went to the file moved away at step %d", j, step, v.takenAt)
			}
		}
		c.fragments(v, frags)
	}
}

// atoiOrMinus is s's number, -1 if it is none.
func atoiOrMinus(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// fragments notes the host's unfinished texts in s.
func (c *trekLogCheck) fragments(v trekLogView, s string) {
	for _, m := range trekLogFragStep.FindAllStringSubmatch(s, -1) {
		step, _ := strconv.Atoi(m[1])
		c.fragIn[step] = append(c.fragIn[step], v.name)
		if v.takenAt >= 0 && step >= v.takenAt {
			c.fail(v, "the host's text of step %d went to the file moved away at step %d", step, v.takenAt)
		}
	}
}

// ledger checks property 1 across the files: every item is in exactly one
// of them, those the program saw go included.
func (c *trekLogCheck) ledger() {
	r := c.run
	all := trekLogView{name: "all files"}
	for i, e := range r.events {
		if places := c.evtIn[i]; e.stored && len(places) != 1 || len(places) > 1 {
			c.fail(all, "evt-%d (step %d, stored %v) is in %d files: %v", i, e.step, e.stored, len(places), places)
		}
	}
	for id, places := range c.headIn {
		if len(places) > 1 {
			c.fail(all, "the head of row %d is in %d places: %v", id, len(places), places)
		}
	}
	for step := range r.prog.steps {
		places := c.fragIn[step]
		if want := r.frags[step]; want && len(places) != 1 || !want && len(places) > 0 {
			c.fail(all, "the host's text of step %d is in %d files: %v", step, len(places), places)
		}
		in := c.chunkIn[step]
		ch, want := r.chunks[step]
		switch {
		case !want && len(in) > 0:
			c.fail(all, "lines of a chunk of step %d, which wrote none: %v", step, in)
		case want && len(in) != 1:
			c.fail(all, "the host chunk of step %d is spread over %d files: %v", step, len(in), in)
		case want:
			for name, n := range in {
				if n != ch.lines {
					c.fail(all, "the host chunk of step %d has %d of its %d lines in %s", step, n, ch.lines, name)
				}
			}
		}
	}
}

// FuzzTrekLogModel runs programs made of any bytes (see
// decodeTrekLogProgram) and checks trek.log and the files beside it
// against the model.
func FuzzTrekLogModel(f *testing.F) {
	const (
		rec, conc, chunk, unfinished, move, del, empty, reopen, nothing = 0, 1, 2, 3, 4, 5, 6, 7, 8
	)
	seeds := [][]byte{
		{0, rec, 2},
		{1, chunk, 250, chunk, 250, rec, 3},                                 // 700 + 700 KiB: a rotation, then events
		{0, rec, 1, move, 0, rec, 2},                                        // moved away, then events
		{0, rec, 2, del, 0, rec, 1},                                         // deleted, then events
		{0, rec, 2, empty, 0, rec, 1},                                       // emptied in place, then events
		{0, unfinished, 0, rec, 0, unfinished, 0, conc, 3},                  // the host's unfinished text
		{2, chunk, 250, rec, 1, reopen, 0, chunk, 250, rec, 2, reopen, 0},   // close and reopen across a rotation
		{0, chunk, 250, chunk, 250, chunk, 250, rec, 1, chunk, 250, rec, 1}, // the backup limit prunes
		{1, chunk, 250, chunk, 62, rec, 0},                                  // 1024 KiB: trek.log full to the byte, then an event
		{1, chunk, 250, chunk, 61, rec, 4, rec, 1, conc, 3, rec, 1},         // concurrent events across a rotation
		{2, unfinished, 0, move, 0, rec, 1, unfinished, 0, del, 0, conc, 2, nothing, 0},
		{1, chunk, 250, empty, 0, chunk, 250, rec, 1, chunk, 250, rec, 1},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		runTrekLogProgram(t, decodeTrekLogProgram(in))
	})
}

// TestTrekLogModelCases runs hand-picked programs through the same check,
// and checks that each did what it is about.
func TestTrekLogModelCases(t *testing.T) {
	rec := func(n int) trekLogStep { return trekLogStep{op: tlRecord, n: n} }
	conc := func(n int) trekLogStep { return trekLogStep{op: tlRecordConcurrent, n: n} }
	chunk := func(kib, trim int) trekLogStep { return trekLogStep{op: tlHostChunk, n: kib, trim: trim} }
	unfinished := trekLogStep{op: tlHostUnfinished}
	move := trekLogStep{op: tlMoveAway}
	del := trekLogStep{op: tlDelete}
	empty := trekLogStep{op: tlEmpty}
	reopen := trekLogStep{op: tlReopen}
	// 700 + 323 KiB leave 1 KiB below the limit: an event's line and its
	// head take 226 bytes.
	nearlyFull := []trekLogStep{chunk(700, 0), chunk(323, 0)}
	steps := func(parts ...any) []trekLogStep {
		var out []trekLogStep
		for _, p := range parts {
			switch p := p.(type) {
			case trekLogStep:
				out = append(out, p)
			case []trekLogStep:
				out = append(out, p...)
			}
		}
		return out
	}
	cases := []struct {
		name    string
		backups int
		steps   []trekLogStep
		about   func(s trekLogStats) bool
	}{
		{"a host chunk rotates trek.log, then events", 2, steps(chunk(700, 0), chunk(700, 0), rec(3)),
			func(s trekLogStats) bool { return s.rotationsBy[tlHostChunk] == 1 }},
		{"events rotate trek.log", 2, steps(nearlyFull, rec(5)),
			func(s trekLogStats) bool { return s.rotationsBy[tlRecord] == 1 }},
		{"trek.log full to the byte, then an event", 2, steps(chunk(700, 0), chunk(324, 0), rec(1)),
			func(s trekLogStats) bool { return s.rotationsBy[tlRecord] == 1 }},
		{"the host's unfinished text fills trek.log to the byte: the library rotates it rather than write the newline", 2,
			steps(chunk(700, 0), chunk(324, len(trekLogFragment(2))), unfinished, rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.rotationsBy[tlRecord] == 1 }},
		{"the host's unfinished text fills trek.log to the byte, then a restart", 2,
			steps(chunk(700, 0), chunk(324, len(trekLogFragment(2))), unfinished, reopen, rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.reopened == 1 && s.rotationsBy[tlRecord] == 1 }},
		{"an unfinished host line, then trek.log deleted, then an event", 3, steps(rec(1), unfinished, del, rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.deleted == 1 }},
		{"trek.log moved away, then events", 3, steps(rec(2), move, rec(2), conc(3)),
			func(s trekLogStats) bool { return s.moved == 1 }},
		{"trek.log moved away twice", 1, steps(rec(1), move, move, rec(1), move, conc(2)),
			func(s trekLogStats) bool { return s.moved == 2 }},
		{"trek.log deleted, then events", 3, steps(rec(3), del, rec(2)),
			func(s trekLogStats) bool { return s.deleted == 1 }},
		{"trek.log emptied in place, then events", 3, steps(rec(3), empty, rec(2), conc(3)),
			func(s trekLogStats) bool { return s.emptied == 1 }},
		{"trek.log emptied in place after a rotation", 3, steps(chunk(700, 0), chunk(700, 0), rec(2), empty, rec(2)),
			func(s trekLogStats) bool { return s.emptied == 1 && s.rotations() == 1 }},
		{"trek.log emptied in place, then filled past its limit", 2,
			steps(chunk(700, 0), empty, chunk(500, 0), rec(1), chunk(500, 0), rec(1)),
			func(s trekLogStats) bool { return s.emptied == 1 && s.rotations() >= 1 }},
		{"an unfinished host line, then an event", 3, steps(unfinished, rec(1), unfinished, conc(3), rec(1)),
			func(s trekLogStats) bool { return s.frags == 2 }},
		{"an unfinished host line, then trek.log moved away, then an event", 3, steps(rec(1), unfinished, move, rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.moved == 1 }},
		{"an unfinished host line, then trek.log emptied, then an event", 3, steps(rec(1), unfinished, empty, rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.emptied == 1 }},
		{"an unfinished host line, then a chunk that rotates", 3, steps(chunk(700, 0), unfinished, chunk(700, 0), rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.rotationsBy[tlHostChunk] == 1 }},
		{"an unfinished host line in a full trek.log, then events", 3, steps(nearlyFull, rec(4), unfinished, rec(2)),
			func(s trekLogStats) bool { return s.frags == 1 && s.rotationsBy[tlRecord] == 1 }},
		{"an unfinished host line, then close and reopen", 3, steps(rec(1), unfinished, reopen, rec(1)),
			func(s trekLogStats) bool { return s.frags == 1 && s.reopened == 1 }},
		{"close and reopen across a rotation", 2, steps(rec(1), nearlyFull, reopen, rec(5), reopen, rec(1)),
			func(s trekLogStats) bool { return s.reopened == 2 && s.rotationsBy[tlRecord] == 1 }},
		{"the backup limit prunes the oldest rotated files", 1,
			steps(rec(1), chunk(700, 0), chunk(700, 0), rec(1), chunk(700, 0), rec(1), chunk(700, 0), rec(2)),
			func(s trekLogStats) bool { return s.pruned == 2 }},
		{"the backup limit with three backups", 3,
			steps(chunk(700, 0), chunk(700, 0), rec(1), chunk(700, 0), conc(2), chunk(700, 0), chunk(700, 0), rec(1), chunk(700, 0), rec(1)),
			func(s trekLogStats) bool { return s.pruned == 2 }},
		{"a restart with fewer backups removes the oldest at its first write", 3,
			steps(chunk(700, 0), chunk(700, 0), rec(1), chunk(700, 0), rec(1), chunk(700, 0), trekLogStep{op: tlReopen, n: 1}, move, rec(1)),
			func(s trekLogStats) bool { return s.rotations() == 3 && s.reopened == 1 && s.pruned == 2 }},
		{"a restart with more backups keeps them, up to the new limit", 1,
			steps(chunk(700, 0), chunk(700, 0), chunk(700, 0), rec(1), trekLogStep{op: tlReopen, n: 3},
				chunk(700, 0), rec(1), chunk(700, 0), chunk(700, 0), rec(1)),
			func(s trekLogStats) bool { return s.rotations() == 5 && s.reopened == 1 && s.pruned == 2 }},
		{"concurrent Records across a rotation", 2, steps(nearlyFull, rec(3), conc(5), rec(1)),
			func(s trekLogStats) bool { return s.rotationsBy[tlRecordConcurrent] == 1 }},
		{"deleted, moved and emptied in turn across rotations", 2,
			steps(rec(1), chunk(700, 0), del, chunk(700, 0), rec(1), move, chunk(700, 0), conc(3), chunk(700, 0), empty, rec(1)),
			func(s trekLogStats) bool {
				return s.deleted == 1 && s.moved == 1 && s.emptied == 1 && s.rotations() == 1
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := runTrekLogProgram(t, trekLogProgram{backups: tc.backups, steps: tc.steps})
			assert.True(t, tc.about(s), "the program did not do what the case is about: %+v", s)
		})
	}
}
