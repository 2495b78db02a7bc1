package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tamper properties (verify_property_test.go) with trek.log edited as
// well as travel.db: lines of it deleted, cut off, altered, copied,
// joined, moved into rotated files (named as lumberjack names them, or
// not), the file removed or replaced by a folder. Verify must report
// exactly what the evidence shows:
//
//   - a change the chain itself shows, whatever trek.log holds;
//   - rows cut off the end while trek.log or a rotated file still holds a
//     chain head of a later position, and no alarm when none is left, as
//     the README's "Tamper evidence" says ("rows deleted together with the
//     log files that anchor them");
//   - no alarm from the log alone: edits of trek.log can hide evidence
//     but never raise a false alarm, and a head whose tag the key did not
//     make counts for nothing.
//
// Its counts are checked too: the chain heads read (each once), the lines
// shaped like one that are not the key's, and the entries named like log
// files that are not regular files.

// tamperHeads is what the oracle reads in a log folder: the chain heads
// the library wrote that are still whole (counted once each), the lines
// shaped like a head that are not one of them, the entries named like
// trek.log or its rotated files that are not regular files, and the
// latest chain position a whole head names.
type tamperHeads struct {
	valid, rejected, skipped int
	maxSeq                   int64
}

// headMark is what a chain-head line holds after its time.
const headMark = " AUDIT-CHAIN head "

var headSeq = regexp.MustCompile(` seq=(\d+) `)

// templateHeads returns the chain-head lines of the template's trek.log
// by what follows their time, with the position each names, and where
// in the line that part begins.
func templateHeads(t testing.TB, tmpl *tamperTemplate) (tails map[string]int64, at int) {
	t.Helper()
	tails = map[string]int64{}
	for _, line := range strings.Split(string(tmpl.log), "\n") {
		i := strings.Index(line, headMark)
		if i < 0 {
			continue
		}
		m := headSeq.FindStringSubmatch(line)
		require.NotNil(t, m, line)
		seq, err := strconv.ParseInt(m[1], 10, 64)
		require.NoError(t, err)
		tails[line[i:]] = seq
		require.True(t, at == 0 || at == i, "the time in every head has the same length")
		at = i
	}
	require.Len(t, tails, 12, "a chain head for each event")
	return tails, at
}

// readTamperLog is the oracle for trek.log, from the README: Verify reads
// trek.log and the files beside it named as lumberjack names rotated ones
// (trek-<UTC time, to the millisecond>.log), if they are regular files,
// line by line; a line is a chain head only if it is exactly one the
// library wrote, but for its time (the tag covers the row, not the time);
// a line too long to be one is passed over.
func readTamperLog(t testing.TB, tmpl *tamperTemplate, logPath string) tamperHeads {
	t.Helper()
	tails, at := templateHeads(t, tmpl)
	var h tamperHeads
	seen := map[string]bool{}
	entries, err := os.ReadDir(filepath.Dir(logPath))
	require.NoError(t, err)
	for _, e := range entries {
		name := e.Name()
		stamp, rotated := strings.CutSuffix(strings.TrimPrefix(name, "trek-"), ".log")
		if _, err := time.Parse("2006-01-02T15-04-05.000", stamp); err != nil || len(stamp) != 23 || !rotated {
			rotated = false
		}
		if name != "trek.log" && !rotated {
			continue
		}
		info, err := os.Lstat(filepath.Join(filepath.Dir(logPath), name))
		require.NoError(t, err)
		if !info.Mode().IsRegular() {
			h.skipped++
			continue
		}
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(logPath), name))
		require.NoError(t, err)
		for _, line := range strings.Split(string(raw), "\n") {
			if len(line) >= 4096 || !strings.HasPrefix(line, "[INFO] ") || len(line) < at || !strings.HasPrefix(line[at:], headMark) {
				continue
			}
			seq, ok := tails[line[at:]]
			if !ok {
				h.rejected++
				continue
			}
			if !seen[line[at:]] {
				seen[line[at:]] = true
				h.valid++
				h.maxSeq = max(h.maxSeq, seq)
			}
		}
	}
	return h
}

