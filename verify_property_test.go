package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The properties Verify owes whoever reads its report, checked against any
// edit made to travel.db by hand, behind the library's back:
//
//  1. No tampering goes unreported: when the chained rows are not exactly
//     the rows the library wrote (a chained field, an id, a chain position
//     or chain value changed; a chained row deleted, from the end too; a
//     row given a chain value; a chained row's chain value removed), the
//     report is not intact and names a problem.
//  2. No false alarm: when they are (only TREK's own unchained rows were
//     changed, added or deleted, or a value was set to what it was), the
//     report is intact.
//  3. No false attribution: a report that a row "was row N" is made only
//     of a row whose chained fields are row N's as the library wrote them.
//  4. Verify answers every such edit without an error, without a panic,
//     and in time.
//
// Every row the library writes here is followed by its chain head in
// trek.log (one event a batch), so rows cut off the end are in reach of
// property 1, as the README's "Tamper evidence" says they are while
// trek.log holds their heads.

// tamperCols are audit_log's columns but id, in the order the edits below
// number them.
var tamperCols = [...]string{"created_at", "user_id", "action", "resource", "details", "ip",
	"actor_username", "actor_email", "actor_id", "chain_seq", "chain_mac"}

const (
	colCreatedAt = iota
	colUserID
	colAction
	colResource
	colDetails
	colIP
	colActorUsername
	colActorEmail
	colActorID
	colChainSeq
	colChainMac
)

// tamperCell is a stored value exactly: its SQLite type and the hex of its
// bytes (of its text, for a number).
type tamperCell struct{ typ, hex string }

func (c tamperCell) null() bool { return c.typ == "null" }

// tamperRow is one row of audit_log as stored.
type tamperRow struct {
	id    int64
	cells [len(tamperCols)]tamperCell
}

// chained: the row carries a chain value, which Verify takes for a link.
func (r *tamperRow) chained() bool {
	return !r.cells[colChainSeq].null() || !r.cells[colChainMac].null()
}

// fields is what the chain vouches for in r, its id aside, as the README's
// "Tamper evidence" section and chain.go's chainFields describe it. The
// columns the admin list filters on and chain_seq must also keep the type
// the library writes there (verify.go, storedAsWritten), and actor_id must
// hold an integer or NULL (verify.go, scanChainRow: "a value that is not
// an integer ... on a chained row it is tampering"); details,
// actor_username, actor_email and chain_mac read and show the same as a
// BLOB, and the README says they are not checked, so only their bytes
// count. A chain value counts by the value it spells: its hex digits in
// upper case are the same value (Verify decodes either). user_id is not
// covered (see userIDAllowed).
func (r *tamperRow) fields() string {
	var b strings.Builder
	for i, c := range r.cells {
		switch i {
		case colUserID:
			continue
		case colDetails, colActorUsername, colActorEmail:
			if c.null() {
				b.WriteString("null|")
			} else {
				b.WriteString("bytes:" + c.hex + "|")
			}
			continue
		case colChainMac:
			if raw, err := hex.DecodeString(c.hex); err == nil && !c.null() {
				if mac, err := hex.DecodeString(string(raw)); err == nil && len(mac) == 32 {
					b.WriteString("mac:" + hex.EncodeToString(mac) + "|")
					continue
				}
			}
		}
		b.WriteString(c.typ + ":" + c.hex + "|")
	}
	return b.String()
}

// userIDAllowed: the chain covers actor_id rather than user_id, which
// TREK's foreign key clears when a user is deleted; Verify requires
// user_id to be NULL or the actor's id, an integer (chain.go, chainFields;
// the README's "Tamper evidence").
func (r *tamperRow) userIDAllowed() bool {
	u, a := r.cells[colUserID], r.cells[colActorID]
	return u.null() || (u.typ == "integer" && a.typ == "integer" && u.hex == a.hex && a.hex != hex.EncodeToString([]byte("0")))
}

