package audit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Verify checks every chain head trek.log recorded against the row now at
// its chain position. After travel.db is restored from a backup, the heads
// recorded since the backup name rows that are gone, so Verify rightly
// reports the newest rows missing, and goes on reporting it until those
// lines rotate out of trek.log: on a quiet instance, for years, and a
// nightly check that always fails is soon not read. An acknowledgement is
// the operator's record that they know why: it lists exactly the heads
// that do not match the table when it is made, with a reason, under a tag
// only the chain key makes. Verify then passes over those heads, counts
// them and shows the acknowledgement; every other head, those written
// later included, is checked as before. The acknowledgement also records
// the chain's last row when it was made, and Verify checks that row as it
// checks a head in trek.log: rows deleted back past it are found even once
// trek.log holds no head of its own but those acknowledged.

// ErrAcknowledge means Acknowledge (or Unacknowledged) refused, and wrote
// nothing. The message says why: no reason, or one that is not a line of
// text; nothing to acknowledge; not what the digest names; or the chain
// itself does not verify. (Where it could not read the chain, the error
// is ErrVerify; where it could not write, ErrStore.)
var ErrAcknowledge = errors.New("audit: acknowledge")

// Acknowledgement is an operator's record that the chain heads in trek.log
// it lists no longer match audit_log, and why.
type Acknowledgement struct {
	ID        int64  `json:"id"`
	CreatedAt string `json:"created_at"` // ISO 8601, UTC
	Reason    string `json:"reason"`     // as the operator gave it
	Anchors   int    `json:"anchors"`    // the chain heads it lists
	// HeadID and HeadSeq are the chain's last row when it was made (0: the
	// table held no chained row). Verify checks that the row is still
	// there, unchanged.
	HeadID  int64 `json:"head_id"`
	HeadSeq int64 `json:"head_seq"`
	// Differing counts the heads it lists whose position held another row,
	// and PastEnd those past the chain's last row, with their positions
	// (DifferingAt, PastEndAt: "6-10,14"): a restore leaves both kinds.
	Differing   int    `json:"differing"`
	DifferingAt string `json:"differing_at,omitempty"`
	PastEnd     int    `json:"past_end"`
	PastEndAt   string `json:"past_end_at,omitempty"`
	// Doubled counts the positions that one of these heads and a head of
	// another history name (another of these, or one an earlier
	// acknowledgement lists, whether or not a later restore brought its
	// row back), with the positions (DoubledAt): rows were written there
	// more than once, and this history's are gone. Two restores explain
	// that, and so do rows deleted after a restore; worth a look before
	// acknowledging. It is read back from the heads alone, so an
	// acknowledgement lists it later as it was shown.
	Doubled   int    `json:"doubled"`
	DoubledAt string `json:"doubled_at,omitempty"`
	// Digest names what is acknowledged: the heads, the records
	// superseded, and the chain's last row as it was shown, by position
	// ("12-3f0c9a1e5b7d2468"). Unacknowledged shows it; Acknowledge
	// records only what still has the digest it is given, so that rows
	// recorded meanwhile change nothing, and anything else does.
	Digest string `json:"digest"`
	// Supersedes are earlier acknowledgements whose record of the chain's
	// last row no longer matches the table (rows deleted back past it,
	// audit_log restored alone or rebuilt by TREK): Verify no longer checks
	// those records. The heads they list stay acknowledged.
	Supersedes []int64 `json:"supersedes,omitempty"`
	headMac    string
	// refs name the superseded acknowledgements by id and tag: an id can
	// be given again once a row is deleted, a tag cannot.
	refs []ackRef
	tag  string // hex
}

// ackRef names an acknowledgement: its id, and the first half of its tag,
// in hex.
type ackRef struct {
	id  int64
	tag string
}

// refOf names ack.
func refOf(ack *Acknowledgement) ackRef {
	return ackRef{ack.ID, ack.tag[:min(len(ack.tag), 32)]}
}

// maxAckReason bounds an acknowledgement's reason, in bytes.
const maxAckReason = 1000

