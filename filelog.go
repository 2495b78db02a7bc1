package audit

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/natefinch/lumberjack.v2"
)

// logTimeLayout is the time format of TREK's log lines, in the TZ zone.
const logTimeLayout = "2006-01-02T15:04:05"

// maxLogWrite bounds one write to lumberjack. A write larger than the
// rotation size is refused by lumberjack, and lines are only split between
// writes, never within one, so every line lands whole in one file.
const maxLogWrite = 1 << 20

// fileLog is one Auditor's trek.log: the audit lines, written by its
// writer, and the host's own lines, through LogWriter. The file and its
// rotation belong to a sharedLog, one per path in the process.
type fileLog struct {
	*sharedLog
	path     string
	limits   logLimits // what this Auditor was opened with
	readOnly bool      // Config.ReadOnly: every write fails
	closed   bool      // Close was called; guarded by mu
	buf      []byte    // used only by whichever caller holds the writer's place
	// anchors tags the chain-head line written after each batch; owned by
	// the writer too. Nil: no chain-head lines.
	anchors *anchorSigner
}

// sharedLog is the one lumberjack.Logger of a trek.log path, shared by
// every Auditor of the process that writes there, so that one owner
// rotates the file. It is kept for the life of the process (the file is
// closed when its last writer closes) and reused by the next Open:
// lumberjack starts a goroutine with a Logger's first file and never ends
// it, so a Logger an Open made would leave one behind at every Close.
type sharedLog struct {
	// mu orders the writes to lj. midLine is whether trek.log ends within
	// a line: a host's write through LogWriter that ended so, a line of
	// the library's that a full disk cut short, or a line an earlier
	// process left unfinished. The library's next write then begins with
	// a newline, so that its lines, anchors included, start where a
	// reader looks for them, not at the end of another's. hostMid is
	// whether that line is the host's own, from its last write: the
	// host's next write continues it (a line written in parts), and ends
	// any other first, so that the host's text never reads as the end of
	// an audit line either.
	mu      sync.Mutex
	lj      *lumberjack.Logger
	midLine bool
	hostMid bool
	// wants counts the fileLogs open on it that write, by the limits they
	// were opened with; guarded by sharedLogs.mu.
	wants map[logLimits]int
	// limits are those trek.log is rotated and pruned by, guarded by
	// both sharedLogs.mu and mu (it changes under both): lj.MaxSize, and
	// the rotated files pruneBackups keeps (lumberjack itself keeps all).
	limits logLimits
	// pruneDue: the limits were set, and the rotated files past them are
	// still to be removed, at the next write (see setLimits). Guarded by
	// mu.
	pruneDue bool

	// What reopenIfMoved last saw, guarded by mu: trek.log once it was
	// written, and its folder. size is trek.log's size as lumberjack
	// counts it, to tell a write that may rotate it.
	seen    os.FileInfo
	seenDir folderMark
	size    int64
}

// logLimits are a trek.log's rotation settings: LogMaxSizeMB and
// LogMaxBackups.
type logLimits struct{ maxSizeMB, maxBackups int }

func (l *sharedLog) running() logLimits { return l.limits }

// writers is how many fileLogs that write are open on l; the caller
// holds sharedLogs.mu.
func (l *sharedLog) writers() int {
	n := 0
	for _, c := range l.wants {
		n += c
	}
	return n
}

// setLimits makes lim the limits trek.log runs with. The caller holds
// sharedLogs.mu. lumberjack reads MaxSize only within Write, which mu
// orders; the goroutine it runs reads MaxBackups, MaxAge and Compress,
// which never change.
//
// The rotated files past the newest lim.maxBackups are removed at the
// next write, as lumberjack does when it opens a file: an operator who
// lowers LOG_MAX_BACKUPS to free the disk sees it done once the restarted
// server writes, not at the next rotation, months away on a quiet
// instance. Not at once: an Auditor that never writes a line (trek-audit
// acknowledge, opened with the default limit beside a server that keeps
// more) must not remove the server's files.
func (l *sharedLog) setLimits(lim logLimits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits, l.lj.MaxSize = lim, lim.maxSizeMB
	l.pruneDue = true
}

