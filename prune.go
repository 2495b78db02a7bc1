package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// TREK never deletes audit rows, but an operator may have to: the rows
// hold IP addresses and email addresses, which a retention policy keeps
// for a while and no longer, and a busy instance's table grows for good.
// Deleted by hand, the oldest rows take the chain's first links with
// them, and Verify cannot tell that from rows deleted to hide what they
// recorded: it reports the chain's first positions gone, for good. Prune
// deletes them and records, in the same transaction, where the chain now
// starts and the chain value of the last row deleted, under a tag only the
// chain key makes. Verify then starts its walk there, and finds any other
// row deleted as before.

// ErrPrune means Prune refused, and deleted nothing. The message says
// why: no reason, or one that is not a line of text; a time that is not
// in the past; or the chain does not verify, so deleting rows could take
// the evidence with them. (Where it could not read the chain, the error
// is ErrVerify; where it could not write, ErrStore.)
var ErrPrune = errors.New("audit: prune")

// Pruning is the record Prune keeps of the rows it deleted, or, not yet
// written (ID 0), what PrunePlan found Prune would delete.
type Pruning struct {
	ID        int64  `json:"id"`
	CreatedAt string `json:"created_at"` // ISO 8601, UTC
	Reason    string `json:"reason"`     // as the operator gave it
	// Before is the time given: the rows recorded before it were deleted,
	// oldest first, up to the first one recorded at or after it (ISO 8601,
	// UTC).
	Before string `json:"before"`
	// Rows counts the rows deleted; Oldest and Newest are the oldest and
	// the newest one's created_at, as stored (to their first 64
	// characters: one written by hand can be longer).
	Rows   int64  `json:"rows"`
	Oldest string `json:"oldest,omitempty"`
	Newest string `json:"newest,omitempty"`
	// FirstID and FirstSeq are the oldest chained row kept, where the
	// chain starts since (0: the table held no chained row). Verify starts
	// its walk there when the table's first chained row stands at FirstSeq
	// and follows the chain value of the last row deleted, which the
	// record keeps.
	FirstID  int64  `json:"first_id"`
	FirstSeq int64  `json:"first_seq"`
	prevMac  string // hex: the chain value of the row at FirstSeq-1; "" at 1
	tag      string // hex
}

// pruneKeep is how many of the newest chained rows Prune always keeps:
// Open checks the key against a row and the one before it (see
// tailVerifies), which a chain of one row that does not start at
// position 1 would not have.
const pruneKeep = 2

// PrunePlan returns what Prune(ctx, before, ...) would delete now,
// unwritten (ID 0, no reason), or refuses as Prune would. Rows recorded
// meanwhile change nothing: only rows recorded before before are deleted.
// It only reads, so it works on an Auditor opened read-only.
func (a *Auditor) PrunePlan(ctx context.Context, before time.Time) (Pruning, error) {
	if err := a.closedFor("PrunePlan"); err != nil {
		return Pruning{}, err
	}
	p, err := a.prune(ctx, before, "", false)
	return p, safeError(a.whileClosing(err))
}

// Prune deletes the rows of audit_log recorded before before, for reason
// (who, and why: "alice: entries are kept for 13 months"), and records
// where the chain now starts, so that Verify finds the chain intact from
// there and no longer reports the deleted rows gone. The rows go oldest
// first, up to the first row recorded at or after before, and never the
// newest two chained rows. Rows and record go in one transaction: both,
// or neither.
//
// It first walks the chain as Verify does, and refuses with ErrPrune
// unless it is intact: deleting rows of a chain that does not verify
// could take the evidence with them. A chain head in trek.log of a row it
// deleted is passed over by Verify from then on (VerifyReport.PrunedAnchors).
// Where there is nothing recorded before before, it deletes nothing,
// writes nothing and returns the zero Pruning.
//
// It needs the chain key, as the record carries a tag only the key makes:
// whoever can write the database but lacks the key can neither make such
// a record nor move one; deleting one brings back the report of the rows
// it accounts for. On an Auditor opened read-only it answers ErrReadOnly.
// It is safe while TREK runs, but TREK's own writes wait for it while it
// deletes, up to their busy timeout (see the README for how long a
// deletion takes).
//
// The database file keeps its size: SQLite reuses the pages freed for
// new rows. VACUUM, with TREK stopped, gives them back to the disk.
func (a *Auditor) Prune(ctx context.Context, before time.Time, reason string) (_ Pruning, err error) {
	defer func() { err = safeError(a.whileClosing(err)) }()
	if err := a.closedFor("Prune"); err != nil {
		return Pruning{}, err
	}
	if a.readOnly {
		return Pruning{}, fmt.Errorf("%w: cannot prune", ErrReadOnly)
	}
	if err := checkReason(ErrPrune, reason); err != nil {
		return Pruning{}, err
	}
	return a.prune(ctx, before, reason, true)
}