// Unacknowledged returns what Acknowledge would record now, unwritten (ID
// 0, no reason): the chain heads in trek.log that no longer match the
// table, by kind and position, the earlier acknowledgements it would
// supersede, and its Digest. Where there is nothing to acknowledge, it
// returns the zero Acknowledgement. Where the chain itself does not
// verify, it refuses with ErrAcknowledge, as Acknowledge does. It only
// reads, so it works on an Auditor opened read-only.
func (a *Auditor) Unacknowledged(ctx context.Context) (Acknowledgement, error) {
	if err := a.closedFor("Unacknowledged"); err != nil {
		return Acknowledgement{}, err
	}
	p, err := a.pending(ctx, -1)
	return p.ack, safeError(a.whileClosing(err))
}

// Acknowledge records that the chain heads in trek.log which no longer
// match the table are known, for reason (who, and what happened: "restored
// travel.db from the backup of 24 November"), so that Verify stops
// reporting them. It records what Unacknowledged showed, and only if that
// still has digest, the Digest a person was shown: Verify stops at its
// first problem, and what is acknowledged must be what was read. Rows
// recorded meanwhile change nothing; anything else makes it refuse, and
// the person look again. A row deleted later, or one whose head is written
// later, is reported as before. Earlier acknowledgements whose record of
// the chain's last row no longer matches are superseded
// (Acknowledgement.Supersedes).
//
// An acknowledgement is for good. Deleting its row brings the report back,
// but whoever kept a copy can put it back.
//
// Only heads can be acknowledged: where the chain itself does not verify
// (a row changed, inserted or missing between others), Acknowledge
// refuses with ErrAcknowledge and says what Verify found; so it does when
// there is nothing to acknowledge, or not what digest names. On an
// Auditor opened read-only it answers ErrReadOnly. It is safe while TREK
// runs; under a load that keeps the database locked past the busy
// timeout, it fails with ErrStore and can be tried again.
func (a *Auditor) Acknowledge(ctx context.Context, reason, digest string) (_ Acknowledgement, err error) {
	defer func() { err = safeError(a.whileClosing(err)) }()
	if err := a.closedFor("Acknowledge"); err != nil {
		return Acknowledgement{}, err
	}
	if a.readOnly {
		return Acknowledgement{}, fmt.Errorf("%w: cannot acknowledge", ErrReadOnly)
	}
	if err := checkReason(ErrAcknowledge, reason); err != nil {
		return Acknowledgement{}, err
	}
	shown, _, ok := strings.Cut(digest, "-")
	seq, err := strconv.ParseInt(shown, 10, 64)
	if !ok || err != nil || seq < 0 {
		seq = -1
	}
	p, err := a.pending(ctx, seq)
	switch {
	case err != nil:
		return Acknowledgement{}, err
	case p.ack.Digest == "":
		return Acknowledgement{}, fmt.Errorf("%w: there is nothing to acknowledge: every chain head in trek.log matches the table", ErrAcknowledge)
	case seq < 0:
		return Acknowledgement{}, fmt.Errorf("%w: %s is not a digest Unacknowledged gives (position-hex): look at what there is to "+
			"acknowledge (Unacknowledged, or trek-audit acknowledge without --reason)", ErrAcknowledge, quoted(digest))
	case digest != p.ack.Digest:
		// The new digest is not given: what is recorded must be what a
		// person read, so they look again.
		return Acknowledgement{}, fmt.Errorf("%w: what there is to acknowledge changed since it was shown; now: %s. "+
			"Look at it again (Unacknowledged, or trek-audit acknowledge without --reason)", ErrAcknowledge, p.ack.summary(p.shownGone))
	}
	ack := p.ack
	ack.CreatedAt, ack.Reason = time.Now().UTC().Format("2006-01-02T15:04:05Z"), reason
	if err := insertAck(ctx, p.db, newAckSigner(p.key), &ack, p.list); errors.Is(err, errAckTooLarge) {
		return Acknowledgement{}, fmt.Errorf("%w: %w", ErrAcknowledge, err)
	} else if err != nil {
		return Acknowledgement{}, fmt.Errorf("%w: %w", ErrStore, describe("writing the acknowledgement", err))
	}
	return ack, nil
}

// summary says in a line what ack lists, for a refusal.
func (ack *Acknowledgement) summary(shownGone bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d chain heads", ack.Anchors)
	if ack.DifferingAt != "" {
		fmt.Fprintf(&b, ", at positions holding other rows %s", ack.DifferingAt)
	}
	if ack.PastEndAt != "" {
		fmt.Fprintf(&b, ", past the chain's last row (position %d) %s", ack.HeadSeq, ack.PastEndAt)
	}
	if ack.DoubledAt != "" {
		fmt.Fprintf(&b, ", positions named by heads of more than one history %s", ack.DoubledAt)
	}
	if len(ack.Supersedes) > 0 {
		fmt.Fprintf(&b, ", superseding %d earlier acknowledgements", len(ack.Supersedes))
	}
	if shownGone {
		b.WriteString(", and the chain's last row as it was shown is gone or changed")
	}
	return b.String()
}