// sharedLogs maps each trek.log path, made absolute, to its sharedLog.
var sharedLogs = struct {
	mu sync.Mutex
	m  map[string]*sharedLog
}{m: map[string]*sharedLog{}}

// openFileLog prepares trek.log at path; lumberjack opens the file at the
// first write. A read-only fileLog creates nothing and refuses writes.
func openFileLog(path string, maxSizeMB, maxBackups int, readOnly bool) (*fileLog, error) {
	dir := filepath.Dir(path)
	if !readOnly {
		// A folder there would pass Open and fail every event's line.
		if info, err := os.Stat(path); err == nil && info.IsDir() {
			return nil, fmt.Errorf("%w: LogPath %s is a folder, not trek.log", ErrBadConfig, quoted(path))
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("%w: creating log folder %q: %w", ErrLogWrite, dir, err)
		}
	}
	key, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: log path %q: %w", ErrLogWrite, path, err)
	}
	sharedLogs.mu.Lock()
	defer sharedLogs.mu.Unlock()
	want := logLimits{maxSizeMB, maxBackups}
	sl := sharedLogs.m[key]
	if sl == nil {
		// lumberjack keeps every rotated file (MaxBackups 0): see
		// pruneBackups. It is given the absolute path, so that lines
		// written after the process changed its working directory still
		// go to this trek.log.
		sl = &sharedLog{lj: &lumberjack.Logger{Filename: key, MaxSize: maxSizeMB}, limits: want, wants: map[logLimits]int{}}
		sharedLogs.m[key] = sl
	}
	fl := &fileLog{sharedLog: sl, path: path, limits: want, readOnly: readOnly}
	if readOnly {
		return fl, nil // it never writes: its limits are nobody's business
	}
	// While Auditors opened with other limits write to the path, theirs
	// apply, and the new ones from when the last of them closes (see
	// Close), as when a host reloads its settings by opening the new
	// Auditor before closing the old.
	if sl.wants[sl.limits] == 0 {
		sl.setLimits(want)
	}
	sl.wants[want]++
	return fl, nil
}

// endsMidLine reports whether the file at path ends within a line: left so
// by a process that stopped mid-write (a full disk, a crash, a host's line
// it never finished). The first line written then begins with a newline,
// or it would continue that line, where no reader looks for it. known is
// false where that cannot be told (a file it cannot read, a named pipe,
// whose reader may be in the middle of a line), and where the file at
// path is not want, when want is given: the caller then keeps what it
// knew.
func endsMidLine(path string, want os.FileInfo) (mid, known bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, want == nil
	}
	if err != nil {
		return false, false
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || want != nil && !os.SameFile(info, want) {
		return false, false
	}
	if info.Size() == 0 {
		return false, true
	}
	var last [1]byte
	if _, err = f.ReadAt(last[:], info.Size()-1); err != nil {
		return false, false
	}
	return last[0] != '\n', true
}

// learnMidLine sets midLine from the file the library's next lines go to,
// where that can be told, under mu before they are written. It runs where
// that file may not be the one the library wrote to last, being about to
// be opened (at the first write, after trek.log was moved away or
// deleted, after a rotation or a failed write): a host's text left
// unfinished in the old file then puts no empty line at the top of the
// new one, and a text left by another process, or cut short by a full
// disk, is still ended. And it runs while a host's text is unfinished:
// trek.log emptied in place since (logrotate's copytruncate) needs no
// newline at its start. The file open then is asked only if it is still
// the one at the path, so that a move the folder did not show never
// makes the library's line continue the host's text.
func (l *sharedLog) learnMidLine() {
	if mid, known := endsMidLine(l.lj.Filename, l.seen); known {
		l.midLine = mid
		l.hostMid = l.hostMid && mid
	}
}

