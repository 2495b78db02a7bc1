package audit

import (
	"bytes"
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

// ErrAcknowledge: Acknowledge refused, and wrote nothing. The message says
// why: no reason given, or the chain itself does not verify. (Where it
// could not read the chain, the error is ErrVerify; where it could not
// write, ErrStore.)
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
	// FirstSeq and LastSeq are the lowest and highest chain positions of
	// the heads it lists, for a person to compare with what they expect.
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	headMac  string
}

// maxAckReason bounds an acknowledgement's reason, in bytes.
const maxAckReason = 1000

// Acknowledge records that the chain heads in trek.log which no longer
// match the table are known, for reason (who, and what happened: "restored
// travel.db from the backup of 24 November"), so that Verify stops
// reporting them. It lists exactly those heads: a row deleted later, or
// one whose head is written later, is reported as before.
//
// Only heads can be acknowledged: where the chain itself does not verify
// (a row changed, inserted or missing between others), Acknowledge
// refuses with ErrAcknowledge and says what Verify found. Where every head
// matches, it writes nothing and returns the zero Acknowledgement. On an
// Auditor opened read-only it answers ErrReadOnly. It is safe while TREK
// runs; under a load that keeps the database locked past the busy
// timeout, it fails with ErrStore and can be tried again.
func (a *Auditor) Acknowledge(ctx context.Context, reason string) (Acknowledgement, error) {
	if a.readOnly {
		return Acknowledgement{}, fmt.Errorf("%w: cannot acknowledge", ErrReadOnly)
	}
	if err := checkAckReason(reason); err != nil {
		return Acknowledgement{}, err
	}
	v, err := a.newVerifier(ctx, nil)
	if err != nil {
		return Acknowledgement{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	var conflicts []anchor
	v.collect = &conflicts
	rep, err := v.run(ctx)
	if err != nil {
		return Acknowledgement{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if p := rep.Problem; p != nil {
		return Acknowledgement{}, fmt.Errorf("%w: only chain heads in trek.log that no longer match the table can be acknowledged, "+
			"and the chain itself does not verify: %s at row %d, chain position %d: %s", ErrAcknowledge, p.Kind, p.ID, p.Seq, p.Detail)
	}
	if len(conflicts) == 0 {
		return Acknowledgement{}, nil
	}
	slices.SortFunc(conflicts, func(x, y anchor) int {
		return cmp.Or(cmp.Compare(x.seq, y.seq), cmp.Compare(x.id, y.id), bytes.Compare(x.mac[:], y.mac[:]))
	})
	var list strings.Builder
	for _, c := range conflicts {
		h := headOf(c)
		fmt.Fprintf(&list, "%d %d %x\n", h.seq, h.id, h.mac)
	}
	ack := Acknowledgement{
		CreatedAt: time.Now().UTC().Format("2006-01-02T15:04:05Z"),
		Reason:    reason, Anchors: len(conflicts), HeadID: rep.HeadID, HeadSeq: rep.HeadSeq,
		FirstSeq: conflicts[0].seq, LastSeq: conflicts[len(conflicts)-1].seq,
		headMac: hex.EncodeToString(v.headMac),
	}
	if err := insertAck(ctx, v.db, newAckSigner(v.chain.key), &ack, list.String()); err != nil {
		return Acknowledgement{}, fmt.Errorf("%w: %w", ErrStore, describe("writing the acknowledgement", err))
	}
	return ack, nil
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
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM audit_chain_acks`).Scan(&ack.ID); err != nil {
		return err
	}
	tag := hex.EncodeToString(s.tag(ack, list))
	if _, err := conn.ExecContext(ctx, `INSERT INTO audit_chain_acks (id, created_at, reason, head_id, head_seq, head_mac, anchors, tag)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ack.ID, ack.CreatedAt, ack.Reason, ack.HeadID, ack.HeadSeq, ack.headMac, list, tag); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// checkAckReason: a reason must say something, fit on a line of a report,
// and be text.
func checkAckReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("%w: a reason is required: say who acknowledges and what happened", ErrAcknowledge)
	case len(reason) > maxAckReason:
		return fmt.Errorf("%w: the reason is %d bytes long, more than %d", ErrAcknowledge, len(reason), maxAckReason)
	case !utf8.ValidString(reason):
		return fmt.Errorf("%w: the reason is not valid UTF-8", ErrAcknowledge)
	case strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the reason holds a control character (a line break, a tab, an escape)", ErrAcknowledge)
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

// ackSet is what readAcks found: the acknowledgements whose tag the key
// made, the heads they list, the chain's last row as each recorded it,
// and how many rows carried another tag.
type ackSet struct {
	list     []Acknowledgement
	heads    map[ackedHead]bool
	ends     []anchor
	rejected int
}

// maxAckRow bounds the text of one acknowledgement that readAcks reads
// (about 1.2 million heads): a larger row is not one Acknowledge wrote
// for any log rotation keeps, and is rejected unread.
const maxAckRow = 64 << 20

// readAcks reads audit_chain_acks. Every column is read as text, so that
// no value written behind the library's back stops Verify: a row that
// does not read back exactly as Acknowledge wrote it is rejected.
func readAcks(ctx context.Context, db *sql.DB, key []byte) (ackSet, error) {
	var set ackSet
	// A view of that name (the library makes a table) could be endless.
	var kind sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT type FROM sqlite_master WHERE name = 'audit_chain_acks'`).Scan(&kind); err != nil &&
		!errors.Is(err, sql.ErrNoRows) {
		return set, err
	}
	if kind.String != "table" {
		return set, fmt.Errorf("audit_chain_acks is not the library's table (found: %q): the schema was changed by hand", kind.String)
	}
	// A row too large to be one Acknowledge wrote is rejected by its
	// size, which SQLite reads without the text.
	rows, err := db.QueryContext(ctx, `SELECT fits,
		CASE WHEN fits THEN CAST(id AS TEXT) END, CASE WHEN fits THEN CAST(created_at AS TEXT) END,
		CASE WHEN fits THEN CAST(reason AS TEXT) END, CASE WHEN fits THEN CAST(head_id AS TEXT) END,
		CASE WHEN fits THEN CAST(head_seq AS TEXT) END, CASE WHEN fits THEN CAST(head_mac AS TEXT) END,
		CASE WHEN fits THEN CAST(tag AS TEXT) END, CASE WHEN fits THEN CAST(anchors AS TEXT) END
		FROM (SELECT *, octet_length(id) + octet_length(created_at) + octet_length(reason) + octet_length(head_id) +
			octet_length(head_seq) + octet_length(head_mac) + octet_length(tag) + octet_length(anchors) <= ? AS fits
			FROM audit_chain_acks) ORDER BY id`, maxAckRow)
	if err != nil {
		return set, err
	}
	defer rows.Close()
	s := newAckSigner(key)
	for rows.Next() {
		var fits sql.NullBool
		var f ackRow
		if err := rows.Scan(&fits, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]); err != nil {
			return set, err
		}
		ack, heads, ok := s.parse(f)
		if !ok || !fits.Bool {
			set.rejected++
			continue
		}
		if set.heads == nil {
			set.heads = map[ackedHead]bool{}
		}
		for _, h := range heads {
			set.heads[h] = true
		}
		if ack.HeadSeq > 0 {
			end := anchor{seq: ack.HeadSeq, id: ack.HeadID}
			if !decodeMac(&end.mac, ack.headMac) {
				set.rejected++
				continue
			}
			set.ends = append(set.ends, end)
		}
		set.list = append(set.list, ack)
	}
	return set, rows.Err()
}

// ackSigner makes and checks acknowledgements' tags, under a key derived
// from the chain key for them alone.
type ackSigner struct {
	key []byte
}

func newAckSigner(chainKey []byte) ackSigner {
	derive := hmac.New(sha256.New, chainKey)
	derive.Write([]byte("trek-audit acknowledgement v1"))
	return ackSigner{key: derive.Sum(nil)}
}

// tag covers every field of ack and the list of heads, each
// length-prefixed, so that none can be changed or moved into another.
func (s ackSigner) tag(ack *Acknowledgement, list string) []byte {
	var b []byte
	b = binary.AppendVarint(b, ack.ID)
	for _, f := range [...]string{ack.CreatedAt, ack.Reason, ack.headMac, list} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendVarint(b, ack.HeadID)
	b = binary.AppendVarint(b, ack.HeadSeq)
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return m.Sum(nil)
}

// ackRow is a row of audit_chain_acks as readAcks reads it: id,
// created_at, reason, head_id, head_seq, head_mac, tag, anchors.
type ackRow [8]sql.NullString

// parse checks one row and reads its heads; ok is false unless the tag is
// the key's and every field reads back as Acknowledge writes it.
func (s ackSigner) parse(f ackRow) (ack Acknowledgement, heads []ackedHead, ok bool) {
	for _, c := range f {
		if !c.Valid {
			return Acknowledgement{}, nil, false
		}
	}
	var err [4]error
	ack.ID, err[0] = strconv.ParseInt(f[0].String, 10, 64)
	ack.CreatedAt, ack.Reason, ack.headMac = f[1].String, f[2].String, f[5].String
	ack.HeadID, err[1] = strconv.ParseInt(f[3].String, 10, 64)
	ack.HeadSeq, err[2] = strconv.ParseInt(f[4].String, 10, 64)
	tag, err3 := hex.DecodeString(f[6].String)
	list := f[7].String
	if errors.Join(err[0], err[1], err[2], err3) != nil || !hmac.Equal(tag, s.tag(&ack, list)) {
		return Acknowledgement{}, nil, false
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
	if len(heads) == 0 {
		return Acknowledgement{}, nil, false
	}
	ack.Anchors, ack.FirstSeq, ack.LastSeq = len(heads), heads[0].seq, heads[0].seq
	for _, h := range heads {
		ack.FirstSeq, ack.LastSeq = min(ack.FirstSeq, h.seq), max(ack.LastSeq, h.seq)
	}
	return ack, heads, true
}