// readTamperRows reads every row of audit_log as stored, in id order.
func readTamperRows(t testing.TB, db *sql.DB) []tamperRow {
	t.Helper()
	var sel strings.Builder
	sel.WriteString("SELECT id")
	for _, c := range tamperCols {
		fmt.Fprintf(&sel, ", typeof(%s), hex(%s)", c, c)
	}
	sel.WriteString(" FROM audit_log ORDER BY id")
	rows, err := db.Query(sel.String())
	require.NoError(t, err)
	defer rows.Close()
	var out []tamperRow
	for rows.Next() {
		var r tamperRow
		dest := []any{&r.id}
		for i := range r.cells {
			dest = append(dest, &r.cells[i].typ, &r.cells[i].hex)
		}
		require.NoError(t, rows.Scan(dest...))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// tamperedWith is the oracle: whether the chained rows of after differ
// from those of before (the rows the library wrote), or one of them has
// a user_id Verify may not accept; why says what differs.
func tamperedWith(before, after []tamperRow) (bool, string) {
	v := classifyTamper(before, after)
	return v.kind != chainAsWritten, v.why
}

// What hand edits did to the chained rows, as far as the chain itself
// can tell.
const (
	// chainAsWritten: the chained rows are exactly those the library wrote.
	chainAsWritten = iota
	// chainCut: the chained rows left are the library's first rows, each
	// exactly as written, and the rest are gone: the table alone cannot
	// tell it from a log that never had the rest, so only a chain head of
	// a later position (in trek.log) shows it.
	chainCut
	// chainChanged: anything else, which the chain itself shows: a row
	// changed, moved, copied, made up, or missing between others or at
	// the start.
	chainChanged
)

// tamperVerdict is classifyTamper's answer: kept is, for chainCut, how
// many chained rows are left (the chain position of the last).
type tamperVerdict struct {
	kind int
	kept int
	why  string
}

// classifyTamper compares the chained rows of after with those of before,
// in which the library's rows hold chain positions 1, 2, ... in id order.
func classifyTamper(before, after []tamperRow) tamperVerdict {
	type written struct {
		fields string
		pos    int
	}
	want := map[int64]written{}
	for _, r := range before {
		if r.chained() {
			want[r.id] = written{r.fields(), len(want) + 1}
		}
	}
	kept := map[int]bool{}
	for _, r := range after {
		if !r.chained() {
			continue
		}
		w, ok := want[r.id]
		switch {
		case !ok:
			return tamperVerdict{kind: chainChanged, why: fmt.Sprintf("row %d carries a chain value the library did not write there", r.id)}
		case w.fields != r.fields():
			return tamperVerdict{kind: chainChanged, why: fmt.Sprintf("chained row %d differs from what the library wrote", r.id)}
		case !r.userIDAllowed():
			return tamperVerdict{kind: chainChanged, why: fmt.Sprintf("chained row %d has a user_id that is neither NULL nor its actor_id", r.id)}
		}
		kept[w.pos] = true
	}
	if len(kept) == len(want) {
		return tamperVerdict{kind: chainAsWritten}
	}
	why := fmt.Sprintf("%d of the %d chained rows are gone or lost their chain value", len(want)-len(kept), len(want))
	for pos := 1; pos <= len(kept); pos++ {
		if !kept[pos] {
			return tamperVerdict{kind: chainChanged, why: why + fmt.Sprintf(", chain position %d among them, before others kept", pos)}
		}
	}
	return tamperVerdict{kind: chainCut, kept: len(kept), why: why + ", all from the end"}
}

// tamperTemplate is an audit log as the library and TREK left it, kept in
// memory so that every edit starts from a fresh copy of the same files.
type tamperTemplate struct {
	db, log []byte
	rows    []tamperRow
	// startSeq is the chain position of the first chained row, above 1
	// where the template was pruned; record is then the record of the
	// pruning as stored, each column as text.
	startSeq int64
	record   []sql.NullString
}

// newTamperTemplate records 12 events, varied in every column, and two
// rows TREK's own code inserts without a chain value (id 5 between chained
// rows, id 14 at the end); users 1 and 2 exist, user 3 does not.
func newTamperTemplate(t testing.TB) *tamperTemplate {
	t.Helper()
	return buildTamperTemplate(t, false)
}

// tamperPruneDay is the day event i of a pruned template is recorded on.
func tamperPruneDay(i int) time.Time { return time.Date(2025, 3, 1+i, 12, 0, 0, 0, time.UTC) }

// buildTamperTemplate is newTamperTemplate, and, pruned, the same events
// recorded a day apart, of which Prune deletes those of the first six
// days: chained ids 1 to 4 and 6 to 7, and TREK's id 5 between them.
// The chain then starts at id 8, chain position 7.
func buildTamperTemplate(t testing.TB, pruned bool) *tamperTemplate {
	t.Helper()
	cfg := Config{DBPath: filepath.Join(t.TempDir(), "travel.db"), ChainKey: faultChainKey}
	cfg.LogPath = filepath.Join(filepath.Dir(cfg.DBPath), "logs", "trek.log")
	trek := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice", 2: "bob"})
	a := openAuditor(t, cfg)
	alice := Actor{UserID: 1, Username: "alice", Email: "alice@example.com"}
	bob := Actor{UserID: 2, Username: "bob"}
	carol := Actor{UserID: 3, Email: "carol@example.com"} // no such user: user_id NULL
	events := []Event{
		{Action: UserLogin, Actor: alice, IP: "203.0.113.9"},
		{Action: TripCreate, Actor: alice, Resource: "trip:12", Details: map[string]any{"title": "Lisbon", "tripId": 12}, IP: "2001:db8::1"},
		{Action: UserLoginFailed, Details: map[string]any{"email": "mallory@example.com"}, IP: "198.51.100.7"},
		{Action: TripUpdate, Actor: bob, Resource: "trip:12", Details: map[string]any{"tripId": 12, "start_date": "2026-05-01", "trip": "Porto"}},
		{Action: MCPToolCall, Actor: carol, Resource: "get_trip_summary", IP: "203.0.113.10"},
		{Action: TripDelete, Actor: alice, Details: map[string]any{"tripId": 12, "trip": "Porto"}, IP: "203.0.113.9"},
		{Action: AdminUserCreate, Actor: alice, Details: map[string]any{"username": "dave", "role": "user"}},
		{Action: BackupCreate, Actor: bob, Resource: "backup-2026-04-20.zip", IP: "::1"},
		{Action: UserPasswordChange, Actor: bob, IP: "10.0.0.2"},
		{Action: TripCopy, Actor: alice, Details: map[string]any{"sourceTripId": 12, "newTripId": 13, "title": "Lisbon again"}},
		{Action: OAuthTokenIssue, Actor: carol, Resource: "client:abc"},
		{Action: UserLogin, Actor: alice, IP: "203.0.113.9"}, // as the first, but for its id and chain value
	}
	// trekRow inserts one of TREK's rows, of the day of event i when pruned.
	trekRow := func(i int, userID any, action Action, details, ip any) {
		id := insertTrekRow(t, trek, userID, string(action), nil, details, ip)
		if pruned {
			_, err := trek.Exec(`UPDATE audit_log SET created_at = ? WHERE id = ?`,
				tamperPruneDay(i).Add(6*time.Hour).Format(sqliteTimeLayout), id)
			require.NoError(t, err)
		}
	}
	for i, e := range events {
		if pruned {
			a.now = func() time.Time { return tamperPruneDay(i) }
		}
		require.NoError(t, a.Record(t.Context(), e), "event %d", i)
		if i == 3 {
			trekRow(i, 2, UserLogin, nil, "10.0.0.3")
		}
	}
	trekRow(len(events)-1, nil, UserLoginFailed, `{"email":"eve@example.com"}`, "192.0.2.1")
	tmpl := &tamperTemplate{startSeq: 1}
	if pruned {
		a.now = func() time.Time { return tamperPruneDay(len(events)) }
		p, err := a.Prune(t.Context(), tamperPruneDay(6), "the first six days")
		require.NoError(t, err)
		require.Equal(t, int64(7), p.Rows)
		require.Equal(t, int64(8), p.FirstID)
		tmpl.startSeq = p.FirstSeq
		tmpl.record = readTamperRecord(t, trek)
	}
	require.NoError(t, a.Close())
	require.NoError(t, trek.Close())

	var err error
	tmpl.db, err = os.ReadFile(cfg.DBPath)
	require.NoError(t, err)
	tmpl.log, err = os.ReadFile(cfg.LogPath)
	require.NoError(t, err)
	for _, suffix := range []string{"-wal", "-journal"} {
		info, err := os.Stat(cfg.DBPath + suffix)
		require.True(t, os.IsNotExist(err) || info.Size() == 0, "travel.db%s holds data the copies would lack", suffix)
	}
	tmpl.rows = readTamperRows(t, openPlainDB(t, cfg.DBPath))
	require.Len(t, tmpl.rows, map[bool]int{false: 14, true: 7}[pruned])
	var last tamperRow
	for _, r := range tmpl.rows {
		if r.chained() {
			last = r
		}
	}
	require.EqualValues(t, 13, last.id)
	// The end is in reach only through its head in trek.log.
	require.Regexp(t, `(?m) AUDIT-CHAIN head id=13 seq=12 `, string(tmpl.log))
	return tmpl
}

// tamperCopy is a copy of the template's files.
type tamperCopy struct {
	dbPath, logPath string
}

func (tmpl *tamperTemplate) copy(t testing.TB) tamperCopy {
	t.Helper()
	dir := t.TempDir()
	c := tamperCopy{dbPath: filepath.Join(dir, "travel.db"), logPath: filepath.Join(dir, "logs", "trek.log")}
	require.NoError(t, os.WriteFile(c.dbPath, tmpl.db, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Dir(c.logPath), 0o700))
	require.NoError(t, os.WriteFile(c.logPath, tmpl.log, 0o600))
	return c
}

// tamperEditor applies edits by hand through a plain handle of its own
// (foreign keys off, as anyone with the file has them), noting each
// statement that took effect.
type tamperEditor struct {
	t    testing.TB
	db   *sql.DB
	done []string
}

// exec runs one edit; one that SQLite refuses (an id taken, NOT NULL)
// changes nothing and is passed over.
func (e *tamperEditor) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(q, args...); err == nil {
		e.done = append(e.done, fmt.Sprintf("%s %v", q, args))
	}
}

// ids are the ids of the rows now, in order, of those without a chain
// value if unchained.
func (e *tamperEditor) ids(unchained bool) []int64 {
	e.t.Helper()
	q := `SELECT id FROM audit_log ORDER BY id`
	if unchained {
		q = `SELECT id FROM audit_log WHERE chain_seq IS NULL AND chain_mac IS NULL ORDER BY id`
	}
	return queryIDs(e.t, e.db, q)
}

// checkTamperProperties edits a copy of the template with edit, then opens
// it read-only, verifies it, and checks the report against the oracle;
// trek.log stays as the library wrote it.
func checkTamperProperties(t testing.TB, tmpl *tamperTemplate, edit func(e *tamperEditor)) (tampered bool) {
	t.Helper()
	return checkTamper(t, tmpl, edit, nil).kind != chainAsWritten
}

// checkTamper edits a copy of the template's travel.db with edit and its
// log folder with editLog (if not nil), then opens them read-only,
// verifies, and checks the report against the oracles: classifyTamper for
// the chained rows, readTamperLog for the chain heads Verify can read.
func checkTamper(t testing.TB, tmpl *tamperTemplate, edit func(e *tamperEditor), editLog func(logPath string)) tamperVerdict {
	t.Helper()
	c := tmpl.copy(t)
	e := &tamperEditor{t: t, db: openPlainDB(t, c.dbPath)}
	e.db.SetMaxOpenConns(1)
	edit(e)
	after := readTamperRows(t, e.db)
	_, err := e.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(t, err)
	require.NoError(t, e.db.Close())
	edits := strings.Join(e.done, ";\n")
	if editLog != nil {
		editLog(c.logPath)
		edits += "\nand trek.log edited"
	}

	verdict := classifyTamper(tmpl.rows, after)
	heads := readTamperLog(t, tmpl, c.logPath)
	// Rows cut off the end are found by a head past the last one kept.
	report := verdict.kind == chainChanged || (verdict.kind == chainCut && heads.maxSeq > tmpl.startSeq-1+int64(verdict.kept))
	// A pruned template's chain starts past position 1: only its record,
	// unchanged, accounts for the positions before, and a row of
	// audit_prunes any other way accounts for nothing.
	var records, rejected int
	if tmpl.startSeq > 1 {
		records, rejected = tmpl.checkRecord(t, c.dbPath)
		if rejected == records && slices.ContainsFunc(after, func(r tamperRow) bool { return r.chained() }) {
			report, verdict.kind, verdict.why = true, chainChanged, "the record of the pruning is gone or changed"
		}
	}
	a := openAuditor(t, Config{DBPath: c.dbPath, LogPath: c.logPath, ChainKey: faultChainKey, ReadOnly: true})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	rep, err := a.Verify(ctx)
	require.NoError(t, ctx.Err(), "Verify did not finish in 20 s after:\n%s", edits)
	require.NoError(t, err, "an edit that keeps the schema is no reason not to check, after:\n%s", edits)

	assert.Equal(t, heads.valid, rep.Anchors, "chain heads read, after:\n%s", edits)
	assert.Equal(t, heads.rejected, rep.RejectedAnchors, "lines shaped like chain heads that are not the key's, after:\n%s", edits)
	assert.Equal(t, heads.skipped, rep.SkippedLogFiles, "entries named like log files that are not regular files, after:\n%s", edits)
	assert.Equal(t, records-rejected, len(rep.Prunings), "records of prunings, after:\n%s", edits)
	assert.Equal(t, rejected, rep.RejectedPrunings, "records of prunings that are not the key's, after:\n%s", edits)
	switch {
	case report:
		require.False(t, rep.Intact, "tampering unreported (%s; trek.log's last chain head: %d) after:\n%s", verdict.why, heads.maxSeq, edits)
		require.NotNil(t, rep.Problem, "after:\n%s", edits)
	case verdict.kind == chainCut:
		// Rows cut off the end with every head of theirs: what is left
		// is a log that never had them, as the README says.
		require.True(t, rep.Intact, "%s, but no chain head of theirs is left, and Verify reported %+v, after:\n%s", verdict.why, rep.Problem, edits)
	default:
		require.True(t, rep.Intact, "false alarm: %+v, after:\n%s", rep.Problem, edits)
		require.Nil(t, rep.Problem)
	}
	if rep.Problem != nil {
		checkAttribution(t, tmpl.rows, after, rep.Problem, edits)
		// With the right key, "most likely the wrong key" only where
		// nothing the key made could be read to say otherwise.
		assert.False(t, rep.Problem.KeyMismatch && heads.valid > 0, "the key called wrong beside %d chain heads it made, after:\n%s", heads.valid, edits)
	}
	return verdict
}

// wasRow matches the report's claim that the key chained a row's fields
// as row N.
var wasRow = regexp.MustCompile(`\(it was row (-?\d+)\)`)

// checkAttribution: a report that the row at p.ID "was row N" must be of
// a row whose chained fields, chain position and chain value are the
// ones the library wrote for row N; only its id may differ.
func checkAttribution(t testing.TB, before, after []tamperRow, p *Tamper, edits string) {
	t.Helper()
	m := wasRow.FindStringSubmatch(p.Detail)
	if m == nil {
		require.NotContains(t, p.Detail, "given another id", "after:\n%s", edits)
		return
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	find := func(rows []tamperRow, id int64) *tamperRow {
		for i := range rows {
			if rows[i].id == id {
				return &rows[i]
			}
		}
		return nil
	}
	orig, now := find(before, n), find(after, p.ID)
	require.True(t, orig != nil && orig.chained(), "%q names row %d, which the library did not write, after:\n%s", p.Detail, n, edits)
	require.NotNil(t, now, "%q is of row %d, which is not there, after:\n%s", p.Detail, p.ID, edits)
	require.Equal(t, orig.fields(), now.fields(), "row %d is called row %d (%q), but its fields are not that row's, after:\n%s",
		p.ID, n, p.Detail, edits)
}

// The edits FuzzTamper decodes from its input, one byte for the kind, then
// the bytes each reads. A row is named by a byte: below 0x80, its place
// among the rows by id at the time, and from 0x80, its place among those
// without a chain value (TREK's own), if there are any, so that the edits
// that must raise no alarm are as easy to reach as those that must (each
// modulo their number): every input means something.
const (
	opUpdate    = iota // row, column, value (below): one column set
	opDelete           // row
	opTruncate         // row: it and every row after it deleted
	opMoveID           // row, id (below): given another id
	opSwapIDs          // row, row: their ids swapped
	opDuplicate        // row, id (below): copied whole under another id
	opShiftSeq         // row, delta (signed; 0: position 1000)
	opUnchain          // row: chain_seq and chain_mac set to NULL
	opMacDigit         // row, position, character: one character of chain_mac replaced
	opInsert           // chained?, then TREK's columns, or chain_seq and the chain_mac of a row
	opKinds
)

// The values opUpdate sets, one byte for the kind and then its own.
const (
	valNull      = iota
	valInt       // signed byte
	valText      // length, bytes
	valCopy      // row: the same column of that row
	valCopyOther // row, column: another column of that row
	valBlob      // the value cast to a BLOB
	valAsText    // the value cast to TEXT
	valUpper     // upper()
	valLower     // lower()
	valAppend    // length, bytes: appended
	valPlus      // signed byte: added
	valSame      // the value itself
	valSpaced    // a space before it
	valDigits    // signed byte, written as text
	valReal      // signed byte, halved
	valKinds
)

// The ids opMoveID and opDuplicate give, one byte for the kind and one of
// its own.
const (
	idPastEnd = iota // past the largest id
	idNegative
	idNear // the row's own id moved by a signed byte; may be taken
	idFar
	idKinds
)

// tamperBytes reads an input byte by byte, zeros past its end.
type tamperBytes struct{ b []byte }

func (r *tamperBytes) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *tamperBytes) text() string {
	n := int(r.next() % 24)
	n = min(n, len(r.b))
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// maxTamperOps bounds the edits an input makes.
const maxTamperOps = 6

// applyTamperOps decodes in into edits and applies them.
func applyTamperOps(e *tamperEditor, in []byte) {
	r := &tamperBytes{in}
	for range maxTamperOps {
		if len(r.b) == 0 {
			return
		}
		op := r.next() % opKinds
		ids, trek := e.ids(false), e.ids(true)
		row := func() int64 {
			b := r.next()
			if b&0x80 != 0 && len(trek) > 0 {
				return trek[int(b&0x7f)%len(trek)]
			}
			return ids[int(b)%len(ids)]
		}
		newID := func(of int64) int64 {
			k, b := r.next()%idKinds, r.next()
			switch k {
			case idPastEnd:
				return ids[len(ids)-1] + 1 + int64(b%8)
			case idNegative:
				return -int64(b)
			case idNear:
				return of + int64(int8(b))
			}
			return 1<<40 + int64(b)
		}
		if len(ids) == 0 && op != opInsert {
			r.next()
			continue
		}
		switch op {
		case opUpdate:
			id, col := row(), tamperCols[int(r.next())%len(tamperCols)]
			expr, args := tamperValue(r, col, row)
			e.exec(`UPDATE audit_log SET `+col+` = `+expr+` WHERE id = ?`, append(args, id)...)
		case opDelete:
			e.exec(`DELETE FROM audit_log WHERE id = ?`, row())
		case opTruncate:
			e.exec(`DELETE FROM audit_log WHERE id >= ?`, row())
		case opMoveID:
			id := row()
			e.exec(`UPDATE audit_log SET id = ? WHERE id = ?`, newID(id), id)
		case opSwapIDs:
			a, b := row(), row()
			if a == b {
				continue
			}
			tmp := ids[len(ids)-1] + 1000
			e.exec(`UPDATE audit_log SET id = ? WHERE id = ?`, tmp, a)
			e.exec(`UPDATE audit_log SET id = ? WHERE id = ?`, a, b)
			e.exec(`UPDATE audit_log SET id = ? WHERE id = ?`, b, tmp)
		case opDuplicate:
			id := row()
			e.exec(`INSERT INTO audit_log (id, `+strings.Join(tamperCols[:], ", ")+`) SELECT ?, `+
				strings.Join(tamperCols[:], ", ")+` FROM audit_log WHERE id = ?`, newID(id), id)
		case opShiftSeq:
			id, d := row(), int64(int8(r.next()))
			if d == 0 {
				e.exec(`UPDATE audit_log SET chain_seq = 1000 WHERE id = ?`, id)
			} else {
				e.exec(`UPDATE audit_log SET chain_seq = chain_seq + ? WHERE id = ?`, d, id)
			}
		case opUnchain:
			e.exec(`UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL WHERE id = ?`, row())
		case opMacDigit:
			id, pos, c := row(), int(r.next()%64), r.next()
			ch := string(c)
			if c < 0x80 {
				ch = string("0123456789abcdefABCDEF"[c%22])
			}
			e.exec(`UPDATE audit_log SET chain_mac = substr(chain_mac, 1, ?) || ? || substr(chain_mac, ?) WHERE id = ?`,
				pos, ch, pos+2, id)
		case opInsert:
			if chained := r.next(); chained%2 == 0 || len(ids) == 0 {
				e.exec(`INSERT INTO audit_log (user_id, action, resource, details, ip) VALUES (?, ?, ?, ?, ?)`,
					nullIfZero(int64(r.next()%4)), string(Catalogue()[int(chained)%len(Catalogue())].Action), r.text(), r.text(), r.text())
			} else {
				e.exec(`INSERT INTO audit_log (created_at, action, actor_id, chain_seq, chain_mac)
					SELECT created_at, action, actor_id, ?, chain_mac FROM audit_log WHERE id = ?`, int64(int8(r.next())), row())
			}
		}
	}
}

func nullIfZero(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// tamperValue decodes the value opUpdate sets column col to: an SQL
// expression and its arguments.
func tamperValue(r *tamperBytes, col string, row func() int64) (string, []any) {
	switch r.next() % valKinds {
	case valNull:
		return `NULL`, nil
	case valInt:
		return `?`, []any{int64(int8(r.next()))}
	case valText:
		return `?`, []any{r.text()}
	case valCopy:
		return `(SELECT ` + col + ` FROM audit_log WHERE id = ?)`, []any{row()}
	case valCopyOther:
		id := row()
		return `(SELECT ` + tamperCols[int(r.next())%len(tamperCols)] + ` FROM audit_log WHERE id = ?)`, []any{id}
	case valBlob:
		return `CAST(` + col + ` AS BLOB)`, nil
	case valAsText:
		return `CAST(` + col + ` AS TEXT)`, nil
	case valUpper:
		return `upper(` + col + `)`, nil
	case valLower:
		return `lower(` + col + `)`, nil
	case valAppend:
		return col + ` || ?`, []any{r.text()}
	case valPlus:
		return col + ` + ?`, []any{int64(int8(r.next()))}
	case valSame:
		return col, nil
	case valSpaced:
		return `' ' || ` + col, nil
	case valDigits:
		return `?`, []any{strconv.Itoa(int(int8(r.next())))}
	}
	return `?`, []any{float64(int8(r.next())) / 2}
}

// FuzzTamper edits the template's travel.db by hand, up to six edits of
// any column, id or chain value, and checks Verify's report against what
// the edits did to the chained rows (see the properties above).
func FuzzTamper(f *testing.F) {
	// Rows by place: 0-3 are chained ids 1-4, 4 is TREK's id 5, 5-12 are
	// chained ids 6-13, 13 is TREK's id 14; 0x80 and 0x81 are TREK's.
	seeds := [][]byte{
		{}, // nothing changed
		{opUpdate, 2, colDetails, valSame},
		{opUpdate, 4, colDetails, valText, 3, 'a', 'b', 'c'},                 // TREK's row
		{opDelete, 13, opInsert, 0, 1, 2, 'x', 'y', 0, 3, '1', '.', '2'},     // TREK's rows
		{opUpdate, 1, colUserID, valNull, opUpdate, 4, colUserID, valInt, 9}, // user_id cleared
		{opUpdate, 10, colUserID, valCopy, 10},                               // NULL kept
		{opUpdate, 3, colDetails, valBlob, opUpdate, 5, colChainMac, valUpper},
		{opUpdate, 6, colDetails, valAppend, 1, ' '},
		{opUpdate, 0, colIP, valBlob},
		{opUpdate, 7, colCreatedAt, valCopy, 0}, // the same second
		{opUpdate, 7, colCreatedAt, valAppend, 1, 'Z'},
		{opUpdate, 8, colActorID, valDigits, 2},
		{opUpdate, 2, colActorID, valInt, 1, opUpdate, 2, colUserID, valInt, 1},
		{opUpdate, 0, colAction, valCopy, 11},
		{opDelete, 6},
		{opDelete, 12},
		{opTruncate, 10},
		{opMoveID, 6, idPastEnd, 0},
		{opMoveID, 2, idNegative, 0},
		{opMoveID, 12, idNear, 5},
		{opMoveID, 12, idFar, 3, opUpdate, 13, colDetails, valText, 1, 'x'},
		{opSwapIDs, 1, 2},
		{opSwapIDs, 0, 12},
		{opDuplicate, 3, idPastEnd, 0},
		{opDuplicate, 3, idNegative, 1, opDelete, 4},
		{opShiftSeq, 5, 1},
		{opShiftSeq, 12, 0},
		{opUnchain, 3},
		{opUnchain, 12},
		{opMacDigit, 9, 17, 'e'},
		{opMacDigit, 9, 17, 0xfe},
		{opInsert, 1, 3, 4},
		{opSwapIDs, 0x80, 0x81, opMoveID, 0x81, idNegative, 7, opDuplicate, 0x80, idPastEnd, 0}, // TREK's rows
		{opUpdate, 0x81, colUserID, valText, 1, 'x', opUpdate, 0x80, colCreatedAt, valInt, 5},
		{opUpdate, 4, colChainSeq, valInt, 5},
		{opUpdate, 4, colChainMac, valCopy, 5, opUpdate, 4, colChainSeq, valCopy, 5},
		{opMoveID, 4, idFar, 0, opMoveID, 5, idNear, 0xff, opUpdate, 5, colChainMac, valCopy, 4},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	tmpl := newTamperTemplate(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		checkTamperProperties(t, tmpl, func(e *tamperEditor) { applyTamperOps(e, in) })
	})
}

// TestTamperPropertyCases runs the property check on edits picked by hand,
// and checks that the oracle calls each what it is.
func TestTamperPropertyCases(t *testing.T) {
	cases := []struct {
		name     string
		sql      []string
		tampered bool
	}{
		{"nothing changed", nil, false},
		{"a value set to itself", []string{`UPDATE audit_log SET details = details, ip = ip WHERE id = 3`}, false},
		{"TREK's rows changed, deleted and added", []string{
			`UPDATE audit_log SET details = '{"title":"x"}', created_at = 5 WHERE id = 5`,
			`DELETE FROM audit_log WHERE id = 14`,
			`INSERT INTO audit_log (action, user_id) VALUES ('user.login', 'x')`,
			`INSERT INTO audit_log (id, action) VALUES (0, 'user.login')`,
		}, false},
		{"user_id cleared, as TREK's foreign key does", []string{`UPDATE audit_log SET user_id = NULL WHERE id IN (1, 2, 4)`}, false},
		{"user_id set to the actor", []string{`UPDATE audit_log SET user_id = actor_id WHERE id = 6`}, false},
		{"details and the chain value recast as BLOBs", []string{
			`UPDATE audit_log SET details = CAST(details AS BLOB), chain_mac = CAST(chain_mac AS BLOB) WHERE id = 2`,
		}, false},
		{"the chain value in upper case", []string{`UPDATE audit_log SET chain_mac = upper(chain_mac) WHERE id = 7`}, false},
		{"two rows swapped and swapped back", []string{
			`UPDATE audit_log SET id = 100 WHERE id = 2`, `UPDATE audit_log SET id = 2 WHERE id = 3`,
			`UPDATE audit_log SET id = 3 WHERE id = 100`, `UPDATE audit_log SET id = 100 WHERE id = 2`,
			`UPDATE audit_log SET id = 2 WHERE id = 3`, `UPDATE audit_log SET id = 3 WHERE id = 100`,
		}, false},

		{"details changed", []string{`UPDATE audit_log SET details = '{"title":"Rome"}' WHERE id = 2`}, true},
		{"ip recast as a BLOB", []string{`UPDATE audit_log SET ip = CAST(ip AS BLOB) WHERE id = 1`}, true},
		{"actor_id recast as a BLOB", []string{`UPDATE audit_log SET actor_id = CAST(actor_id AS BLOB) WHERE id = 1`}, true},
		{"actor_id as a BLOB that reads as the same number", []string{`UPDATE audit_log SET actor_id = CAST('+01' AS BLOB) WHERE id = 1`}, true},
		{"actor changed with user_id", []string{`UPDATE audit_log SET actor_id = 2, user_id = 2 WHERE id = 1`}, true},
		{"user_id set to another user", []string{`UPDATE audit_log SET user_id = 2 WHERE id = 1`}, true},
		{"an anonymous row given user 1", []string{`UPDATE audit_log SET user_id = 1 WHERE id = 3`}, true},
		{"a row deleted from the middle", []string{`DELETE FROM audit_log WHERE id = 7`}, true},
		{"the last chained row deleted", []string{`DELETE FROM audit_log WHERE id = 13`}, true},
		{"the end cut off", []string{`DELETE FROM audit_log WHERE id >= 11`}, true},
		{"every chained row deleted", []string{`DELETE FROM audit_log WHERE chain_seq IS NOT NULL`}, true},
		{"a row given a later id", []string{`UPDATE audit_log SET id = 20 WHERE id = 7`}, true},
		{"the last row given an earlier id", []string{`UPDATE audit_log SET id = 0 WHERE id = 13`}, true},
		{"a row given a later id and the next changed", []string{
			`UPDATE audit_log SET id = 20 WHERE id = 7`, `UPDATE audit_log SET details = '{}' WHERE id = 8`,
		}, true},
		{"a row given a later id and changed", []string{`UPDATE audit_log SET id = 20, ip = '10.9.9.9' WHERE id = 7`}, true},
		{"the first and the last row swapped", []string{
			`UPDATE audit_log SET id = 100 WHERE id = 1`, `UPDATE audit_log SET id = 1 WHERE id = 13`,
			`UPDATE audit_log SET id = 13 WHERE id = 100`,
		}, true},
		{"a row copied", []string{`INSERT INTO audit_log (id, ` + strings.Join(tamperCols[:], ", ") + `) SELECT 30, ` +
			strings.Join(tamperCols[:], ", ") + ` FROM audit_log WHERE id = 4`}, true},
		{"a chain position changed", []string{`UPDATE audit_log SET chain_seq = chain_seq + 1 WHERE id = 6`}, true},
		{"a chain value removed", []string{`UPDATE audit_log SET chain_seq = NULL, chain_mac = NULL WHERE id = 9`}, true},
		{"a digit of a chain value changed", []string{
			`UPDATE audit_log SET chain_mac = substr(chain_mac, 1, 10) || CASE substr(chain_mac, 11, 1) WHEN '0' THEN '1' ELSE '0' END ||
				substr(chain_mac, 12) WHERE id = 9`,
		}, true},
		{"TREK's row given a chain value", []string{
			`UPDATE audit_log SET chain_seq = 5, chain_mac = (SELECT chain_mac FROM audit_log WHERE id = 6) WHERE id = 5`,
		}, true},
		{"TREK's row given only a chain value", []string{`UPDATE audit_log SET chain_mac = 'x' WHERE id = 14`}, true},
	}
	tmpl := newTamperTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tampered := checkTamperProperties(t, tmpl, func(e *tamperEditor) {
				for _, q := range tc.sql {
					_, err := e.db.Exec(q)
					require.NoError(t, err, q)
					e.done = append(e.done, q)
				}
			})
			assert.Equal(t, tc.tampered, tampered, "the oracle")
		})
	}
}