// startLine ends, under mu, the line trek.log ends within before the next
// text, asking the file first where that may have changed (see
// learnMidLine): any line before the library's, and before the host's
// (host) any but the host's own, which its next write continues.
func (l *sharedLog) startLine(host bool) error {
	ends := func() bool { return l.midLine && !(host && l.hostMid) }
	if l.seen == nil || ends() {
		l.learnMidLine()
	}
	if !ends() {
		return nil
	}
	return l.endLine()
}

// endLine ends the line trek.log ends within, under mu. Where the newline
// would itself rotate trek.log (the text before it filled the file to the
// byte), it would begin the next file with an empty line; trek.log is
// rotated instead, which ends the text's file as the newline would have:
// a rotation made here, not one predicted of lumberjack, so that the next
// text never continues the line whatever lumberjack counted.
func (l *sharedLog) endLine() error {
	var err error
	if l.full() {
		err = l.rotate()
	} else {
		_, err = l.write([]byte{'\n'})
	}
	if err == nil {
		l.midLine, l.hostMid = false, false
	}
	return err
}

// Write appends p to trek.log as it is; it is what LogWriter returns.
func (l *fileLog) Write(p []byte) (int, error) {
	if l.readOnly {
		return 0, fmt.Errorf("%w: not writing to %s", ErrReadOnly, l.path)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, fmt.Errorf("%w: not writing to %s", ErrClosed, l.path)
	}
	if len(p) == 0 {
		return 0, nil
	}
	l.reopenIfMoved()
	if err := l.startLine(true); err != nil {
		return 0, hostWriteError(err)
	}
	n, err := l.write(p)
	if n > 0 {
		l.midLine = p[n-1] != '\n'
		l.hostMid = l.midLine
	}
	return n, hostWriteError(err)
}

// hostWriteError is what a host's write to trek.log returns, through
// LogWriter or LogHandler: ErrReadOnly and ErrClosed as they are, any other
// failure (lumberjack's, the file system's) wrapped in ErrLogWrite.
func hostWriteError(err error) error {
	if err == nil || errors.Is(err, ErrReadOnly) || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLogWrite, err)
}

// writeLines writes whole lines, the library's own or LogHandler's, after
// a newline if a host's write left a line unfinished.
func (l *fileLog) writeLines(b []byte) error {
	if l.readOnly {
		return fmt.Errorf("%w: not writing to %s", ErrReadOnly, l.path)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%w: not writing to %s", ErrClosed, l.path)
	}
	l.reopenIfMoved()
	if err := l.startLine(false); err != nil {
		return err
	}
	n, err := l.write(b)
	if n > 0 && b[n-1] != '\n' {
		// Cut short (a full disk): the next line, the host's too, must
		// not continue it.
		l.midLine, l.hostMid = true, false
	}
	return err
}

// write writes b to trek.log through lumberjack, under mu, always at the
// file's end. lumberjack opens an existing file to append to it, but one
// it creates (at the first write, at a rotation) for plain writes at its
// own offset: were trek.log then emptied in place (logrotate's
// copytruncate, "> trek.log" to free the disk), the next line would land
// at the old offset, behind a run of NUL bytes that makes grep take the
// file for binary. So the file is made here before lumberjack opens it,
// and after a write that rotated it, closed, for lumberjack to open the
// new one again, to append; and the rotated files are pruned then (see
// pruneBackups).
//
// After a failed write, trek.log is reopened at the next: the descriptor
// that failed (a full disk, a file removed or replaced) may never work
// again. After one that opened the file, reopenIfMoved learns which file
// that is.
func (l *sharedLog) write(b []byte) (int, error) {
	if l.pruneDue {
		l.pruneDue = false
		removeBackups(l.backups(), l.limits.maxBackups)
	}
	before := l.seen
	if before == nil {
		var err error
		if before, err = l.createLog(); err != nil {
			return 0, err
		}
		l.size = before.Size()
	}
	// lumberjack rotates when the write would take the file past MaxSize
	// (to it, when it opens the file at this write). A named pipe or a
	// device in trek.log's place (a log shipper's, a link to /dev/stdout)
	// is never rotated: lumberjack, which counts what it wrote there,
	// would rename it away at the limit and write to a new regular file
	// that no one reads.
	regular := before.Mode().IsRegular()
	mayRotate := regular && l.size+int64(len(b)) >= int64(l.limits.maxSizeMB)<<20
	if mayRotate {
		l.waitForAFreeBackupName()
	}
	if !regular {
		l.lj.MaxSize = neverRotated
		defer func() { l.lj.MaxSize = l.limits.maxSizeMB }()
	}
	n, err := l.lj.Write(b)
	l.size += int64(n)
	if err != nil {
		l.lj.Close()
		l.seen = nil
		return n, err
	}
	if mayRotate {
		if cur, err := os.Stat(l.lj.Filename); err == nil && !os.SameFile(before, cur) {
			l.leave(before)
			return n, nil
		}
	}
	if l.seen == nil {
		l.seen, _ = os.Stat(l.lj.Filename)
		if l.seen != nil {
			l.size = l.seen.Size()
		}
	}
	return n, nil
}