// prune is Prune (write) and PrunePlan.
func (a *Auditor) prune(ctx context.Context, before time.Time, reason string, write bool) (Pruning, error) {
	// created_at holds seconds: a row of the second before falls in is
	// kept, since it may have been recorded after it.
	before = before.UTC().Truncate(time.Second)
	switch now := a.now(); {
	case before.IsZero():
		return Pruning{}, fmt.Errorf("%w: no time given: rows recorded before it are deleted", ErrPrune)
	case before.Year() < 1:
		return Pruning{}, fmt.Errorf("%w: %s is before the year 1, which created_at cannot hold", ErrPrune, before.Format(time.RFC3339))
	case before.After(now):
		return Pruning{}, fmt.Errorf("%w: %s is in the future: every row but the newest two would be deleted, "+
			"including those recorded from now on", ErrPrune, before.UTC().Format(time.RFC3339))
	}
	v, err := a.newVerifier(ctx, nil)
	if err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	rep, err := v.run(ctx)
	v.close()
	if err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if t := rep.Problem; t != nil {
		return Pruning{}, fmt.Errorf("%w: the chain does not verify, and deleting rows could take the evidence with them: "+
			"%s at row %d, chain position %d: %s. Find out why first (trek-audit verify; after a restore, trek-audit acknowledge)",
			ErrPrune, t.Kind, t.ID, t.Seq, t.Detail)
	}
	var stamp func() string
	if write {
		stamp = func() string { return a.now().UTC().Format("2006-01-02T15:04:05Z") }
	}
	return a.store.(*sqliteStore).pruneTx(ctx, before, reason, stamp)
}

// pruneTx is what Prune does in its transaction, under the write lock
// where it writes (stamp gives the record's time; nil: PrunePlan, which
// reads in a read transaction and writes nothing): it finds and checks the
// rows to delete (planPrune), deletes them and writes the record.
func (s *sqliteStore) pruneTx(ctx context.Context, before time.Time, reason string, stamp func() string) (Pruning, error) {
	write := stamp != nil
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	defer conn.Close()
	begin := "BEGIN"
	if write {
		begin = "BEGIN IMMEDIATE"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrStore, describe("beginning transaction", err))
	}
	committed := false
	defer func() {
		if !committed {
			endRead(conn)
		}
	}()
	p, cut, err := planPrune(ctx, conn, s.chain.key, before)
	if err != nil || p.Rows == 0 {
		return Pruning{}, err
	}
	if !write {
		return p, nil
	}
	p.Reason, p.CreatedAt = reason, stamp()
	res, err := conn.ExecContext(ctx, `DELETE FROM audit_log WHERE id < ?`, cut)
	if err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrStore, describe("deleting rows", err))
	}
	if n, err := res.RowsAffected(); err != nil || n != p.Rows {
		return Pruning{}, fmt.Errorf("%w: %w", ErrStore, errors.Join(err, fmt.Errorf("deleted %d rows, not the %d counted", n, p.Rows)))
	}
	if err := insertPruning(ctx, conn, newPruneSigner(s.chain.key), &p); err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrStore, describe("writing the record of the pruning", err))
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return Pruning{}, fmt.Errorf("%w: %w", ErrStore, describe("committing", err))
	}
	committed = true
	return p, nil
}