// The edits of the log folder FuzzTamperWithLog decodes from its second
// input, one byte for the kind, then the bytes each reads. Lines are
// trek.log's, named by a byte modulo their number.
const (
	logDrop     = iota // line: deleted
	logCut             // two bytes: trek.log cut off there
	logByte            // two bytes, byte: one byte of trek.log set
	logCopy            // line, line: the first copied before the second
	logJoin            // line: its newline removed
	logRotate          // line, name: it and the lines before it moved to another file
	logRetime          // line, place, byte: a byte of its time set
	logHeadByte        // line, place, byte: a byte after its time set
	logCR              // line: a carriage return before its newline
	logReplace         // kind: trek.log removed, emptied, made a folder; a folder named like a rotated file
	logKinds
)

// tamperLog is the log folder as the edits leave it: trek.log's content
// (kept as lines, each with its newline but perhaps the last), unless
// it is gone or a folder, and the other files made.
type tamperLog struct {
	lines  [][]byte
	gone   bool // trek.log removed (or a folder, when folder)
	folder bool
	others map[string][]byte
	dirs   []string
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		lines = append(lines, bytes.Clone(b[:i]))
		b = b[i:]
	}
	return lines
}

func (l *tamperLog) content() []byte { return bytes.Join(l.lines, nil) }

// rotatedNames are the names logRotate moves lines to, by its byte modulo
// their number: three lumberjack would give, two it would not.
var rotatedNames = []string{
	"trek-2026-04-20T08-11-53.123.log",
	"trek-2026-04-21T00-00-00.000.log",
	"trek-2025-12-31T23-59-59.999.log",
	"trek-staging.log", // another instance's log
	"trek.log.1",       // logrotate's name
}

// applyLogOps decodes in into edits of the log folder of logPath, as the
// template left it, and applies them.
func applyLogOps(t testing.TB, logPath string, in []byte) {
	t.Helper()
	raw, err := os.ReadFile(logPath)
	require.NoError(t, err)
	l := &tamperLog{lines: splitLines(raw), others: map[string][]byte{}}
	r := &tamperBytes{in}
	for range maxTamperOps {
		if len(r.b) == 0 {
			break
		}
		op := r.next() % logKinds
		if op == logReplace {
			switch r.next() % 4 {
			case 0:
				l.lines, l.gone = nil, true
			case 1:
				l.lines = nil
			case 2:
				l.lines, l.gone, l.folder = nil, true, true
			case 3:
				l.dirs = append(l.dirs, "trek-2026-04-22T00-00-00.000.log")
			}
			continue
		}
		offset := func() int { return int(r.next())<<8 | int(r.next()) }
		switch op {
		case logCut:
			c := l.content()
			l.lines = splitLines(c[:offset()%(len(c)+1)])
			continue
		case logByte:
			c := l.content()
			off, b := offset(), r.next()
			if len(c) > 0 {
				c[off%len(c)] = b
				l.lines = splitLines(c)
			}
			continue
		}
		if len(l.lines) == 0 {
			r.next()
			continue
		}
		i := int(r.next()) % len(l.lines)
		line := l.lines[i]
		switch op {
		case logDrop:
			l.lines = append(l.lines[:i], l.lines[i+1:]...)
		case logCopy:
			j := int(r.next()) % len(l.lines)
			l.lines = append(l.lines[:j], append([][]byte{bytes.Clone(line)}, l.lines[j:]...)...)
		case logJoin:
			l.lines[i] = bytes.TrimSuffix(line, []byte("\n"))
			l.lines = splitLines(l.content())
		case logRotate:
			name := rotatedNames[int(r.next())%len(rotatedNames)]
			l.others[name] = append(l.others[name], bytes.Join(l.lines[:i+1], nil)...)
			l.lines = l.lines[i+1:]
		case logRetime, logHeadByte:
			place, b := int(r.next()), r.next()
			from, span := len("[INFO] "), 19
			if op == logHeadByte {
				from, span = len("[INFO] ")+19, max(len(line)-len("[INFO] ")-19, 1)
				if b < 0x80 {
					b = "0123456789abcdef= x"[int(b)%19]
				}
			}
			if at := from + place%span; at < len(line) {
				line[at] = b
			}
			l.lines = splitLines(l.content())
		case logCR:
			if end := bytes.TrimSuffix(line, []byte("\n")); len(end) < len(line) {
				l.lines[i] = append(end, '\r', '\n')
			} else {
				l.lines[i] = append(line, '\r')
			}
		}
	}
	l.write(t, logPath)
}