// neverRotated is the MaxSize lumberjack writes to a trek.log that is not
// a regular file with: in megabytes, more than any write reaches.
const neverRotated = math.MaxInt32

// full reports whether trek.log has no room left for one more byte: by
// the count lumberjack rotates by while the file is open, and as
// lumberjack judges a file it opens. A file that is not a regular one is
// never full (see write). Runs under mu.
func (l *sharedLog) full() bool {
	limit := int64(l.limits.maxSizeMB) << 20
	if l.seen != nil {
		return l.seen.Mode().IsRegular() && l.size+1 > limit
	}
	st, err := os.Stat(l.lj.Filename)
	return err == nil && st.Mode().IsRegular() && st.Size()+1 >= limit
}

// rotate rotates trek.log now, under mu, with the care write gives a
// rotation lumberjack makes within a write: a free name for the rotated
// file, the new trek.log reopened to append, the rotated files pruned.
func (l *sharedLog) rotate() error {
	rotated := l.seen
	if rotated == nil {
		rotated, _ = os.Stat(l.lj.Filename)
	}
	l.waitForAFreeBackupName()
	err := l.lj.Rotate()
	if err != nil {
		rotated = nil
	}
	l.leave(rotated)
	return err
}

// leave closes lumberjack's file and forgets it, under mu, so that the
// next write opens trek.log again, to append; where old, the file that was
// trek.log, has become a rotated one, the rotated files are pruned.
func (l *sharedLog) leave(old os.FileInfo) {
	l.lj.Close()
	l.seen = nil
	if old != nil {
		l.pruneBackups(old)
	}
}