// pendingAck is what Acknowledge would record, and where.
type pendingAck struct {
	ack       Acknowledgement
	list      string // the heads, as stored
	shownGone bool   // the row at the position the digest names is not as shown
	db        *sql.DB
	key       []byte
}

// pending walks the chain in collect mode and makes the acknowledgement
// of what it found. Its digest names the chain's last row as it is now,
// or, with shownSeq 0 or more, the row at that position as it is now.
func (a *Auditor) pending(ctx context.Context, shownSeq int64) (pendingAck, error) {
	v, err := a.newVerifier(ctx, nil)
	if err != nil {
		return pendingAck{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	defer v.close()
	var found collected
	v.collect = &found
	v.watchSeq = shownSeq
	rep, err := v.run(ctx)
	if err != nil {
		return pendingAck{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if p := rep.Problem; p != nil {
		return pendingAck{}, fmt.Errorf("%w: only chain heads in trek.log that no longer match the table can be acknowledged, "+
			"and the chain itself does not verify: %s at row %d, chain position %d: %s", ErrAcknowledge, p.Kind, p.ID, p.Seq, p.Detail)
	}
	heads := found.heads
	if len(heads) == 0 && len(found.superseded) == 0 {
		return pendingAck{}, nil
	}
	slices.SortFunc(heads, compareAnchors)
	heads = slices.CompactFunc(heads, func(x, y anchor) bool { return headOf(x) == headOf(y) })
	var list strings.Builder
	hs := make([]ackedHead, len(heads))
	for i, c := range heads {
		hs[i] = headOf(c)
		fmt.Fprintf(&list, "%d %d %x\n", hs[i].seq, hs[i].id, hs[i].mac)
	}
	p := pendingAck{list: list.String(), db: a.store.(*sqliteStore).db, key: v.chain.key}
	p.ack = Acknowledgement{HeadID: rep.HeadID, HeadSeq: rep.HeadSeq, headMac: hex.EncodeToString(v.headMac)}
	slices.SortFunc(found.superseded, func(x, y ackRef) int { return cmp.Or(cmp.Compare(x.id, y.id), strings.Compare(x.tag, y.tag)) })
	p.ack.refs = slices.Compact(found.superseded)
	for _, r := range p.ack.refs {
		p.ack.Supersedes = append(p.ack.Supersedes, r.id)
	}
	p.ack.describe(hs, v.acks.heads)

	// The row the digest names: the last one now, or the one shown.
	shown := anchor{seq: rep.HeadSeq, id: rep.HeadID}
	copy(shown.mac[:], v.headMac)
	if shownSeq >= 0 {
		shown = anchor{seq: shownSeq}
		switch {
		case v.watched != nil:
			shown = *v.watched
		case shownSeq != 0:
			p.shownGone = true // no row there: the digest names none, and differs
		}
	}
	p.ack.Digest = ackDigest(shown, refList(p.ack.refs), p.list)
	return p, nil
}

// ackDigest is Acknowledgement.Digest: the position of the row shown, then
// 64 bits of SHA-256 over that row, the records superseded and the heads,
// in hex.
func ackDigest(shown anchor, supersedes, heads string) string {
	h := sha256.New()
	var b []byte
	b = binary.AppendVarint(b, shown.seq)
	b = binary.AppendVarint(b, shown.id)
	b = append(b, shown.mac[:]...)
	h.Write(b)
	for _, t := range [...]string{supersedes, heads} {
		h.Write(binary.AppendUvarint(nil, uint64(len(t))))
		h.Write([]byte(t))
	}
	return strconv.FormatInt(shown.seq, 10) + "-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// describe fills in what ack's heads say: their count, positions and
// kinds. acked are the heads earlier acknowledgements list, which count
// towards positions named by more than one history.
func (ack *Acknowledgement) describe(heads []ackedHead, acked map[ackedHead]bool) {
	ack.Anchors = len(heads)
	var differing, pastEnd []int64
	gone := map[int64]map[ackedHead]bool{}
	for _, h := range heads {
		if h.seq > ack.HeadSeq {
			pastEnd = append(pastEnd, h.seq)
		} else {
			differing = append(differing, h.seq)
		}
		if gone[h.seq] == nil {
			gone[h.seq] = map[ackedHead]bool{}
		}
		gone[h.seq][h] = true
	}
	for h := range acked {
		if gone[h.seq] != nil {
			gone[h.seq][h] = true
		}
	}
	var doubled []int64
	for seq, hs := range gone {
		if len(hs) > 1 {
			doubled = append(doubled, seq)
		}
	}
	slices.Sort(doubled)
	ack.Differing, ack.DifferingAt = len(differing), seqRanges(differing)
	ack.PastEnd, ack.PastEndAt = len(pastEnd), seqRanges(pastEnd)
	ack.Doubled, ack.DoubledAt = len(doubled), seqRanges(doubled)
}

// seqRanges writes sorted positions as ranges: "6-10,14"; "" for none.
func seqRanges(seqs []int64) string {
	seqs = slices.Compact(slices.Clone(seqs))
	var b []byte
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, seqs[i], 10)
		if j > i {
			b = strconv.AppendInt(append(b, '-'), seqs[j], 10)
		}
		i = j + 1
	}
	return string(b)
}

// insertAck writes ack, giving it the next id itself: the tag covers the
// id, so a row copied or renumbered acknowledges nothing.
func insertAck(ctx context.Context, db *sql.DB, s ackSigner, ack *Acknowledgement, list string) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// Ids follow the order acknowledgements are made in, which Verify reads
	// them back in (see readAcks): the next after the largest. Only where
	// a row written by hand holds the largest id there is does it take the
	// first free one instead, rather than have no id to take.
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(
		(SELECT MAX(id) + 1 FROM audit_chain_acks HAVING MAX(id) < 9223372036854775807),
		(SELECT MIN(t.id) + 1 FROM (SELECT 0 AS id UNION ALL SELECT id FROM audit_chain_acks WHERE id > 0 AND id < 9223372036854775807) AS t
			WHERE NOT EXISTS (SELECT 1 FROM audit_chain_acks WHERE id = t.id + 1)))`).Scan(&ack.ID); err != nil {
		return err
	}
	signed := fieldsOf(ack, list)
	ack.tag = hex.EncodeToString(s.tag(&signed))
	if n := signed.size() + len(ack.tag); n > maxAckRow {
		// readAcks would reject it unread, as a row Acknowledge never
		// wrote: the operator's own record would read as a forgery.
		return fmt.Errorf("%w: %d chain heads are more than one acknowledgement holds (%d bytes, against the %d Verify reads back): "+
			"move some of trek.log's rotated files aside, acknowledge the rest, then put them back and acknowledge them", errAckTooLarge, ack.Anchors, n, maxAckRow)
	}
	res, err := conn.ExecContext(ctx, `INSERT INTO audit_chain_acks (id, created_at, reason, head_id, head_seq, head_mac, supersedes, digest, anchors, tag)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, signed.id, signed.createdAt, signed.reason, signed.headID, signed.headSeq, signed.headMac,
		signed.supersedes, signed.digest, signed.anchors, ack.tag)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, fmt.Errorf("the acknowledgement was not stored (%d rows written)", n))
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// checkReason: a reason (for an acknowledgement, or a pruning, whose
// error refused is) must say something, fit on a line of a report, and
// be text.
func checkReason(refused error, reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("%w: a reason is required: say who you are and what happened", refused)
	case len(reason) > maxAckReason:
		return fmt.Errorf("%w: the reason is %d bytes long, more than %d", refused, len(reason), maxAckReason)
	case !utf8.ValidString(reason):
		return fmt.Errorf("%w: the reason is not valid UTF-8", refused)
	case strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the reason holds a control character (a line break, a tab, an escape)", refused)
	}
	return nil
}