// write makes the log folder of logPath what l describes.
func (l *tamperLog) write(t testing.TB, logPath string) {
	t.Helper()
	dir := filepath.Dir(logPath)
	require.NoError(t, os.Remove(logPath))
	switch {
	case l.folder:
		require.NoError(t, os.Mkdir(logPath, 0o700))
	case !l.gone:
		require.NoError(t, os.WriteFile(logPath, l.content(), 0o600))
	}
	for name, c := range l.others {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), c, 0o600))
	}
	for _, name := range l.dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, name), 0o700))
	}
}

// FuzzTamperWithLog edits the template's travel.db as FuzzTamper does
// (its first input) and its log folder (the second), and checks Verify's
// report against the oracles (see above).
func FuzzTamperWithLog(f *testing.F) {
	// The template's trek.log holds, for each of its 12 events, the
	// event's line, then its chain head: line 2k+1 (from 0) is the head of
	// chain position k+1. Rows by place as in FuzzTamper: 12 is the last
	// chained row (chain position 12), 10 holds position 10.
	seeds := []struct{ db, log []byte }{
		{nil, nil},
		{nil, []byte{logReplace, 0}}, // trek.log removed
		{[]byte{opTruncate, 10}, []byte{logReplace, 0}},               // and the end cut off: nothing shows it
		{[]byte{opTruncate, 10}, []byte{logDrop, 23, logDrop, 21}},    // the heads of the rows cut off deleted
		{[]byte{opTruncate, 10}, []byte{logDrop, 23}},                 // one of them left
		{[]byte{opTruncate, 10}, []byte{logRotate, 23, 0, logCut, 0}}, // all moved to a rotated file
		{[]byte{opTruncate, 10}, []byte{logRotate, 23, 3}},            // to another instance's log
		{[]byte{opDelete, 12}, []byte{logCR, 23}},                     // the last head made not quite one
		{[]byte{opDelete, 12}, []byte{logJoin, 23, logJoin, 21}},
		{[]byte{opDelete, 12}, []byte{logRetime, 23, 5, '7'}}, // its time changed: still the key's
		{[]byte{opDelete, 12}, []byte{logHeadByte, 23, 12, '9'}},
		{nil, []byte{logHeadByte, 23, 9, '3', logCopy, 23, 0, logCopy, 23, 4}}, // a forged head, copies
		{nil, []byte{logByte, 1, 0, '\n', logByte, 2, 0, 0}},
		{[]byte{opUpdate, 3, colDetails, valText, 1, 'x'}, []byte{logReplace, 2, logReplace, 3}}, // the chain shows it anyway
		{[]byte{opDelete, 12}, []byte{logReplace, 3, logRotate, 21, 1}},
	}
	for _, s := range seeds {
		f.Add(s.db, s.log)
	}
	tmpl := newTamperTemplate(f)
	f.Fuzz(func(t *testing.T, db, log []byte) {
		checkTamper(t, tmpl, func(e *tamperEditor) { applyTamperOps(e, db) }, func(logPath string) { applyLogOps(t, logPath, log) })
	})
}

