package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// TamperKind says what Verify found wrong with the chain.
type TamperKind string

// What a change made behind the library's back looks like to Verify.
const (
	// TamperChanged: a row's fields, its id (rows moved or swapped) or
	// its chain value were altered.
	TamperChanged TamperKind = "changed"
	// TamperMissing: rows were deleted, from the middle or from the end
	// (the end is found through the anchors in trek.log and the
	// acknowledgements' records of the chain's last row, also once new
	// rows have taken the lost rows' ids and chain positions, as after
	// travel.db is restored from a backup).
	TamperMissing TamperKind = "missing"
	// TamperInserted: a row with a chain value the key did not make.
	TamperInserted TamperKind = "inserted"
)

// Tamper is the first problem Verify found.
type Tamper struct {
	Kind   TamperKind `json:"kind"`   // changed, missing or inserted
	ID     int64      `json:"id"`     // the row where the chain breaks (0: past the end)
	Seq    int64      `json:"seq"`    // the chain position expected there
	Detail string     `json:"detail"` // what was found there, for a person to read
	// Acknowledgeable: the chain in the table adds up, and a record kept
	// outside it says otherwise: a chain head in trek.log, or an earlier
	// acknowledgement's record of the chain's last row, names a row that
	// is not there or differs. A restore from a backup looks like this, and
	// so do rows deleted from the end; Acknowledge records which it was.
	Acknowledgeable bool `json:"acknowledgeable"`
	// KeyMismatch: nothing the key made verifies. The first chained row
	// does not, nor does the chained row after it against the value stored
	// in the first (or, the chain's only row, no chain head in trek.log),
	// and no head in trek.log, acknowledgement or record of a pruning
	// verifies either. Changing a row leaves the next one verifying
	// against its stored value, so this is what a key other than the rows'
	// own looks like (or both rows rewritten with trek.log gone): check
	// the key before anything else.
	KeyMismatch bool `json:"key_mismatch,omitempty"`
}

// VerifyReport is the result of walking the chain.
type VerifyReport struct {
	// Intact: every chained row verified, and no chain head in trek.log
	// (but those acknowledged) nor any acknowledgement's record of the
	// chain's last row disagrees with the table.
	Intact bool `json:"intact"`
	// Checked counts the chained rows verified: in id order, up to the
	// first problem, where the walk stops (the rows after it are not
	// checked), or all of them.
	Checked int64 `json:"checked"`
	// Unchained counts rows without a chain value: rows TREK's own code
	// inserted. They are allowed, listed apart, and never count as links.
	// Like Checked, it counts up to the first problem.
	Unchained int64 `json:"unchained"`
	HeadID    int64 `json:"head_id"`  // the last chained row verified
	HeadSeq   int64 `json:"head_seq"` // its chain position
	Anchors   int   `json:"anchors"`  // chain heads read back from trek.log
	// RejectedAnchors counts lines that begin like chain heads but are not
	// one the key made: forged, damaged, written under another key, or
	// written before chain heads carried a tag. Verify ignores them, so
	// they protect nothing; more than zero is worth a look.
	RejectedAnchors int `json:"rejected_anchors"`
	// SkippedLogFiles counts entries beside trek.log named like it or its
	// rotated files that are not regular files (a folder, a pipe, a
	// device, a symbolic link). The library never makes one, a folder
	// holds no chain heads, and reading a pipe or a device could block
	// Verify for good, so they are not read; more than zero is worth a
	// look.
	SkippedLogFiles int `json:"skipped_log_files"`
	// ClearedUserIDs counts the actors whose chained rows have user_id
	// NULL while a user with their id exists. The chain covers actor_id,
	// not user_id, which TREK's foreign key clears when a user is deleted;
	// cleared by hand, it hides the rows from the admin list's user
	// filter. An account made after its events, or an id given again to
	// a new account once the user was deleted (TREK's users table does not
	// use AUTOINCREMENT), looks the same, so this is not tampering by
	// itself; more than zero is worth a look.
	ClearedUserIDs int `json:"cleared_user_ids"`
	// AcknowledgedAnchors counts the chain heads in trek.log that Verify
	// passed over because an acknowledgement lists them (Acknowledge):
	// heads of rows that a restore from a backup took away, say. Anchors
	// counts them too.
	AcknowledgedAnchors int `json:"acknowledged_anchors"`
	// Acknowledgements are the acknowledgements the key made, oldest
	// first, so that every report shows what was accepted, when and why.
	Acknowledgements []Acknowledgement `json:"acknowledgements,omitempty"`
	// RejectedAcknowledgements counts rows of audit_chain_acks whose tag
	// the key did not make: forged, damaged, or made under an earlier
	// key. They acknowledge nothing; more than zero is worth a look.
	RejectedAcknowledgements int `json:"rejected_acknowledgements"`
	// StartSeq is the chain position the walk started from: 1, or, where
	// Prune deleted the oldest rows, the first position it kept, as its
	// record (one of Prunings) says.
	StartSeq int64 `json:"start_seq"`
	// PrunedAnchors counts the chain heads in trek.log of positions
	// before StartSeq, whose rows Prune deleted: Verify passes over them.
	// Anchors counts them too.
	PrunedAnchors int `json:"pruned_anchors"`
	// Prunings are the records Prune left, with the key's tag, oldest
	// first: when rows were deleted, how many, and why.
	Prunings []Pruning `json:"prunings,omitempty"`
	// RejectedPrunings counts rows of audit_prunes whose tag the key did
	// not make: forged, damaged, or made under an earlier key. They
	// account for no deleted row; more than zero is worth a look.
	RejectedPrunings int     `json:"rejected_prunings"`
	Problem          *Tamper `json:"problem,omitempty"` // the first problem; nil when Intact
}

// ErrVerify means Verify could not check (database unreadable); it says
// nothing about whether the log was tampered with.
var ErrVerify = errors.New("audit: verify could not check the chain")

// Verify walks the whole chain, in id order, and checks every row the
// library wrote against the key, and the newest rows against the chain
// heads recorded in trek.log and its rotated files, less those an
// acknowledgement lists (see Acknowledge), and against each
// acknowledgement's record of the chain's last row. It stops at the first
// problem and reports it. Verify reads only; it is safe while TREK runs.
func (a *Auditor) Verify(ctx context.Context) (VerifyReport, error) {
	return a.VerifyProgress(ctx, nil)
}