// ackedHead is how an acknowledgement names a chain head: its position,
// its row and the first half of its chain value. 128 bits are as far
// beyond guessing as the whole value, and the list stays short.
type ackedHead struct {
	seq, id int64
	mac     [sha256.Size / 2]byte
}

func headOf(a anchor) ackedHead {
	h := ackedHead{seq: a.seq, id: a.id}
	copy(h.mac[:], a.mac[:])
	return h
}

// collected is what a walk in collect mode found that Acknowledge can
// acknowledge: the chain heads in trek.log that do not match the table,
// and the acknowledgements whose record of the chain's last row does not.
type collected struct {
	heads      []anchor
	superseded []ackRef
}

// ackEnd is an acknowledgement's record of the chain's last row.
type ackEnd struct {
	anchor
	ack ackRef
}

// ackSet is what readAcks found: the acknowledgements whose tag the key
// made, the heads they list, the chain's last row as each recorded it,
// those a later one supersedes, and how many rows carried another tag.
type ackSet struct {
	list       []Acknowledgement
	heads      map[ackedHead]bool
	ends       []ackEnd
	superseded map[ackRef]bool
	rejected   int
}

// maxAckRow bounds the text of one acknowledgement that readAcks reads
// (about 1.2 million heads): a larger row is not one Acknowledge wrote
// for any log rotation keeps, and is rejected unread.
const maxAckRow = 64 << 20