// TestTamperWithLogCases runs the property check on edits of travel.db and
// trek.log picked by hand, and checks what the oracles make of each.
func TestTamperWithLogCases(t *testing.T) {
	tmpl := newTamperTemplate(t)
	// head returns the template's chain-head line of position seq.
	head := func(seq int) string {
		m := regexp.MustCompile(`(?m)^.*` + headMark + `id=\d+ seq=` + strconv.Itoa(seq) + ` .*$`).FindString(string(tmpl.log))
		require.NotEmpty(t, m, "the head of position %d", seq)
		return m
	}
	// without returns trek.log without the lines that contain any of cut.
	without := func(cut ...string) []byte {
		var kept []string
		for _, line := range strings.SplitAfter(string(tmpl.log), "\n") {
			if !containsAny(line, cut) {
				kept = append(kept, line)
			}
		}
		return []byte(strings.Join(kept, ""))
	}
	cutEnd := []string{`DELETE FROM audit_log WHERE id >= 11`} // chain positions 10 to 12
	cases := []struct {
		name    string
		sql     []string
		log     func(dir string) // edits the log folder, trek.log in it
		verdict int
		heads   tamperHeads
	}{
		{"trek.log removed", nil, func(dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "trek.log")))
		}, chainAsWritten, tamperHeads{}},
		{"trek.log removed, and the end cut off: nothing shows it", cutEnd, func(dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "trek.log")))
		}, chainCut, tamperHeads{}},
		{"the end cut off with its heads", cutEnd, func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "trek.log"), without(head(10), head(11), head(12)), 0o600))
		}, chainCut, tamperHeads{valid: 9, maxSeq: 9}},
		{"the end cut off, one of its heads left", cutEnd, func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "trek.log"), without(head(12), head(11)), 0o600))
		}, chainCut, tamperHeads{valid: 10, maxSeq: 10}},
		{"the end cut off, its heads in a file rotated", cutEnd, func(dir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, "trek.log"), filepath.Join(dir, "trek-2026-04-20T08-11-53.123.log")))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "trek.log"), nil, 0o600))
		}, chainCut, tamperHeads{valid: 12, maxSeq: 12}},
		{"the end cut off, its heads in another instance's log", cutEnd, func(dir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, "trek.log"), filepath.Join(dir, "trek-staging.log")))
		}, chainCut, tamperHeads{}},
		{"the last row deleted, its head's time changed", []string{`DELETE FROM audit_log WHERE id = 13`}, func(dir string) {
			h := head(12)
			retimed := h[:len("[INFO] ")] + "1999-01-01T00:00:00" + h[len("[INFO] ")+19:]
			require.NoError(t, os.WriteFile(filepath.Join(dir, "trek.log"), []byte(strings.Replace(string(tmpl.log), h, retimed, 1)), 0o600))
		}, chainCut, tamperHeads{valid: 12, maxSeq: 12}},
		{"the last row deleted, its head with a carriage return", []string{`DELETE FROM audit_log WHERE id = 13`}, func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "trek.log"), []byte(strings.Replace(string(tmpl.log), head(12), head(12)+"\r", 1)), 0o600))
		}, chainCut, tamperHeads{valid: 11, rejected: 1, maxSeq: 11}},
		{"a head forged for a later position, copied twice", nil, func(dir string) {
			forged := strings.Replace(head(12), "seq=12 ", "seq=13 ", 1)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "trek.log"), []byte(string(tmpl.log)+forged+"\n"+head(3)+"\n"+head(3)+"\n"), 0o600))
		}, chainAsWritten, tamperHeads{valid: 12, rejected: 1, maxSeq: 12}},
		{"trek.log a folder, and one named like a rotated file", []string{`UPDATE audit_log SET ip = '10.9.9.9' WHERE id = 2`}, func(dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "trek.log")))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "trek.log"), 0o700))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "trek-2026-04-22T00-00-00.000.log"), 0o700))
		}, chainChanged, tamperHeads{skipped: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var heads tamperHeads
			verdict := checkTamper(t, tmpl, func(e *tamperEditor) {
				for _, q := range tc.sql {
					_, err := e.db.Exec(q)
					require.NoError(t, err, q)
					e.done = append(e.done, q)
				}
			}, func(logPath string) {
				tc.log(filepath.Dir(logPath))
				heads = readTamperLog(t, tmpl, logPath)
			})
			assert.Equal(t, tc.verdict, verdict.kind, "the oracle for the rows: %s", verdict.why)
			assert.Equal(t, tc.heads, heads, "the oracle for trek.log")
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