// planPrune finds, within conn's transaction, what pruning before deletes:
// the rows with an id below cut, which it returns. Under the key, it walks
// the chained rows it would delete again, from where Verify starts, and
// checks that the oldest chained row kept follows the newest one deleted:
// a row changed since the walk before (a row recorded after before given
// an older created_at, so that it would go too) refuses, and so does any
// other change to those rows. The walk before checked the rows kept; this
// one, under the write lock, the rows deleted, which no later walk sees.
func planPrune(ctx context.Context, conn *sql.Conn, key []byte, before time.Time) (p Pruning, cut int64, err error) {
	p.Before = before.Format("2006-01-02T15:04:05Z")
	// The first row recorded at or after before bounds the rows deleted;
	// with none, every row is, but the newest chained ones. It is looked
	// for from the oldest row on, in id order (+created_at keeps SQLite
	// off the time index, which would read every row kept instead): this
	// reads the rows the deletion goes over anyway, while it holds the
	// write lock.
	var first, keep sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT id FROM audit_log WHERE +created_at >= ? ORDER BY id LIMIT 1`,
		before.Format(sqliteTimeLayout)).Scan(&first)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, 0, readingRows(err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT MIN(id) FROM (SELECT id FROM audit_log
		WHERE chain_seq IS NOT NULL ORDER BY id DESC LIMIT ?)`, pruneKeep).Scan(&keep); err != nil {
		return p, 0, readingRows(err)
	}
	cut = int64(1) << 62 // above any id the library gives
	if first.Valid {
		cut = first.Int64
	}
	if keep.Valid && keep.Int64 < cut {
		cut = keep.Int64
	}
	var oldest, newest sql.NullString
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*),
		(SELECT CAST(substr(created_at, 1, @shown) AS TEXT) FROM audit_log WHERE id < @cut ORDER BY id LIMIT 1),
		(SELECT CAST(substr(created_at, 1, @shown) AS TEXT) FROM audit_log WHERE id < @cut ORDER BY id DESC LIMIT 1)
		FROM audit_log WHERE id < @cut`, sql.Named("cut", cut), sql.Named("shown", maxPruneTime)).Scan(&p.Rows, &oldest, &newest); err != nil {
		return p, 0, readingRows(err)
	}
	if p.Rows == 0 {
		return Pruning{}, 0, nil
	}
	p.Oldest, p.Newest = oldest.String, newest.String

	v := verifier{db: conn, chain: newChainer(key)}
	if v.prunes, err = readPrunings(ctx, conn, key); err != nil {
		return p, 0, fmt.Errorf("%w: %w", ErrStore, describe("reading the records of prunings", err))
	}
	start, err := v.chainStart(ctx)
	if err != nil {
		return p, 0, readingRows(err)
	}
	prevMac, prevSeq := zeroMac, int64(0)
	if start != nil {
		prevMac, prevSeq = start.mac, start.seq-1
	}
	changed := func(r *chainRow, what string) error {
		return fmt.Errorf("%w: the chain changed since it was checked: row %d (chain position %d) %s; run trek-audit verify",
			ErrPrune, r.id, r.seq, what)
	}
	rows, err := conn.QueryContext(ctx, `SELECT `+chainRowCols+` FROM audit_log WHERE id < ? ORDER BY id`, cut)
	if err != nil {
		return p, 0, readingRows(err)
	}
	defer rows.Close()
	var r chainRow
	var prevBuf [sha256.Size]byte
	for rows.Next() {
		chained, err := scanChainRow(rows, &r)
		if err != nil {
			return p, 0, readingRows(err)
		}
		if !chained {
			continue
		}
		if r.seq != prevSeq+1 || !v.verifies(prevMac, &r) {
			return p, 0, changed(&r, "no longer verifies after the row before it")
		}
		prevSeq, prevBuf = r.seq, r.macBuf
		prevMac = prevBuf[:]
	}
	if err := rows.Err(); err != nil {
		return p, 0, readingRows(err)
	}
	// Where the chain starts once the rows are gone, and the chain value
	// it follows from.
	firstKept, err := v.nextChained(ctx, cut-1)
	if err != nil {
		return p, 0, readingRows(err)
	}
	if firstKept == nil {
		return p, cut, nil
	}
	if firstKept.seq != prevSeq+1 || !v.verifies(prevMac, firstKept) {
		return p, 0, changed(firstKept, "no longer follows the rows it would delete")
	}
	p.FirstID, p.FirstSeq = firstKept.id, firstKept.seq
	if firstKept.seq > 1 {
		p.prevMac = hex.EncodeToString(prevMac)
	}
	return p, cut, nil
}

func readingRows(err error) error {
	return fmt.Errorf("%w: %w", ErrStore, describe("reading the rows to delete", err))
}

// insertPruning writes p within conn's transaction, giving it the next
// id itself: the tag covers the id, so a row copied or renumbered
// accounts for nothing.
func insertPruning(ctx context.Context, conn *sql.Conn, s pruneSigner, p *Pruning) error {
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM audit_prunes`).Scan(&p.ID); err != nil {
		return err
	}
	f := pruneFieldsOf(p)
	p.tag = hex.EncodeToString(s.tag(&f))
	_, err := conn.ExecContext(ctx, `INSERT INTO audit_prunes (id, created_at, reason, before_time, rows, oldest, newest,
		first_id, first_seq, prev_mac, tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.id, f.createdAt, f.reason, f.before, f.rows, f.oldest, f.newest, f.firstID, f.firstSeq, f.prevMac, p.tag)
	return err
}

// pruneSigner makes and checks the records' tags, under a key derived
// from the chain key for them alone: a chain head's or an
// acknowledgement's tag is never one.
type pruneSigner struct {
	key []byte
}

func newPruneSigner(chainKey []byte) pruneSigner {
	return pruneSigner{key: derivedKey(chainKey, "trek-audit pruning v1")}
}

// pruneFields are what a record's tag covers, as stored.
type pruneFields struct {
	id, rows, firstID, firstSeq                        int64
	createdAt, reason, before, oldest, newest, prevMac string
}

func pruneFieldsOf(p *Pruning) pruneFields {
	return pruneFields{p.ID, p.Rows, p.FirstID, p.FirstSeq, p.CreatedAt, p.Reason, p.Before, p.Oldest, p.Newest, p.prevMac}
}

// tag covers every field (see recordTag).
func (s pruneSigner) tag(f *pruneFields) []byte {
	return recordTag(s.key, []int64{f.id, f.rows, f.firstID, f.firstSeq}, []string{f.createdAt, f.reason, f.before, f.oldest, f.newest, f.prevMac})
}

// pruneSet is what readPrunings found: the records whose tag the key
// made, oldest first, and how many rows carried another.
type pruneSet struct {
	list     []Pruning
	prev     [][sha256.Size]byte // each record's prevMac, decoded
	rejected int
}

// maxPruneRow bounds the text of one record readPrunings reads: a reason
// of maxAckReason bytes and the rest with room to spare. A larger row is
// not one Prune wrote, and is rejected unread.
const maxPruneRow = 4 << 10

// maxPruneTime bounds the characters of the oldest and the newest row's
// created_at a record keeps: TREK's are 19, but a row written by hand can
// hold anything, which kept whole would make a record too large to read
// back (maxPruneRow).
const maxPruneTime = 64

// readPrunings reads audit_prunes. Every column is read as text, so that
// no value written behind the library's back stops Verify: a row that
// does not read back exactly as Prune wrote it is rejected.
func readPrunings(ctx context.Context, db queryer, key []byte) (pruneSet, error) {
	var set pruneSet
	if what, err := pruneTableIsNotOurs(ctx, db); err != nil {
		return set, err
	} else if what != "" {
		return set, fmt.Errorf("audit_prunes is not the library's table (%s): the schema was changed by hand", what)
	}
	rows, err := db.QueryContext(ctx, textsIfFits("audit_prunes", "id", "created_at", "reason", "before_time", "rows", "oldest", "newest",
		"first_id", "first_seq", "prev_mac", "tag"), sql.Named("max", maxPruneRow))
	if err != nil {
		return set, err
	}
	defer rows.Close()
	s := newPruneSigner(key)
	for rows.Next() {
		var fits sql.NullBool
		var f [11]sql.NullString
		dest := []any{&fits}
		for i := range f {
			dest = append(dest, &f[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return set, err
		}
		p, prev, ok := s.parse(f)
		if !ok || !fits.Bool {
			set.rejected++
			continue
		}
		set.list = append(set.list, p)
		set.prev = append(set.prev, prev)
	}
	return set, rows.Err()
}

// parse checks one row: ok is false unless the tag is the key's and every
// field reads back as Prune writes it.
func (s pruneSigner) parse(f [11]sql.NullString) (p Pruning, prev [sha256.Size]byte, ok bool) {
	for _, c := range f {
		if !c.Valid {
			return Pruning{}, prev, false
		}
	}
	var errs [5]error
	p.ID, errs[0] = storedInt(f[0].String)
	p.CreatedAt, p.Reason, p.Before = f[1].String, f[2].String, f[3].String
	p.Rows, errs[1] = storedInt(f[4].String)
	p.Oldest, p.Newest = f[5].String, f[6].String
	p.FirstID, errs[2] = storedInt(f[7].String)
	p.FirstSeq, errs[3] = storedInt(f[8].String)
	p.prevMac = f[9].String
	tag, err := hex.DecodeString(f[10].String)
	errs[4] = err
	signed := pruneFieldsOf(&p)
	if errors.Join(errs[:]...) != nil || hex.EncodeToString(tag) != f[10].String || !hmac.Equal(tag, s.tag(&signed)) {
		return Pruning{}, prev, false
	}
	// Prune writes the chain value of the row before the first kept
	// exactly when that row is not the chain's first.
	if (p.FirstSeq > 1) != (p.prevMac != "") || (p.prevMac != "" && !decodeMac(&prev, p.prevMac)) {
		return Pruning{}, prev, false
	}
	p.tag = f[10].String
	return p, prev, true
}

// chainStart is where a pruning left the chain's start: the walk begins
// after seq-1, whose chain value was mac.
type chainStart struct {
	pruning *Pruning
	seq     int64
	mac     []byte
}

// startFor returns the pruning that accounts for the chain positions
// before first, the table's first chained row: one that left first as
// the chain's first row, first verifying after the chain value it
// recorded (verifies). Failing that, the one that left the chain starting
// furthest on, not past first's position: positions before that were
// deleted by Prune; any from there to first were not, and the walk
// reports them gone. nil where none does (first is at position 1, or no
// pruning reaches it). Two prunings can name the same position, one for
// each history a restore left there: the row itself tells which is its.
func (set *pruneSet) startFor(first *chainRow, verifies func(prev []byte, r *chainRow) bool) *chainStart {
	var best *chainStart
	for i := range set.list {
		p := &set.list[i]
		if p.FirstSeq <= 1 || p.FirstSeq > first.seq {
			continue
		}
		c := &chainStart{pruning: p, seq: p.FirstSeq, mac: set.prev[i][:]}
		if p.FirstSeq == first.seq && verifies(c.mac, first) {
			return c
		}
		if best == nil || p.FirstSeq >= best.seq {
			best = c
		}
	}
	return best
}

// pruneColumns are audit_prunes' columns, with their declared types, as
// migration 8 makes them.
var pruneColumns = []string{"id INTEGER PRIMARY KEY", "created_at TEXT", "reason TEXT", "before_time TEXT", "rows INTEGER",
	"oldest TEXT", "newest TEXT", "first_id INTEGER", "first_seq INTEGER", "prev_mac TEXT", "tag TEXT"}

// pruneTableIsNotOurs says what makes audit_prunes other than the plain
// table migration 8 makes, or "" if nothing does (see tableIsNotOurs).
func pruneTableIsNotOurs(ctx context.Context, db queryer) (string, error) {
	return tableIsNotOurs(ctx, db, "audit_prunes", pruneColumns)
}

// dropBelow takes the chain heads before chain position seq out of the
// list, and returns how many there were: heads of rows a pruning deleted.
func (found *anchors) dropBelow(seq int64) int {
	i := slices.IndexFunc(found.list, func(a anchor) bool { return a.seq >= seq })
	if i < 0 {
		i = len(found.list)
	}
	found.list = slices.Delete(found.list, 0, i)
	return i
}