// VerifyProgress is Verify with a callback, called now and then with the
// rows checked so far and the table's row count, for a progress bar.
func (a *Auditor) VerifyProgress(ctx context.Context, progress func(done, total int64)) (VerifyReport, error) {
	if err := a.closedFor("Verify"); err != nil {
		return VerifyReport{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	v, err := a.newVerifier(ctx, progress)
	if err != nil {
		return VerifyReport{}, safeError(a.whileClosing(fmt.Errorf("%w: %w", ErrVerify, err)))
	}
	defer v.close()
	rep, err := v.run(ctx)
	if err != nil {
		return rep, safeError(a.whileClosing(fmt.Errorf("%w: %w", ErrVerify, err)))
	}
	return rep, nil
}

// newVerifier reads what a walk of the chain checks against: the chain
// heads in trek.log and its rotated files, less those an acknowledgement
// lists. It reads trek.log first, then opens the one read transaction the
// walk and every other query of the database take: a head is written after
// its row's commit, so every head read is then of a row the transaction
// sees, and nothing committed meanwhile (an acknowledgement, a row deleted
// or audit_log swapped for a view) can make one part of the report
// disagree with another. The caller closes the verifier.
func (a *Auditor) newVerifier(ctx context.Context, progress func(done, total int64)) (_ *verifier, err error) {
	s, ok := a.store.(*sqliteStore)
	if !ok {
		return nil, errors.New("the store cannot be verified")
	}
	// After a restore the pool's connections may still read the old file,
	// and an acknowledgement would be written into it.
	if err := s.files.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	anchors, err := readAnchors(ctx, a.logPath, newAnchorSigner(s.chain.key))
	if err != nil {
		return nil, fmt.Errorf("reading anchors: %w", err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	v := &verifier{db: conn, chain: newChainer(s.chain.key), anchors: anchors, progress: progress}
	defer func() {
		if err != nil {
			v.close()
		}
	}()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	v.inTx = true
	// audit_log was the library's table when the store opened; it must
	// be one still, or the walk could read a view's rows for good.
	if what, err := auditLogIsNotOurs(ctx, conn); err != nil {
		return nil, err
	} else if what != "" {
		return nil, fmt.Errorf("audit_log is not a table Verify can walk (%s): the schema was changed by hand", what)
	}
	if v.acks, err = readAcks(ctx, conn, s.chain.key); err != nil {
		return nil, fmt.Errorf("reading acknowledgements: %w", err)
	}
	v.acknowledged = v.anchors.drop(v.acks.heads)
	if v.prunes, err = readPrunings(ctx, conn, s.chain.key); err != nil {
		return nil, fmt.Errorf("reading the records of prunings: %w", err)
	}
	for _, end := range v.acks.ends {
		if v.acks.superseded[end.ack] {
			continue
		}
		if v.ends == nil {
			v.ends = map[int64][]ackEnd{}
		}
		v.ends[end.seq] = append(v.ends[end.seq], end)
		if end.seq > v.maxEnd.seq {
			v.maxEnd = end
		}
	}
	if err := conn.QueryRowContext(ctx, usersTableQuery).Scan(&v.hasUsers); err != nil {
		return nil, err
	}
	return v, nil
}

// close ends the verifier's read transaction and gives its connection
// back to the pool.
func (v *verifier) close() {
	if v.inTx {
		endRead(v.db)
	}
	v.db.Close()
}

// auditLogIsNotOurs says what makes audit_log other than a table whose
// rows are stored, or "" if nothing does: a view or a virtual table can
// compute rows without end, a generated column a gigabyte a row, and an
// id that is not the row id (the table rebuilt with "id INTEGER PRIMARY
// KEY DESC", which SQLite keeps apart from it, in an index of its own)
// can hold NULL or text, which no row the library or TREK wrote has.
func auditLogIsNotOurs(ctx context.Context, db queryer) (string, error) {
	if what, err := notATable(ctx, db, "audit_log"); what != "" || err != nil {
		return what, err
	}
	hidden, err := queryStrings(ctx, db, `SELECT name FROM pragma_table_xinfo('audit_log') WHERE hidden <> 0 ORDER BY cid`)
	if err != nil {
		return "", err
	}
	if len(hidden) > 0 {
		return "generated or hidden columns " + schemaNames(hidden), nil
	}
	pk, err := queryStrings(ctx, db, `SELECT name FROM pragma_index_list('audit_log') WHERE origin = 'pk'`)
	if err != nil {
		return "", err
	}
	if len(pk) > 0 {
		return "an id that is not the row id (a primary key of its own)", nil
	}
	return "", nil
}

// chainRow is a row as Verify reads it.
type chainRow struct {
	chainFields
	userID sql.NullInt64
	mac    []byte // macBuf[:] or nil
	macBuf [32]byte
	// oddType: a value is stored as a type the library never writes
	// there (see storedAsWritten); the row verifies against nothing.
	oddType bool
	// scan and dest are scanChainRow's destinations, kept with the row so
	// that scanning a row allocates nothing of its own.
	scan struct {
		created, macHex                        sql.NullString
		resource, details, ip, username, email sql.NullString
		actorID, seq                           sql.NullInt64
		stored                                 bool // storedAsWritten
	}
	dest []any
}

// decodeMac decodes 64 hex digits into dst without allocating.
func decodeMac(dst *[32]byte, s string) bool {
	if len(s) != 64 {
		return false
	}
	bad := byte(0)
	for i := range dst {
		hi, lo := unhexTable[s[2*i]], unhexTable[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
}

// unhexTable maps an ASCII hex digit to its value, anything else to 0xff.
var unhexTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	for i, c := range "ABCDEF" {
		t[c] = byte(10 + i)
	}
	return t
}()

const chainRowCols = `id, CAST(created_at AS TEXT), user_id, COALESCE(action, ''), resource, details, ip, actor_username, actor_email,
	actor_id, chain_seq, chain_mac, ` + storedAsWritten

// storedAsWritten is whether the columns the admin list filters on, and
// actor_id and chain_seq, hold the type of value the library writes
// there. The chain covers a value's bytes, and database/sql reads a BLOB
// holding "7" or "user.login_failed" as the number or the text: cast to a
// BLOB, a value would still verify while the list's filters (user_id = ?,
// action = ?, ip = ?, resource = ?, the time window), which compare types
// too, no longer found its row, and a chain_seq so cast would no longer be
// found by its position. An actor_id is read as a number too, so a BLOB
// holding "1", or "+01", would pass for the actor the key chained. (The
// other columns read and are shown the same whatever their type.)
const storedAsWritten = `typeof(created_at) = 'text' AND typeof(action) = 'text'
	AND typeof(user_id) IN ('integer', 'null') AND typeof(resource) IN ('text', 'null') AND typeof(ip) IN ('text', 'null')
	AND typeof(actor_id) IN ('integer', 'null') AND typeof(chain_seq) IN ('integer', 'null')`

// scanChainRow scans the current row of sc, a *sql.Rows, into r and
// reports whether the row is chained. SQLite keeps text in an INTEGER
// column; should user_id, actor_id or chain_seq hold a value that is not
// an integer, the row is scanned again with those three as they are, so
// that no value stops the walk: a non-integer user_id or actor_id reads
// as NULL, a non-integer chain_seq as position 0, and the row verifies
// against nothing. The library never writes such a value: on a chained row
// it is tampering; an unchained row is counted as one.
func scanChainRow(sc interface{ Scan(...any) error }, r *chainRow) (chained bool, err error) {
	t := &r.scan
	if r.dest == nil {
		r.dest = []any{&r.id, &t.created, &r.userID, &r.action, &t.resource, &t.details, &t.ip, &t.username, &t.email,
			&t.actorID, &t.seq, &t.macHex, &t.stored}
	}
	odd := false
	if err := sc.Scan(r.dest...); err != nil {
		var user, actor, seq any
		raw := slices.Clone(r.dest)
		raw[2], raw[9], raw[10] = &user, &actor, &seq
		if sc.Scan(raw...) != nil {
			return false, err
		}
		var oddUser, oddActor, oddSeq bool
		r.userID, oddUser = asNullInt(user)
		t.actorID, oddActor = asNullInt(actor)
		if t.seq, oddSeq = asNullInt(seq); oddSeq {
			t.seq = sql.NullInt64{Valid: true}
		}
		odd = oddUser || oddActor || oddSeq
	}
	if !t.seq.Valid && !t.macHex.Valid {
		return false, nil
	}
	// The library stores a missing actor as NULL, never as 0, and every
	// value as the type it writes.
	odd = odd || (t.actorID.Valid && t.actorID.Int64 == 0)
	r.oddType = !t.stored
	odd = odd || r.oddType
	r.seq, r.createdAt, r.actorID = t.seq.Int64, t.created.String, t.actorID.Int64
	r.resource = nullStr{t.resource.String, t.resource.Valid}
	r.details = nullStr{t.details.String, t.details.Valid}
	r.ip = nullStr{t.ip.String, t.ip.Valid}
	r.username = nullStr{t.username.String, t.username.Valid}
	r.email = nullStr{t.email.String, t.email.Valid}
	r.mac = nil // a mangled chain value, or a non-integer column, verifies against nothing
	if !odd && decodeMac(&r.macBuf, t.macHex.String) {
		r.mac = r.macBuf[:]
	}
	return true, nil
}

// asNullInt reads a column scanned as it is: an integer, NULL, or (odd)
// anything else, which reads as NULL.
func asNullInt(v any) (n sql.NullInt64, odd bool) {
	switch x := v.(type) {
	case nil:
		return n, false
	case int64:
		return sql.NullInt64{Int64: x, Valid: true}, false
	}
	return n, true
}

// anchor is a chain head trek.log recorded: row id held chain position
// seq with chain value mac.
type anchor struct {
	seq, id int64
	mac     [sha256.Size]byte
}

// anchors are the chain heads read back from trek.log. Once read, list is
// sorted by chain position, without repeats: 48 bytes a head, so that a
// log archive of millions of them (--log on a copy kept for years) fits.
type anchors struct {
	list     []anchor
	rejected int   // lines that begin like anchors but are not one the key made
	skipped  int   // entries named like log files that are not regular files
	maxSeq   int64 // the furthest chain position recorded
	maxID    int64 // the row that held it
	// While reading: the heads in list, and the files read. A file read
	// again under another name (a hard link named like a rotated log, a
	// thousand of them) is passed over, and a head read again is not
	// kept twice, so that memory stays what the genuine heads take.
	seen  map[anchor]bool
	files []os.FileInfo
}

type verifier struct {
	db       *sql.Conn // in a read transaction (inTx) from newVerifier to close
	inTx     bool
	chain    *chainer
	anchors  anchors
	progress func(done, total int64)
	// acks are the acknowledgements read from the database; acknowledged
	// counts the chain heads they took out of anchors.
	acks         ackSet
	acknowledged int
	// prunes are the records of prunings read from the database.
	prunes pruneSet
	// ends are the chain's last rows as the acknowledgements recorded
	// them (those no later one supersedes), by chain position, each
	// checked as a head in trek.log is; maxEnd is the furthest.
	ends   map[int64][]ackEnd
	maxEnd ackEnd
	// headMac is the chain value of the last row the walk verified.
	headMac []byte
	// watchSeq, when above 0, is a chain position whose row the walk
	// notes in watched (Acknowledge: the last row when it was shown).
	watchSeq int64
	watched  *anchor
	// collect, when set (Acknowledge), gathers every record outside the
	// table that does not match it, rather than stopping at the first.
	collect *collected
	// hasUsers: TREK's users table exists. nullUser holds the actors of
	// chained rows whose user_id is NULL (see clearedUsers).
	hasUsers bool
	nullUser map[int64]bool
}

// verifies reports whether r is the genuine successor of a row whose chain
// value is prev, its user_id aside: that must be its actor_id or NULL.
func (v *verifier) verifies(prev []byte, r *chainRow) bool {
	if r.mac == nil {
		return false
	}
	return v.chain.matches(prev, &r.chainFields, r.mac) &&
		(!r.userID.Valid || (r.actorID != 0 && r.userID.Int64 == r.actorID))
}

// verifiesAt reports whether r verifies after prev at chain position seq
// rather than the one it holds: whether it is the row the key chained
// there, with only chain_seq changed since.
func (v *verifier) verifiesAt(prev []byte, r *chainRow, seq int64) bool {
	at := *r
	at.seq = seq
	return v.verifies(prev, &at)
}

// clearedUsers counts the actors noted by noteNullUser whose user still
// exists (see VerifyReport.ClearedUserIDs). The walk notes them, and the
// users are looked up once it is over, so that no query waits for a
// second connection while the walk holds one (a host's pool may have only
// two).
func (v *verifier) clearedUsers(ctx context.Context) (int, error) {
	n := 0
	for actor := range v.nullUser {
		var exists bool
		if err := v.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`, actor).Scan(&exists); err != nil {
			return 0, err
		}
		if exists {
			n++
		}
	}
	return n, nil
}

// noteNullUser notes r's actor if r, a chained row, has user_id NULL.
func (v *verifier) noteNullUser(r *chainRow) {
	if r.userID.Valid || r.actorID == 0 || !v.hasUsers {
		return
	}
	if v.nullUser == nil {
		v.nullUser = map[int64]bool{}
	}
	v.nullUser[r.actorID] = true
}

func (v *verifier) run(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	rep.Anchors, rep.RejectedAnchors, rep.SkippedLogFiles = len(v.anchors.list)+v.acknowledged, v.anchors.rejected, v.anchors.skipped
	rep.AcknowledgedAnchors, rep.Acknowledgements, rep.RejectedAcknowledgements = v.acknowledged, v.acks.list, v.acks.rejected
	rep.Prunings, rep.RejectedPrunings = v.prunes.list, v.prunes.rejected
	prevMac, prevSeq := zeroMac, int64(0)
	start, err := v.chainStart(ctx)
	if err != nil {
		return rep, err
	}
	rep.StartSeq = 1
	if start != nil {
		prevMac, prevSeq = start.mac, start.seq-1
		rep.StartSeq = start.seq
		rep.PrunedAnchors = v.anchors.dropBelow(start.seq)
	}
	var total int64
	if v.progress != nil {
		// The count the triggers keep; without it (its table dropped, its
		// row deleted: nothing the walk needs), the last id, as near.
		if err := v.db.QueryRowContext(ctx, rowCountQuery).Scan(&total); err != nil {
			if err := v.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM audit_log`).Scan(&total); err != nil {
				return rep, err
			}
		}
	}
	rows, err := v.db.QueryContext(ctx, `SELECT `+chainRowCols+` FROM audit_log ORDER BY id`)
	if err != nil {
		return rep, err
	}
	defer rows.Close()
	var prevBuf [32]byte
	var r chainRow
	var walked int64
	for rows.Next() {
		walked++
		if v.progress != nil && walked%65536 == 0 {
			v.progress(walked, total)
		}
		chained, err := scanChainRow(rows, &r)
		if err != nil {
			return rep, err
		}
		if !chained {
			rep.Unchained++
			continue
		}
		if r.seq != prevSeq+1 || !v.verifies(prevMac, &r) {
			rows.Close()
			t, err := v.classify(ctx, &r, rep.HeadID, prevSeq, prevMac)
			if err != nil {
				return rep, err
			}
			if start != nil && t.Seq == start.seq {
				t.Detail += fmt.Sprintf(" (the rows before position %d were deleted by pruning %d, which left row %d first)",
					start.seq, start.pruning.ID, start.pruning.FirstID)
			}
			rep.Problem = t
			return rep, nil
		}
		if t := v.checkAnchors(&r); t != nil {
			rows.Close()
			rep.Problem = t
			return rep, nil
		}
		if t := v.checkEnds(&r); t != nil && v.collect == nil {
			rows.Close()
			rep.Problem = t
			return rep, nil
		}
		v.noteNullUser(&r)
		if r.seq == v.watchSeq {
			v.watched = &anchor{seq: r.seq, id: r.id, mac: r.macBuf}
		}
		rep.Checked++
		prevSeq = r.seq
		prevBuf = r.macBuf
		prevMac = prevBuf[:]
		rep.HeadID, rep.HeadSeq = r.id, r.seq
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	if v.progress != nil {
		v.progress(walked, total)
	}
	rows.Close() // before clearedUsers' queries
	v.headMac = prevMac
	if rep.ClearedUserIDs, err = v.clearedUsers(ctx); err != nil {
		return rep, err
	}
	// Rows cut off the end leave anchors past the head.
	if v.collect != nil {
		for _, a := range v.anchors.list {
			if a.seq > rep.HeadSeq {
				v.collect.heads = append(v.collect.heads, a)
			}
		}
		for seq, ends := range v.ends {
			for _, end := range ends {
				if seq > rep.HeadSeq {
					v.collect.superseded = append(v.collect.superseded, end.ack)
				}
			}
		}
	} else if v.maxEnd.seq > rep.HeadSeq {
		rep.Problem = &Tamper{Kind: TamperMissing, ID: 0, Seq: rep.HeadSeq + 1, Acknowledgeable: true,
			Detail: fmt.Sprintf("acknowledgement %d recorded the chain's last row at chain position %d, the table ends at %d: rows were deleted since",
				v.maxEnd.ack.id, v.maxEnd.seq, rep.HeadSeq)}
		return rep, nil
	} else if v.anchors.maxSeq > rep.HeadSeq {
		rep.Problem = &Tamper{Kind: TamperMissing, ID: 0, Seq: rep.HeadSeq + 1, Acknowledgeable: true,
			Detail: fmt.Sprintf("trek.log recorded chain position %d (row %d), the table ends at %d: the newest rows were deleted",
				v.anchors.maxSeq, v.anchors.maxID, rep.HeadSeq)}
		return rep, nil
	}
	rep.Intact = true
	return rep, nil
}

// checkAnchors compares r, a row that follows the chain so far, with what
// trek.log recorded for its chain position. Rows deleted from the end, and
// the chain then continued from the row before them, leave a chain that
// adds up: only the anchors know that position once belonged to another
// row. That row may have had r's id too: AUTOINCREMENT gives the ids of
// rows deleted from the end again after a restore from a backup, which
// takes sqlite_sequence back with it. Either way rows are missing; a head
// of r's own id with another chain value could also be a chain rewritten
// by someone with the key, which the detail says.
func (v *verifier) checkAnchors(r *chainRow) *Tamper {
	list := v.anchors.list
	i, _ := slices.BinarySearchFunc(list, r.seq, func(a anchor, seq int64) int { return cmp.Compare(a.seq, seq) })
	for ; i < len(list) && list[i].seq == r.seq; i++ {
		a := &list[i]
		var t *Tamper
		switch {
		case a.id != r.id:
			t = &Tamper{Kind: TamperMissing, ID: r.id, Seq: r.seq, Acknowledgeable: true,
				Detail: fmt.Sprintf("trek.log recorded chain position %d as row %d, the table has row %d there: rows were deleted and the chain went on without them",
					r.seq, a.id, r.id)}
		case !bytes.Equal(a.mac[:], r.mac):
			t = &Tamper{Kind: TamperMissing, ID: r.id, Seq: r.seq, Acknowledgeable: true,
				Detail: fmt.Sprintf("trek.log recorded row %d at chain position %d with another chain value: rows were deleted "+
					"(or travel.db restored) and the chain went on under their ids, or the chain was rewritten with the key",
					a.id, a.seq)}
		}
		if t != nil && v.collect == nil {
			return t
		} else if t != nil {
			v.collect.heads = append(v.collect.heads, *a)
		}
	}
	return nil
}

// checkEnds compares r, a row that follows the chain so far, with what
// the acknowledgements recorded as the chain's last row at its position;
// in collect mode, it notes those that differ as superseded. A record that
// differs is read as a chain head in trek.log is (see checkAnchors): r is
// a row the key chained there, so the row recorded, of another id or of
// r's own with another chain value, is gone. Rows are missing, whichever
// of the two records names them: trek.log's heads of the lost rows, or,
// once those are acknowledged or rotated away, the acknowledgement's.
func (v *verifier) checkEnds(r *chainRow) *Tamper {
	for _, end := range v.ends[r.seq] {
		if end.id == r.id && bytes.Equal(end.mac[:], r.mac) {
			continue
		}
		if v.collect != nil {
			v.collect.superseded = append(v.collect.superseded, end.ack)
			continue
		}
		t := &Tamper{Kind: TamperMissing, ID: r.id, Seq: r.seq, Acknowledgeable: true}
		if end.id != r.id {
			t.Detail = fmt.Sprintf("acknowledgement %d recorded chain position %d as row %d, the table has row %d there: "+
				"rows were deleted and the chain went on without them, or audit_log was rebuilt", end.ack.id, end.seq, end.id, r.id)
		} else {
			t.Detail = fmt.Sprintf("acknowledgement %d recorded row %d at chain position %d with another chain value: rows were deleted "+
				"(or travel.db restored) and the chain went on under their ids, audit_log was rebuilt, or the chain was rewritten with the key",
				end.ack.id, end.id, end.seq)
		}
		return t
	}
	return nil
}

// classify names what is wrong at r, the first row that does not follow
// from (prevSeq, prevMac), the chain value of row prevID (prevSeq 0: no
// row yet). It looks at the rows around r once, so it costs nothing while
// the chain is intact.
//
// A row given another chain position still verifies at the position the
// walk expects, and is named itself. Rows out of id order (the row holding
// the position the walk expects stands after r) are sorted out by
// outOfOrder.
func (v *verifier) classify(ctx context.Context, r *chainRow, prevID, prevSeq int64, prevMac []byte) (*Tamper, error) {
	t := &Tamper{ID: r.id, Seq: prevSeq + 1}
	if r.seq != prevSeq+1 && v.verifiesAt(prevMac, r, prevSeq+1) {
		t.Kind, t.Detail = TamperChanged, fmt.Sprintf("the row claims chain position %d, but the key chained it at %d, "+
			"after the row before it: its chain position was changed", r.seq, prevSeq+1)
		return t, nil
	}
	pred, err := v.bySeq(ctx, r.seq-1)
	if err != nil {
		return nil, err
	}
	next, err := v.nextChained(ctx, r.id)
	if err != nil {
		return nil, err
	}
	expected, err := v.bySeq(ctx, prevSeq+1)
	if err != nil {
		return nil, err
	}
	predMac := zeroMac
	if pred != nil {
		predMac = pred.mac
	}
	// genuine: the key chained r after its own predecessor, wherever that
	// stands now.
	genuine := (r.seq == 1 || pred != nil) && v.verifies(predMac, r)
	if expected != nil && expected.id > r.id {
		o := rowsOutOfOrder{r: r, pred: pred, expected: expected, prevID: prevID, prevSeq: prevSeq, prevMac: prevMac, genuine: genuine}
		if t, err := v.outOfOrder(ctx, &o); t != nil || err != nil {
			return t, err
		}
	}
	switch {
	case genuine && r.seq > prevSeq+1 && expected == nil:
		t.Kind, t.Detail = TamperMissing, fmt.Sprintf("chain positions %d to %d are gone", prevSeq+1, r.seq-1)
	case next != nil && next.seq == prevSeq+1 && v.verifies(prevMac, next):
		t.Kind, t.Detail = TamperInserted, fmt.Sprintf("row %d stands between two consecutive chained rows; the key did not chain it", r.id)
	case r.seq == prevSeq+1 && r.oddType:
		t.Kind, t.Detail = TamperChanged, "a value in the row is stored as a type the library never writes there (a BLOB, say, "+
			"which the admin list's filters do not find): the row was altered"
	case r.seq == prevSeq+1:
		t.Kind, t.Detail = TamperChanged, "the row's fields or chain value were altered"
		if prevSeq == 0 {
			t.Detail += " (or the chain key is not the one the rows were written with)"
			// Nothing else the key made verifies either (a head in
			// trek.log or an acknowledgement would prove it right):
			nothing := v.nothingElseVerifies()
			switch {
			case !nothing:
			case next != nil && next.seq == r.seq+1 && !v.verifies(r.mac, next):
				// A row rewritten with its chain value makes the first two
				// fail as a wrong key does; a wrong key also fails every
				// pair after them.
				right, err := v.keyVerifiesAPairAfter(ctx, next)
				if err != nil {
					return nil, err
				}
				if right {
					t.Detail = "the row's fields or chain value were altered (the key verifies rows after it)"
					break
				}
				t.KeyMismatch = true
				t.Detail = fmt.Sprintf("neither this row nor the next chained row (row %d) verifies under the key, each against "+
					"the chain value stored before it: most likely the key is not the one the rows were written with", next.id)
			case next == nil && v.anchors.rejected > 0:
				t.KeyMismatch = true
				t.Detail = fmt.Sprintf("this row, the only chained one, does not verify under the key, nor does any of the %d chain heads "+
					"in trek.log: most likely the key is not the one the rows were written with", v.anchors.rejected)
			}
		}
	case r.seq > prevSeq+1 && pred == nil && expected == nil:
		t.Kind, t.Detail = TamperMissing, fmt.Sprintf("chain positions %d to %d are gone", prevSeq+1, r.seq-1)
	default:
		t.Kind, t.Detail = TamperChanged, fmt.Sprintf("the row claims chain position %d, which does not follow %d", r.seq, prevSeq)
	}
	if prevSeq == 0 && t.Kind == TamperMissing && v.prunes.rejected > 0 && v.nothingElseVerifies() {
		// The chain starts past position 1 and no record of a pruning
		// the key made accounts for it, nor does a head in trek.log or an
		// acknowledgement verify. A pair of chained rows does under the
		// rows' own key.
		right, err := v.keyVerifiesAPairAfter(ctx, r)
		if err != nil {
			return nil, err
		}
		if !right {
			t.KeyMismatch = true
			t.Detail = fmt.Sprintf("the chain starts at position %d, and neither the %d records of prunings nor any pair of "+
				"chained rows from row %d verifies under the key: most likely the key is not the one the rows were written with",
				r.seq, v.prunes.rejected, r.id)
		}
	}
	return t, nil
}

// nothingElseVerifies: no chain head in trek.log, no acknowledgement and
// no record of a pruning the key made was read, which would prove the key
// right.
func (v *verifier) nothingElseVerifies() bool {
	return len(v.anchors.list)+v.acknowledged == 0 && len(v.acks.list) == 0 && len(v.prunes.list) == 0
}

// chainStart is where the walk starts: nil at position 1, or where a
// pruning left the table's first chained row, after the chain value of
// the last row it deleted (see pruneSet.startFor).
func (v *verifier) chainStart(ctx context.Context) (*chainStart, error) {
	first, err := v.one(ctx, `SELECT `+chainRowCols+` FROM audit_log
		WHERE (chain_seq IS NOT NULL OR chain_mac IS NOT NULL) AND id >= ? ORDER BY id LIMIT 1`, math.MinInt64)
	if err != nil || first == nil {
		return nil, err
	}
	return v.prunes.startFor(first, v.verifies), nil
}

// rowsOutOfOrder is what classify knows when the row holding the position
// the walk expects (expected) stands after r, the row the walk met, which
// holds a later one: one of the two is not at the id the key chained it
// at, or is not a row the key chained there.
type rowsOutOfOrder struct {
	r, pred, expected *chainRow // pred: the row holding the position before r's, if any
	prevID, prevSeq   int64
	prevMac           []byte
	genuine           bool // r verifies after pred at its own id
}

// outOfOrder names the row of o that was moved, or the one that is not
// the key's, as far as the key and trek.log vouch for it, or returns nil
// for classify's other rules to name what is wrong at r. Only proof makes
// a row "given another id (it was row N)": the key chained its fields, at
// its position, after the row before it, as row N. A row holding a moved
// row's chain value but not its fields (moved and changed, or made up in
// place of a deleted row) is reported changed without being called that
// row, and a row that stands at the id and position the key chained it
// at, or trek.log recorded for it, is never called moved: the other one
// is the culprit.
func (v *verifier) outOfOrder(ctx context.Context, o *rowsOutOfOrder) (*Tamper, error) {
	r, e := o.r, o.expected
	// expected given a later id: its old id lies between the row the walk
	// verified last and r.
	lo := int64(1) // the library's ids begin at 1
	if o.prevSeq > 0 {
		lo = o.prevID + 1
	}
	id, found, n, whole := v.verifiesWithIDIn(ctx, o.prevMac, e, lo, r.id)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if found {
		return &Tamper{Kind: TamperChanged, ID: e.id, Seq: e.seq, Detail: fmt.Sprintf("the key chained the row at position %d "+
			"as row %d, after the row before it, yet it stands after row %d, which holds position %d: it was given another id "+
			"(it was row %d)", e.seq, id, r.id, r.seq, id)}, nil
	}
	tried := "at any id it could have had"
	if !whole {
		tried = fmt.Sprintf("at the %d ids nearest either end of those it could have had", n)
	}
	inPlace, anchored := v.anchoredIDs(r)
	if !o.genuine && !inPlace {
		if t, err := v.movedBack(ctx, o, anchored); t != nil || err != nil {
			return t, err
		}
	}
	switch {
	case o.genuine && r.seq == o.prevSeq+2:
		// e is r's predecessor, and r verifies after e's chain value: the
		// key made that value for e's position, but the fields beside it
		// are not the key's row.
		return &Tamper{Kind: TamperChanged, ID: e.id, Seq: e.seq, Detail: fmt.Sprintf("the row holds chain position %d and "+
			"the chain value the key gave the row there (row %d verifies after it), but not that row's fields %s: that row "+
			"was changed and moved to this id, or replaced by this one", e.seq, r.id, tried)}, nil
	case o.genuine || inPlace:
		how := "the key chained there"
		if !o.genuine {
			// A head covers the id, the position and the chain value, not
			// the fields: r may be changed too, and say so.
			how = "trek.log recorded there with this id and chain value (a head does not cover its fields, which cannot be checked: the row before it is not the key's)"
		}
		return &Tamper{Kind: TamperChanged, ID: e.id, Seq: e.seq, Detail: fmt.Sprintf("the row holds chain position %d, "+
			"yet stands after row %d, which %s (at position %d), and its fields do not verify after the row before it %s: "+
			"the row the key chained at position %d was changed and moved to this id, or deleted and replaced by this one",
			e.seq, r.id, how, r.seq, tried, e.seq)}, nil
	}
	return nil, nil
}

// movedBack names r as a row the key chained at a later id, given an
// earlier one by hand, if it verifies after its predecessor at a later id
// (those trek.log recorded at its position with its chain value first),
// or, as a row that may have been changed too, if trek.log recorded its
// position and chain value under another id. That its successor verifies
// after its chain value is no evidence: it says nothing of r's id. A copy
// beside the row it was copied from is not named, nor is anything when
// nothing vouches for r: it returns nil.
func (v *verifier) movedBack(ctx context.Context, o *rowsOutOfOrder, anchored []int64) (*Tamper, error) {
	r := o.r
	var id int64
	found := false
	if r.seq == 1 || o.pred != nil {
		predMac := zeroMac
		if o.pred != nil {
			predMac = o.pred.mac
		}
		for _, n := range anchored {
			if found = v.verifiesAs(predMac, r, n); found {
				id = n
				break
			}
		}
		if !found {
			// Its old id lies between r's and its successor's.
			succ, err := v.bySeq(ctx, r.seq+1)
			if err != nil {
				return nil, err
			}
			below := int64(math.MaxInt64)
			if r.id < math.MaxInt64-2*idsLooked {
				below = r.id + 1 + 2*idsLooked
			}
			if succ != nil && succ.id > r.id+1 {
				below = succ.id
			}
			id, found, _, _ = v.verifiesWithIDIn(ctx, predMac, r, r.id+1, below)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if !found && len(anchored) == 0 {
		return nil, nil
	}
	var another bool
	err := v.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE chain_seq = ? AND id <> ?)`, r.seq, r.id).Scan(&another)
	if err != nil || another {
		return nil, err
	}
	t := &Tamper{Kind: TamperChanged, ID: r.id, Seq: r.seq}
	if found {
		t.Detail = fmt.Sprintf("the key chained the row at position %d as row %d, after the row before it, yet it stands before row %d, "+
			"which holds position %d: it was given another id (it was row %d)", r.seq, id, o.expected.id, o.expected.seq, id)
	} else {
		t.Detail = fmt.Sprintf("trek.log recorded row %d at chain position %d with the chain value this row holds, but the row "+
			"does not verify as row %d after the row before it: row %d was moved to this id and changed (or the row before it was), "+
			"or replaced by this one", anchored[0], r.seq, anchored[0], anchored[0])
	}
	return t, nil
}

// anchoredIDs reads what trek.log recorded at r's chain position with r's
// chain value: whether it recorded r's own id there (r stands where the
// key put it), and which other ids.
func (v *verifier) anchoredIDs(r *chainRow) (inPlace bool, others []int64) {
	if r.mac == nil {
		return false, nil
	}
	list := v.anchors.list
	i, _ := slices.BinarySearchFunc(list, r.seq, func(a anchor, seq int64) int { return cmp.Compare(a.seq, seq) })
	for ; i < len(list) && list[i].seq == r.seq; i++ {
		switch a := &list[i]; {
		case !bytes.Equal(a.mac[:], r.mac):
		case a.id == r.id:
			inPlace = true
		default:
			others = append(others, a.id)
		}
	}
	return inPlace, others
}

// idsLooked bounds the ids at which classify tries a row it suspects was
// given another id: this many from each end of the range its old id lies
// in. Rows TREK inserts without a chain value stand between chained ones,
// so the range can be wide; trying 2,048 ids costs a few milliseconds,
// once a report.
const idsLooked = 1024

// idSearchBytes bounds what those tries hash, a few tenths of a second of
// HMAC: each try hashes the whole row again (its id comes first), and
// whoever can write to travel.db may plant a row of a gigabyte, which
// 2,048 tries would take an hour over. A large row gets fewer tries.
const idSearchBytes = 64 << 20

// verifiesWithIDIn reports an id in [lo, below) at which r, its id aside,
// verifies after prev, and how many ids it tried, and whether every id
// there was: at most idsLooked from each end are, the nearest below first,
// and fewer for a row so large that they would hash more than
// idSearchBytes. It stops when ctx is done.
func (v *verifier) verifiesWithIDIn(ctx context.Context, prev []byte, r *chainRow, lo, below int64) (id int64, found bool, tried uint64, whole bool) {
	if lo >= below {
		return 0, false, 0, true
	}
	n := uint64(below) - uint64(lo) // how many ids; below > lo, so it does not wrap
	size := uint64(len(r.createdAt)+len(r.action)+len(r.resource.s)+len(r.details.s)+len(r.ip.s)+len(r.username.s)+len(r.email.s)) + 128
	budget := max(idSearchBytes/size, 2) // tries, both ends together
	whole = n <= 2*idsLooked && n <= budget
	perEnd := min(n, idsLooked, max(budget/2, 1))
	if whole {
		perEnd = n
	}
	as := *r
	try := func(id int64) bool {
		tried++
		as.id = id
		return v.verifies(prev, &as)
	}
	for i := range int64(perEnd) {
		if i%256 == 255 && ctx.Err() != nil {
			return 0, false, tried, false
		}
		if id := below - 1 - i; try(id) {
			return id, true, tried, whole
		}
		if id := lo + i; !whole && try(id) {
			return id, true, tried, whole
		}
	}
	return 0, false, tried, whole
}

// verifiesAs reports whether r verifies after prev as row id: whether it
// is the row the key chained with that id, given another one since.
func (v *verifier) verifiesAs(prev []byte, r *chainRow, id int64) bool {
	as := *r
	as.id = id
	return v.verifies(prev, &as)
}

// keyPairsLooked bounds how many consecutive pairs of chained rows after
// the first two keyVerifiesAPairAfter tries.
const keyPairsLooked = 64

// keyVerifiesAPairAfter reports whether, among the next keyPairsLooked
// consecutive pairs of chained rows from r on, or the newest ones, as
// Open checks the key against them, one verifies: the second against the
// chain value stored in the first. Any does under the rows' own key,
// however many rows from the start on were rewritten; none does under
// another.
func (v *verifier) keyVerifiesAPairAfter(ctx context.Context, r *chainRow) (bool, error) {
	for range keyPairsLooked {
		next, err := v.nextChained(ctx, r.id)
		if err != nil {
			return false, err
		}
		if next == nil {
			break
		}
		if next.seq == r.seq+1 && v.verifies(r.mac, next) {
			return true, nil
		}
		r = next
	}
	tail, err := chainedTail(ctx, v.db)
	if err != nil {
		return false, err
	}
	verified, _ := tailVerifies(v.chain, tail)
	return verified, nil
}

func (v *verifier) nextChained(ctx context.Context, after int64) (*chainRow, error) {
	return v.one(ctx, `SELECT `+chainRowCols+` FROM audit_log WHERE id > ? AND chain_seq IS NOT NULL ORDER BY id LIMIT 1`, after)
}

func (v *verifier) bySeq(ctx context.Context, seq int64) (*chainRow, error) {
	if seq < 1 {
		return nil, nil
	}
	return v.one(ctx, `SELECT `+chainRowCols+` FROM audit_log WHERE chain_seq = ? ORDER BY id LIMIT 1`, seq)
}

// one reads the row q selects, nil if none. Through Rows, not Row, since
// scanChainRow may scan a row twice.
func (v *verifier) one(ctx context.Context, q string, arg int64) (*chainRow, error) {
	rows, err := v.db.QueryContext(ctx, q, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var r chainRow
	if _, err := scanChainRow(rows, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// maxAnchorScan bounds the lines readAnchorFile looks at. Longer lines
// (the host's own, through LogWriter or LogHandler) cannot be anchors and
// are skipped, so no line can stop Verify.
const maxAnchorScan = 4 << 10

// readAnchors collects the chain heads recorded in trek.log and the rotated
// files beside it (lumberjack names them trek-<time>.log), keeping those
// whose tag s confirms.
func readAnchors(ctx context.Context, logPath string, s *anchorSigner) (anchors, error) {
	var found anchors
	files, err := logFiles(logPath)
	if err != nil {
		return found, err
	}
	for _, f := range files {
		if err := found.readFile(ctx, f, s); err != nil {
			return found, err
		}
	}
	// The same head read twice (a file copied beside its original)
	// counts once: add kept it out.
	slices.SortFunc(found.list, compareAnchors)
	found.list = slices.Clip(found.list)
	found.seen, found.files = nil, nil
	return found, nil
}

// compareAnchors orders chain heads by position, then row, then value.
func compareAnchors(a, b anchor) int {
	return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.id, b.id), bytes.Compare(a.mac[:], b.mac[:]))
}

// logFiles lists trek.log, if it is there, then its rotated files beside
// it (lumberjack names them trek-<time>.log), newest first. Entries so
// named that are not regular files, folders included, are listed too:
// readFile counts them as skipped rather than read them, so that a folder
// in trek.log's place shows in the report instead of passing for a log
// without chain heads.
func logFiles(logPath string) ([]string, error) {
	base := filepath.Base(logPath)
	dir, prefix, ext := rotatedNaming(logPath)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files, rotated []string
	for _, e := range entries {
		switch name := e.Name(); {
		case name == base:
			files = append(files, filepath.Join(dir, name))
		case isRotatedName(name, prefix, ext):
			rotated = append(rotated, filepath.Join(dir, name))
		}
	}
	slices.Sort(rotated) // the time in the name sorts as the time does
	slices.Reverse(rotated)
	return append(files, rotated...), nil
}

// rotatedNaming is how lumberjack names the rotated files of the log at
// logPath: in its folder, prefix, the UTC time of the rotation
// (rotatedTimeLayout), ext.
func rotatedNaming(logPath string) (dir, prefix, ext string) {
	dir, base := filepath.Split(logPath)
	ext = filepath.Ext(base)
	return filepath.Clean(dir + "."), strings.TrimSuffix(base, ext) + "-", ext
}

// rotatedTimeLayout is the time lumberjack puts in a rotated file's name.
const rotatedTimeLayout = "2006-01-02T15-04-05.000"

// isRotatedName reports whether name is one lumberjack gives a rotated
// file of the log named prefix+ext less its "-": prefix, the time of the
// rotation, ext. Another log beside trek.log whose name merely begins
// like one (trek-staging.log, of a second instance) is not one: its heads
// are of another chain, and read as trek.log's they would report a chain
// that is whole as rewritten.
func isRotatedName(name, prefix, ext string) bool {
	stamp, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	if stamp, ok = strings.CutSuffix(stamp, ext); !ok || len(stamp) != len(rotatedTimeLayout) {
		return false
	}
	_, err := time.Parse(rotatedTimeLayout, stamp)
	return err == nil
}

// readFile reads the anchors of one log file, if it is a regular file, up
// to the size it had when opened: a pipe or a device (/dev/zero) named like
// a rotated log would otherwise keep Verify waiting or reading for good.
// Anything else (a folder, say) is counted as skipped.
// Non-blocking, opening a pipe swapped in after the look does not wait.
func (found *anchors) readFile(ctx context.Context, path string, s *anchorSigner) error {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated away meanwhile
	}
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		found.skipped++
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || !os.SameFile(info, st) {
		found.skipped++
		return nil
	}
	if slices.ContainsFunc(found.files, func(read os.FileInfo) bool { return os.SameFile(read, st) }) {
		return nil // read already, under another name
	}
	found.files = append(found.files, st)
	rd := bufio.NewReaderSize(io.LimitReader(f, st.Size()), maxAnchorScan)
	for n := 1; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := rd.ReadSlice('\n')
		for long := 1; errors.Is(err, bufio.ErrBufferFull); long++ { // too long to be an anchor
			if long%1024 == 0 { // every 4 MB of a line that does not end (a sparse file)
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			line = nil
			_, err = rd.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		found.add(bytes.TrimSuffix(line, []byte("\n")), s)
		if err != nil {
			return nil
		}
	}
}

// drop takes the chain heads in heads out of the list, and returns how
// many it took.
func (found *anchors) drop(heads map[ackedHead]bool) int {
	if len(heads) == 0 {
		return 0
	}
	kept := found.list[:0]
	found.maxSeq, found.maxID = 0, 0
	for _, a := range found.list {
		if heads[headOf(a)] {
			continue
		}
		kept = append(kept, a)
		if a.seq > found.maxSeq {
			found.maxSeq, found.maxID = a.seq, a.id
		}
	}
	n := len(found.list) - len(kept)
	found.list = kept
	return n
}

// add records line if it is an anchor the key made, and counts it as
// rejected if it only looks like one.
func (found *anchors) add(line []byte, s *anchorSigner) {
	id, seq, macHex, tagHex, ok := parseAnchorLine(line)
	if !ok {
		if isAnchorShaped(line) { // damaged, or without a tag (written before anchors had one)
			found.rejected++
		}
		return
	}
	a := anchor{seq: seq, id: id}
	if !decodeMac(&a.mac, string(macHex)) || !s.valid(id, seq, macHex, tagHex) {
		found.rejected++
		return
	}
	if found.seen[a] {
		return
	}
	if found.seen == nil {
		found.seen = map[anchor]bool{}
	}
	found.seen[a] = true
	found.list = append(found.list, a)
	if seq > found.maxSeq {
		found.maxSeq, found.maxID = seq, id
	}
}