// readAcks reads audit_chain_acks. Every column is read as text, so that
// no value written behind the library's back stops Verify: a row that
// does not read back exactly as Acknowledge wrote it is rejected.
func readAcks(ctx context.Context, db queryer, key []byte) (ackSet, error) {
	var set ackSet
	if what, err := ackTableIsNotOurs(ctx, db); err != nil {
		return set, err
	} else if what != "" {
		return set, fmt.Errorf("audit_chain_acks is not the library's table (%s): the schema was changed by hand", what)
	}
	// A row too large to be one Acknowledge wrote is rejected by its
	// size, which SQLite reads without the text.
	rows, err := db.QueryContext(ctx, textsIfFits("audit_chain_acks", "id", "created_at", "reason", "head_id", "head_seq", "head_mac",
		"supersedes", "digest", "tag", "anchors"), sql.Named("max", maxAckRow))
	if err != nil {
		return set, err
	}
	defer rows.Close()
	s := newAckSigner(key)
	var perAck [][]ackedHead // the heads of each of set.list
	for rows.Next() {
		var fits sql.NullBool
		var f ackRow
		if err := rows.Scan(&fits, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9]); err != nil {
			return set, err
		}
		ack, heads, ok := s.parse(f)
		end := ackEnd{anchor{seq: ack.HeadSeq, id: ack.HeadID}, refOf(&ack)}
		if !ok || !fits.Bool || (ack.HeadSeq > 0 && !decodeMac(&end.mac, ack.headMac)) {
			set.rejected++
			continue
		}
		if set.heads == nil {
			set.heads, set.superseded = map[ackedHead]bool{}, map[ackRef]bool{}
		}
		for _, h := range heads {
			set.heads[h] = true
		}
		if ack.HeadSeq > 0 {
			set.ends = append(set.ends, end)
		}
		for _, r := range ack.refs {
			set.superseded[r] = true
		}
		set.list = append(set.list, ack)
		perAck = append(perAck, heads)
	}
	if err := rows.Err(); err != nil {
		return set, err
	}
	// Positions of more than one history count the heads of the
	// acknowledgements before each, as they were counted when it was shown.
	earlier := map[ackedHead]bool{}
	for i, heads := range perAck {
		set.list[i].describe(heads, earlier)
		for _, h := range heads {
			earlier[h] = true
		}
	}
	return set, nil
}

// ackSigner makes and checks acknowledgements' tags, under a key derived
// from the chain key for them alone.
type ackSigner struct {
	key []byte
}

func newAckSigner(chainKey []byte) ackSigner {
	return ackSigner{key: derivedKey(chainKey, "trek-audit acknowledgement v1")}
}

// derivedKey is the key a kind of record (named by label) is tagged
// under, derived from the chain key: a tag of one kind is never one of
// another, nor a chain value.
func derivedKey(chainKey []byte, label string) []byte {
	derive := hmac.New(sha256.New, chainKey)
	derive.Write([]byte(label))
	return derive.Sum(nil)
}

// recordTag is the tag of a record under key: the numbers, as varints,
// then each text length-prefixed, so that no field can be changed or
// moved into another.
func recordTag(key []byte, numbers []int64, texts []string) []byte {
	m := hmac.New(sha256.New, key)
	var b []byte
	for _, n := range numbers {
		b = binary.AppendVarint(b, n)
	}
	m.Write(b)
	for _, t := range texts {
		m.Write(binary.AppendUvarint(nil, uint64(len(t))))
		m.Write([]byte(t))
	}
	return m.Sum(nil)
}