// createLog makes trek.log (and its folder) if it is missing, as
// lumberjack would, and returns what it is: lumberjack then opens it to
// append. It opens without waiting, and what it cannot open so is not
// handed to lumberjack, whose open would wait: a named pipe with no
// reader (a log shipper that is restarting) would hold every write of the
// process until one came.
func (l *sharedLog) createLog() (os.FileInfo, error) {
	path := l.lj.Filename
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|openNonblock, 0o600)
	if errors.Is(err, fs.ErrNotExist) && os.MkdirAll(filepath.Dir(path), 0o750) == nil {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|openNonblock, 0o600)
	}
	if errors.Is(err, errNoReader) {
		return nil, fmt.Errorf("%s is a named pipe that no one reads", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// Close ends this Auditor's writes, through LogWriter too, and closes the
// file when no other Auditor of the process writes to it.
func (l *fileLog) Close() error {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	l.mu.Unlock()
	if already {
		return nil
	}
	if l.readOnly {
		return nil
	}
	sharedLogs.mu.Lock()
	defer sharedLogs.mu.Unlock()
	if l.wants[l.limits]--; l.wants[l.limits] == 0 {
		delete(l.wants, l.limits)
	}
	if l.writers() > 0 {
		// The last Auditor opened with the running limits is gone: those
		// still open were opened with others, which apply from now on.
		if l.wants[l.running()] == 0 {
			for want := range l.wants {
				l.setLimits(want)
				break
			}
		}
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = nil
	return l.lj.Close()
}

// writeEvents writes the lines of a committed batch with as few writes as
// the size limit allows.
func (l *fileLog) writeEvents(batch []*pending, loc *time.Location, debug bool) error {
	buf := l.buf[:0]
	var err error
	// split writes what buf held before start, the lines just appended
	// having taken it past the limit, and keeps those lines for the next.
	split := func(start int) {
		if len(buf) > maxLogWrite && start > 0 {
			if werr := l.writeLines(buf[:start]); werr != nil && err == nil {
				err = werr
			}
			buf = append(buf[:0], buf[start:]...)
		}
	}
	for _, p := range batch {
		start := len(buf)
		buf = appendInfoLine(buf, p, loc)
		if debug {
			buf = appendDebugLine(buf, p, loc)
		}
		split(start)
	}
	if n := len(batch); n > 0 && batch[n-1].mac != "" && l.anchors != nil {
		start := len(buf)
		buf = appendAnchorLine(buf, batch[n-1], loc, l.anchors)
		split(start)
	}
	if len(buf) > 0 {
		if werr := l.writeLines(buf); werr != nil && err == nil {
			err = werr
		}
	}
	if cap(buf) <= 4*maxLogWrite {
		l.buf = buf[:0]
	}
	return err
}

// reopenIfMoved closes lumberjack's file when trek.log is no longer the
// file it has open (deleted, moved away, its folder replaced), so that the
// next write reopens the path, or fails and says so, rather than writing
// lines into a file nobody can read.
//
// It runs under mu before every write, the host's too: a host line written
// while trek.log is gone would be lost as surely as an event's.
//
// It looks at trek.log's folder on every write and at trek.log itself only
// when the folder has changed: removing, renaming or creating an entry
// changes the folder's modification time. Asking trek.log for its own
// times on every batch would cost a durable commit far more than the stat:
// on Linux 6.13 and later a file whose times have been read gets a
// fine-grained time on its next write, which dirties its inode after
// every batch, and each fsync of the database would wait for that inode's
// write too (measured: a quarter slower per event at synchronous=FULL). A
// change made just after a look may leave the folder's time as it was
// where timestamps are coarse (older kernels, FAT), so the folder is
// trusted only once its time is older than their granularity was when it
// was looked at.
func (l *sharedLog) reopenIfMoved() {
	if l.seen == nil {
		return
	}
	path := l.lj.Filename
	if l.seenDir.unchanged(filepath.Dir(path)) {
		return
	}
	if cur, err := os.Stat(path); err != nil || !os.SameFile(l.seen, cur) {
		// Rotated by a write that did not look (another process wrote
		// to trek.log meanwhile, so the size was off), or moved away.
		l.leave(l.seen)
	}
}

// waitForAFreeBackupName waits, under mu before a write that may rotate
// trek.log, until no rotated file is named for the current millisecond,
// for at most 100 of them. lumberjack names the file it rotates by the
// millisecond and renames over one of that name, whose lines would be lost:
// two rotations within a millisecond (a small LogMaxSizeMB and a burst of
// lines), or a rotation at a millisecond that a clock set back has
// already named.
func (l *sharedLog) waitForAFreeBackupName() {
	dir, prefix, ext := rotatedNaming(l.lj.Filename)
	for range 100 {
		name := filepath.Join(dir, prefix+time.Now().UTC().Format(rotatedTimeLayout)+ext)
		if _, err := os.Lstat(name); err != nil {
			return // free, or a name lumberjack cannot use either, which it reports
		}
		time.Sleep(time.Millisecond)
	}
}

// pruneBackups runs under mu when trek.log has been rotated, rotated being
// the file that was trek.log: it keeps the newest limits.maxBackups
// rotated files and removes the others. (Not rotated but moved away by
// another tool, it changes nothing.) lumberjack would tell the newest by
// the time in their names, the wall clock's at each rotation: after the
// clock is set back (NTP correcting a clock that ran ahead, a VM restored
// from a snapshot), the file rotated last would have the oldest name and
// be removed first, and with it the newest lines and chain heads. Here
// the newest are told by modification time, and the file just rotated,
// when the clock put its time before another's, is given a time just past
// theirs: the order is that of the rotations, whatever the clock did. It
// runs at the write that rotated, so a restart cannot come between.
func (l *sharedLog) pruneBackups(rotated os.FileInfo) {
	var others []backup
	var last *backup
	for _, b := range l.backups() {
		if os.SameFile(b.info, rotated) {
			last = &b
		} else {
			others = append(others, b)
		}
	}
	if last == nil {
		return
	}
	if len(others) > 0 && !last.info.ModTime().After(others[0].info.ModTime()) {
		os.Chtimes(filepath.Join(last.dir, last.name), time.Time{}, others[0].info.ModTime().Add(time.Millisecond))
	}
	removeBackups(others, l.limits.maxBackups-1)
}

// removeBackups removes the rotated files of bs, newest first, past the
// first keep.
func removeBackups(bs []backup, keep int) {
	for _, b := range bs[min(len(bs), keep):] {
		os.Remove(filepath.Join(b.dir, b.name))
	}
}

// backup is one of trek.log's rotated files.
type backup struct {
	dir, name string
	info      os.FileInfo
}

// backups lists trek.log's rotated files, the newest first: by
// modification time, which pruneBackups keeps in the order of the
// rotations whatever the clock did, then by name. Files it cannot read
// are left out, and so never removed.
func (l *sharedLog) backups() []backup {
	dir, prefix, ext := rotatedNaming(l.lj.Filename)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var bs []backup
	for _, e := range entries {
		if !e.Type().IsRegular() || !isRotatedName(e.Name(), prefix, ext) {
			continue
		}
		if info, err := e.Info(); err == nil {
			bs = append(bs, backup{dir, e.Name(), info})
		}
	}
	slices.SortFunc(bs, func(a, b backup) int {
		return cmp.Or(b.info.ModTime().Compare(a.info.ModTime()), strings.Compare(b.name, a.name))
	})
	return bs
}

// appendInfoLine appends TREK's line:
//
//	[INFO] 2026-04-20T10:11:53 alice@example.com created trip "Lisbon" ip=203.0.113.9
func appendInfoLine(b []byte, p *pending, loc *time.Location) []byte {
	b = append(b, "[INFO] "...)
	b = p.createdAt.In(loc).AppendFormat(b, logTimeLayout)
	b = append(b, ' ')
	switch {
	case p.email != "":
		b = appendActor(b, p.email)
	case p.username != "":
		b = appendActor(b, p.username)
	case p.userID != 0:
		b = append(b, "user#"...)
		b = strconv.AppendInt(b, p.userID, 10)
	default:
		b = append(b, "anonymous"...)
	}
	b = append(b, ' ')
	b = append(b, p.label...)
	if p.subject != "" {
		b = append(b, ' ')
		b = appendQuoted(b, p.subject)
	}
	b = append(b, " ip="...)
	if p.ip == "" {
		b = append(b, '-')
	} else {
		b = appendWord(b, p.ip)
	}
	return append(b, '\n')
}

// anchorTag marks the line that records the chain's head after each
// batch. Verify reads these lines back (rotated files included) to find
// rows cut off the end of the table.
const anchorTag = " AUDIT-CHAIN head "

// anchorTagAt is where anchorTag stands in an anchor line: right after
// "[INFO] " and the time.
const anchorTagAt = len("[INFO] ") + len(logTimeLayout)

// appendAnchorLine appends the chain head after a committed batch, with the
// tag that makes it the library's (see anchorSigner):
//
//	[INFO] 2026-04-20T10:11:53 AUDIT-CHAIN head id=42 seq=40 mac=3f0c... tag=9a1e...
func appendAnchorLine(b []byte, last *pending, loc *time.Location, s *anchorSigner) []byte {
	b = append(b, "[INFO] "...)
	b = last.createdAt.In(loc).AppendFormat(b, logTimeLayout)
	b = append(b, anchorTag...)
	b = append(b, "id="...)
	b = strconv.AppendInt(b, last.id, 10)
	b = append(b, " seq="...)
	b = strconv.AppendInt(b, last.seq, 10)
	b = append(b, " mac="...)
	mac := len(b)
	b = append(b, last.mac...)
	b = append(b, " tag="...)
	b = s.appendTag(b, last.id, last.seq, b[mac:mac+len(last.mac)])
	return append(b, '\n')
}

// isAnchorShaped reports whether line begins as appendAnchorLine begins
// one: the tag at its place, right after the time. Event lines cannot (their
// first word is an actor, never followed by "head"), nor LogHandler's
// (it quotes a message beginning with "AUDIT"): only the library, or the
// host writing raw through LogWriter, writes such a line.
func isAnchorShaped(line []byte) bool {
	return len(line) >= anchorTagAt && bytes.HasPrefix(line, []byte("[INFO] ")) &&
		bytes.HasPrefix(line[anchorTagAt:], []byte(anchorTag))
}

// parseAnchorLine reads a chain-head line as appendAnchorLine writes it,
// and nothing else: the tag at its place after the time, then exactly the
// four fields in order. ok is false for any other line.
func parseAnchorLine(line []byte) (id, seq int64, macHex, tagHex []byte, ok bool) {
	if !isAnchorShaped(line) {
		return 0, 0, nil, nil, false
	}
	fields := bytes.Split(line[anchorTagAt+len(anchorTag):], []byte(" "))
	if len(fields) != 4 {
		return 0, 0, nil, nil, false
	}
	field := func(i int, name string) []byte {
		v, ok := bytes.CutPrefix(fields[i], []byte(name))
		if !ok {
			return nil
		}
		return v
	}
	num := func(v []byte) int64 {
		// Digits only, as strconv.AppendInt writes a positive int64
		// (up to 19 of them).
		if len(v) == 0 || v[0] == '0' || !isDigits(string(v)) {
			return 0
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	id, seq = num(field(0, "id=")), num(field(1, "seq="))
	macHex, tagHex = field(2, "mac="), field(3, "tag=")
	if id <= 0 || seq <= 0 || len(macHex) != 2*sha256.Size || len(tagHex) != 2*anchorTagLen ||
		!lowerHex(macHex) || !lowerHex(tagHex) {
		return 0, 0, nil, nil, false
	}
	return id, seq, macHex, tagHex, true
}

// lowerHex reports whether b is hex digits as the writer spells them.
func lowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// appendDebugLine appends the LOG_LEVEL=debug line:
//
//	[DEBUG] 2026-04-20T10:11:53 AUDIT trip.create userId=7 {"title":"Lisbon"}
func appendDebugLine(b []byte, p *pending, loc *time.Location) []byte {
	b = append(b, "[DEBUG] "...)
	b = p.createdAt.In(loc).AppendFormat(b, logTimeLayout)
	b = append(b, " AUDIT "...)
	b = appendWord(b, string(p.action))
	b = append(b, " userId="...)
	if p.userID == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, p.userID, 10)
	}
	b = append(b, ' ')
	if p.details == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONSafe(b, p.details)
	}
	return append(b, '\n')
}

// plainRune reports whether r may stand in a log line as it is: visible
// (visibleRune), not a space, '=', a quote or a backslash. Everything else
// (line breaks, other control characters, ANSI escapes, U+2028/2029, bidi
// overrides, invalid UTF-8, letters that show as a blank) is escaped, and a
// word with '=' is quoted, so a field can neither break the line nor pass
// for another field (a username "ip=203.0.113.66" would otherwise read as
// the line's ip=).
func plainRune(r rune) bool {
	return r != utf8.RuneError && r != ' ' && r != '=' && r != '"' && r != '\\' && visibleRune(r)
}

// visibleRune reports whether r is printable and shows as something:
// not one of the letters and marks Unicode counts as printable that show
// as nothing or as a blank (the Hangul fillers U+3164 and U+115F, the
// combining grapheme joiner, the variation selectors, the blank Braille
// pattern). Bare, "alice\u3164deleted" would read as two words.
func visibleRune(r rune) bool {
	return unicode.IsPrint(r) && r != '\u2800' &&
		!unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && !unicode.Is(unicode.Variation_Selector, r)
}

// appendActor writes an actor's email or username, quoted where it would
// read as the line's own words for an actor it cannot name: "anonymous",
// or "user#7" for a user known only by id.
func appendActor(b []byte, s string) []byte {
	if s == "anonymous" || strings.HasPrefix(s, "user#") {
		return appendQuoted(b, s)
	}
	return appendWord(b, s)
}

// appendWord writes s bare when every rune is plain, quoted otherwise.
func appendWord(b []byte, s string) []byte {
	for _, r := range s {
		if !plainRune(r) {
			return appendQuoted(b, s)
		}
	}
	if s == "" {
		return append(b, `""`...)
	}
	return append(b, s...)
}

// appendQuoted writes s as a Go-syntax quoted string: visible runes as
// they are, everything else escaped.
func appendQuoted(b []byte, s string) []byte {
	i := strings.IndexFunc(s, invisibleRune)
	if i < 0 {
		return strconv.AppendQuote(b, s)
	}
	// strconv writes those runes as they are: escaped here, between the
	// pieces it quotes.
	b = append(b, '"')
	for ; i >= 0; i = strings.IndexFunc(s, invisibleRune) {
		q := strconv.AppendQuote(nil, s[:i])
		b = append(b, q[1:len(q)-1]...)
		r, n := utf8.DecodeRuneInString(s[i:])
		if r < 0x10000 {
			b = fmt.Appendf(b, `\u%04x`, r)
		} else {
			b = fmt.Appendf(b, `\U%08x`, r)
		}
		s = s[i+n:]
	}
	q := strconv.AppendQuote(nil, s)
	return append(b, q[1:]...)
}

// invisibleRune: r is printable but not visible (see visibleRune).
func invisibleRune(r rune) bool { return unicode.IsPrint(r) && !visibleRune(r) }

// appendJSONSafe copies encoded JSON, escaping any rune that is not
// printable as \uXXXX. encoding/json already escapes control characters and
// U+2028/2029 but not DEL; this also covers DEL, bidi overrides and other
// format characters.
// Such runes only occur inside JSON strings, where \u escapes are valid.
func appendJSONSafe(b []byte, enc []byte) []byte {
	for i := 0; i < len(enc); {
		c := enc[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				b = appendUEscape(b, rune(c))
			} else {
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(enc[i:])
		if r != utf8.RuneError && visibleRune(r) {
			b = append(b, enc[i:i+n]...)
		} else if r == utf8.RuneError {
			b = append(b, `\ufffd`...)
		} else {
			b = appendUEscape(b, r)
		}
		i += n
	}
	return b
}

func appendUEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	if r > 0xFFFF {
		r1, r2 := utf16Pair(r)
		b = appendUEscape(b, r1)
		return appendUEscape(b, r2)
	}
	return append(b, '\\', 'u', hex[r>>12&0xF], hex[r>>8&0xF], hex[r>>4&0xF], hex[r&0xF])
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

// LogWriter returns trek.log's writer, so the host's other log lines share
// the one rotated file instead of a second writer fighting over rotation.
// Each Write should be whole lines; should one end within a line, the
// library ends that line before it writes its own, and the host's next
// Write continues it. Any other line trek.log ends within (the library's,
// cut short by a full disk; an earlier process's) is ended before the
// host's text, so that it never reads as the end of an audit line. After
// Close, writes fail with ErrClosed.
func (a *Auditor) LogWriter() io.Writer { return a.log }