// textsIfFits selects, from every row of table in id order, whether the
// row's columns together hold at most @max bytes, then each column as
// text, or NULL where they hold more. octet_length reads a column's size
// from the row's header, not its text, so a row too large to be one the
// library wrote is rejected by its size, unread.
func textsIfFits(table string, columns ...string) string {
	sizes := make([]string, len(columns))
	for i, c := range columns {
		sizes[i] = "octet_length(" + c + ")"
	}
	fits := "(" + strings.Join(sizes, " + ") + " <= @max)"
	sel := []string{fits}
	for _, c := range columns {
		sel = append(sel, "CASE WHEN "+fits+" THEN CAST("+c+" AS TEXT) END")
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM " + table + " ORDER BY id"
}

// ackFields are what an acknowledgement's tag covers, as stored.
type ackFields struct {
	id, headID, headSeq                                     int64
	createdAt, reason, headMac, supersedes, digest, anchors string
}

// size is how many bytes f takes as readAcks measures a row: each column
// as text.
func (f *ackFields) size() int {
	n := len(f.createdAt) + len(f.reason) + len(f.headMac) + len(f.supersedes) + len(f.digest) + len(f.anchors)
	for _, v := range []int64{f.id, f.headID, f.headSeq} {
		n += len(strconv.FormatInt(v, 10))
	}
	return n
}

// errAckTooLarge marks insertAck's refusal of a record too large to read
// back, which Acknowledge answers as ErrAcknowledge.
var errAckTooLarge = errors.New("too many heads")

// fieldsOf is what Acknowledge stores of ack, with its list of heads.
func fieldsOf(ack *Acknowledgement, anchors string) ackFields {
	return ackFields{ack.ID, ack.HeadID, ack.HeadSeq, ack.CreatedAt, ack.Reason, ack.headMac, refList(ack.refs), ack.Digest, anchors}
}

// tag covers every field, each length-prefixed, so that none can be
// changed or moved into another. It reads the text as stored, before
// anything parses it: a forged row costs one pass over its bytes.
func (s ackSigner) tag(f *ackFields) []byte {
	return recordTag(s.key, []int64{f.id, f.headID, f.headSeq}, []string{f.createdAt, f.reason, f.headMac, f.supersedes, f.digest, f.anchors})
}

// ackRow is a row of audit_chain_acks as readAcks reads it: id,
// created_at, reason, head_id, head_seq, head_mac, supersedes, digest,
// tag, anchors.
type ackRow [10]sql.NullString

// parse checks one row and reads its heads; ok is false unless the tag is
// the key's and every field reads back as Acknowledge writes it.
func (s ackSigner) parse(f ackRow) (ack Acknowledgement, heads []ackedHead, ok bool) {
	for _, c := range f {
		if !c.Valid {
			return Acknowledgement{}, nil, false
		}
	}
	var err [4]error
	ack.ID, err[0] = storedInt(f[0].String)
	ack.CreatedAt, ack.Reason, ack.headMac = f[1].String, f[2].String, f[5].String
	ack.HeadID, err[1] = storedInt(f[3].String)
	ack.HeadSeq, err[2] = storedInt(f[4].String)
	tag, err3 := hex.DecodeString(f[8].String)
	list := f[9].String
	signed := ackFields{ack.ID, ack.HeadID, ack.HeadSeq, ack.CreatedAt, ack.Reason, ack.headMac, f[6].String, f[7].String, list}
	if errors.Join(err[0], err[1], err[2], err3) != nil || hex.EncodeToString(tag) != f[8].String || !hmac.Equal(tag, s.tag(&signed)) {
		return Acknowledgement{}, nil, false
	}
	if ack.refs, err[3] = parseRefList(f[6].String); err[3] != nil || refList(ack.refs) != f[6].String {
		return Acknowledgement{}, nil, false
	}
	ack.tag, ack.Digest = f[8].String, f[7].String
	for _, r := range ack.refs {
		ack.Supersedes = append(ack.Supersedes, r.id)
	}
	for line := range strings.Lines(list) {
		var h ackedHead
		fields := strings.Fields(line)
		if len(fields) != 3 || len(fields[2]) != 2*len(h.mac) {
			return Acknowledgement{}, nil, false
		}
		seq, err1 := strconv.ParseInt(fields[0], 10, 64)
		rowID, err2 := strconv.ParseInt(fields[1], 10, 64)
		_, err3 := hex.Decode(h.mac[:], []byte(fields[2]))
		if errors.Join(err1, err2, err3) != nil {
			return Acknowledgement{}, nil, false
		}
		h.seq, h.id = seq, rowID
		heads = append(heads, h)
	}
	ack.describe(heads, nil)
	return ack, heads, true
}

// errNotAsStored: a number in audit_chain_acks is not spelled as SQLite
// spells the integer Acknowledge stored.
var errNotAsStored = errors.New("not an integer as stored")

// storedInt reads a number of audit_chain_acks as readAcks reads it, as
// text, and only as SQLite writes an integer there. The tag covers the
// number, not its spelling: a BLOB that spells the same number another
// way ("010", "+10"), which SQLite keeps as it is where it would make an
// integer of text, reads as the same number and would otherwise keep a
// row that was changed by hand acknowledging.
func storedInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && strconv.FormatInt(n, 10) != s {
		err = errNotAsStored
	}
	return n, err
}

// refList writes refs as Acknowledge stores them: "3:<tag>,7:<tag>", or
// "" for none.
func refList(refs []ackRef) string {
	var b []byte
	for i, r := range refs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, r.id, 10)
		b = append(append(b, ':'), r.tag...)
	}
	return string(b)
}

// parseRefList reads what refList writes.
func parseRefList(s string) ([]ackRef, error) {
	if s == "" {
		return nil, nil
	}
	var refs []ackRef
	for f := range strings.SplitSeq(s, ",") {
		idText, tag, ok := strings.Cut(f, ":")
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil || !ok || len(tag) != 32 {
			return nil, fmt.Errorf("not an acknowledgement: %s", quoted(f))
		}
		refs = append(refs, ackRef{id, tag})
	}
	return refs, nil
}

// ackColumns are audit_chain_acks' columns, with their declared types, as
// migration 7 makes them.
var ackColumns = []string{"id INTEGER PRIMARY KEY", "created_at TEXT", "reason TEXT", "head_id INTEGER", "head_seq INTEGER",
	"head_mac TEXT", "supersedes TEXT", "digest TEXT", "anchors TEXT", "tag TEXT"}

// ackTableIsNotOurs says what makes audit_chain_acks other than the plain
// table migration 7 makes, or "" if nothing does. Verify reads every row
// of it, so a view, a virtual table or a generated column there could
// keep it reading for good or fill the memory; a trigger could make an
// acknowledgement vanish as it is written.
func ackTableIsNotOurs(ctx context.Context, db queryer) (string, error) {
	return tableIsNotOurs(ctx, db, "audit_chain_acks", ackColumns)
}

// tableIsNotOurs says what makes the table name other than the plain
// table with columns (each with its declared type) that the library
// makes, or "" if nothing does.
func tableIsNotOurs(ctx context.Context, db queryer, name string, columns []string) (string, error) {
	if what, err := notATable(ctx, db, name); what != "" || err != nil {
		return what, err
	}
	cols, err := queryStrings(ctx, db, `SELECT name || ' ' || type || CASE pk WHEN 0 THEN '' ELSE ' PRIMARY KEY' END ||
		CASE hidden WHEN 0 THEN '' ELSE ' hidden or generated' END FROM pragma_table_xinfo(?) ORDER BY cid`, name)
	if err != nil {
		return "", err
	}
	if !slices.Equal(cols, columns) {
		return "columns " + schemaNames(cols), nil
	}
	triggers, err := queryStrings(ctx, db, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE`, name)
	if err != nil {
		return "", err
	}
	if len(triggers) > 0 {
		return "triggers " + schemaNames(triggers), nil
	}
	return "", nil
}

// notATable says what name is in the main schema when it is not an
// ordinary table ("there is none", "a view", "a virtual" table, "a
// shadow" table), or "" when it is one. An ordinary table's rows are what
// was stored; anything else computes them, as slowly or endlessly as it was
// written to.
func notATable(ctx context.Context, db queryer, name string) (string, error) {
	kind, err := queryStrings(ctx, db, `SELECT type FROM pragma_table_list WHERE schema = 'main' AND name = ? COLLATE NOCASE`, name)
	switch {
	case err != nil:
		return "", err
	case len(kind) == 0:
		return "there is none", nil
	case kind[0] != "table":
		return "a " + kind[0], nil
	}
	return "", nil
}
