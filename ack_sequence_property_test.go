package audit

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The properties acknowledgements owe an operator over a life of several
// restores, not one: a program of up to ten steps (events recorded;
// travel.db restored from a backup taken at an earlier step, whole or
// audit_log alone, sqlite_sequence set back or not; what Unacknowledged
// shows acknowledged; Acknowledge given a digest shown at an earlier step;
// the Auditor reopened; the oldest chain heads rotated out of trek.log)
// runs on one database and one trek.log, and after every step Verify and
// Unacknowledged are checked against a model kept here, built from the
// README's "Tamper evidence" section and the API's documentation:
//
//  1. Verify is intact exactly when every chain head in trek.log that does
//     not match the row now at its position is listed by an
//     acknowledgement in audit_chain_acks, and every acknowledgement not
//     superseded still finds the chain's last row it recorded; otherwise
//     it reports rows missing, acknowledgeably, at the first position in
//     chain order that disagrees (or past the chain's end), and never
//     errs. The README: "It compares each with the row now at that chain
//     position, so rows cut off the end are found even after new events
//     have chained onto what was left"; "`verify` then passes over those
//     heads, counts them (`acknowledged_anchors`) and shows every
//     acknowledgement in its report. Every other head, those written later
//     included, is checked as before, and so is the last row the
//     acknowledgement recorded"; and "`verify` stops at its first problem",
//     so the rows it counts checked are those before it. A restore of a
//     backup older than an acknowledgement takes its row away, and "deleting
//     its row brings the report back".
//  2. Unacknowledged shows exactly the heads the model calls lost and not
//     yet acknowledged, by kind and position, and nothing right after a
//     successful Acknowledge: "the first command shows all of them, by
//     kind and chain position: the chain heads that name a position the
//     table holds another row at, those past the chain's last row, and
//     ... positions named by heads of more than one history: rows were
//     written there more than once, and this history's are gone". A head
//     an earlier acknowledgement lists counts towards those whether or not
//     its row is back: "counted as it was when that was acknowledged, even
//     where a later restore brought its row back". Acknowledge records it
//     only while it has the digest shown: "The
//     digest names the heads, the acknowledgements superseded and the
//     chain's last row as shown, so rows TREK records meanwhile change
//     nothing; a refusal does not give the new digest". So a digest shown
//     at an earlier step is accepted exactly when those three are still
//     what they were, refused with ErrAcknowledge otherwise, and one digest
//     never names two different things.
//  3. An acknowledgement supersedes exactly the earlier ones, not yet
//     superseded, whose record of the chain's last row no longer matches:
//     "Where that record no longer matches (`audit_log` restored alone
//     under it, or rebuilt by TREK, rows deleted since), `verify` reports
//     rows missing, as a head in trek.log of the same row would, and a new
//     acknowledgement supersedes the earlier one"; and, from
//     Acknowledgement.Supersedes, "Verify no longer checks those records.
//     The heads they list stay acknowledged." Verify's counts (heads read,
//     acknowledged, rejected; acknowledgements shown, oldest first, as
//     Acknowledge returned them, and rejected; rows checked; the chain's
//     last row) are the model's.
//  4. Acknowledge "writes one row of `audit_chain_acks` and nothing else"
//     (the README's table of commands), a refusal writes nothing, and the
//     rows recorded after an acknowledgement are chained where the model
//     puts them and verify.
//
// The model knows a chained row by its id, its chain position and the
// resource its event was recorded with, which no other event shares: a
// chain head names its row's chain value, which covers the resource, so a
// head matches the row at its position exactly when the labels are the
// same. A backup of the whole file that holds an acknowledgement holds the
// chain's last row it recorded too, so restoring whole files never makes
// that record disagree ("A restore of the whole travel.db takes its
// acknowledgements with it"): restoring audit_log alone does (the README's
// "`audit_log` restored alone under it"), and, once trek.log's heads have
// rotated out, that record is all that finds rows lost.
//
// A program may also prune (Prune: the rows recorded before the k-th
// newest, k from 2 to 5), and the model holds the README's "Deleting old
// entries" too:
//
//  5. Prune refuses, and changes nothing, unless Verify finds the chain
//     intact; otherwise it deletes exactly those rows and writes one row
//     of audit_prunes, and nothing else. Verify "then starts its walk at
//     that row, after that chain value, where the table's first chained
//     row is the one a record names, or follows it: positions from the
//     record's start to the table's first row were not deleted by
//     `prune`, and are reported gone"; the heads of the rows deleted are
//     passed over and counted (`pruned_anchors`). A record is in
//     audit_prunes, so a whole-file restore takes it with the rows and a
//     restore of audit_log alone leaves it: "Rows that a restore of
//     `audit_log` alone brings back from before a pruning verify as
//     before, from position 1", and rows of a pruned backup put back
//     under a table that no longer holds its record are reported gone,
//     which neither acknowledging nor pruning settles.

// seqKind is what one step of a program does.
type seqKind uint8

const (
	seqRecord      seqKind = iota // n events recorded, 1 to 5
	seqRestore                    // travel.db (or audit_log alone) restored from backup n
	seqAcknowledge                // what Unacknowledged shows, acknowledged with its digest
	seqEarlier                    // Acknowledge given the n-th distinct digest shown so far
	seqReopen                     // the Auditor closed and opened again
	seqRotate                     // the n oldest chain heads (1 to 16) rotated out of trek.log
	seqPrune                      // the rows recorded before the n-th newest (2 to 5) pruned
	seqKinds
)

// maxSeqSteps bounds a program: enough for three restores with
// acknowledgements, events and a rotation between, which a digest that
// named less than it should needs to show, and an input still runs in a
// fraction of a second.
const maxSeqSteps = 10

// seqStep is one step of a program.
type seqStep struct {
	kind      seqKind
	n         int
	tableOnly bool // seqRestore: audit_log alone restored, audit_chain_acks kept as it is
	keepSeq   bool // seqRestore: sqlite_sequence not set back, so lost ids are not given again
	backup    bool // then travel.db is backed up, the Auditor closed
}

// String says what s does, for the transcript a failure prints.
func (s seqStep) String() string {
	var d string
	switch s.kind {
	case seqRecord:
		d = fmt.Sprintf("record %d events", s.n)
	case seqRestore:
		d = fmt.Sprintf("restore travel.db from backup %d", s.n)
		if s.tableOnly {
			d = fmt.Sprintf("restore audit_log alone from backup %d", s.n)
		}
		if s.keepSeq {
			d += ", sqlite_sequence not set back"
		}
	case seqAcknowledge:
		d = "acknowledge what Unacknowledged shows"
	case seqEarlier:
		d = fmt.Sprintf("acknowledge with digest %d shown earlier", s.n)
	case seqReopen:
		d = "close and reopen the Auditor"
	case seqRotate:
		d = fmt.Sprintf("rotate the %d oldest chain heads out of trek.log", s.n)
	case seqPrune:
		d = fmt.Sprintf("prune all but the %d newest rows", s.n)
	}
	if s.backup {
		d += ", then back travel.db up"
	}
	return d
}

// encode is the two bytes decodeSeqProgram reads back as s: the kind, then
// an argument whose high bit asks for a backup.
func (s seqStep) encode() []byte {
	var arg byte
	switch s.kind {
	case seqRecord, seqRotate:
		arg = byte(s.n - 1)
	case seqRestore:
		arg = byte(s.n<<2) | flagBit(s.tableOnly)<<1 | flagBit(s.keepSeq)
	case seqEarlier:
		arg = byte(s.n)
	case seqPrune:
		arg = byte(s.n - 2)
	}
	return []byte{byte(s.kind), arg | flagBit(s.backup)<<7}
}

// flagBit is 1 for true.
func flagBit(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// decodeSeqProgram reads a program two bytes a step, up to maxSeqSteps:
// every input is a program. A backup or a digest is named by its index,
// taken modulo those there are when the step runs.
func decodeSeqProgram(in []byte) []seqStep {
	r := &tamperBytes{in}
	var prog []seqStep
	for len(r.b) > 0 && len(prog) < maxSeqSteps {
		kind, arg := seqKind(r.next()%byte(seqKinds)), r.next()
		s := seqStep{kind: kind, backup: arg&0x80 != 0}
		arg &= 0x7f
		switch kind {
		case seqRecord:
			s.n = 1 + int(arg)%5
		case seqRotate:
			s.n = 1 + int(arg)%16
		case seqRestore:
			s.n, s.tableOnly, s.keepSeq = int(arg>>2), arg&2 != 0, arg&1 != 0
		case seqEarlier:
			s.n = int(arg)
		case seqPrune:
			s.n = 2 + int(arg)%4
		}
		prog = append(prog, s)
	}
	return prog
}

// encodeSeqProgram is the input decodeSeqProgram reads back as prog: the
// named cases seed the fuzz target with it.
func encodeSeqProgram(prog []seqStep) []byte {
	var b []byte
	for _, s := range prog {
		b = append(b, s.encode()...)
	}
	return b
}

// seqRow is a chained row as the model knows it, and a chain head as the
// model knows it: the head of that row.
type seqRow struct {
	id, seq int64
	label   string // the event's resource, which no other event shares
}

// seqAckKey names an acknowledgement in the model: ids are given again
// once a restore takes the newest rows of audit_chain_acks away, so each
// Acknowledge that writes also gets a number of its own.
type seqAckKey struct {
	id     int64
	serial int
}

// seqAck is an acknowledgement as the model knows it.
type seqAck struct {
	key        seqAckKey
	got        Acknowledgement // as Acknowledge returned it
	heads      []seqRow        // the heads it lists
	end        seqRow          // the chain's last row when made; seq 0: the table held none
	supersedes []seqAckKey
}

// seqPruning is a record of a pruning as the model knows it: the first row
// kept, and the label of the last one deleted, whose chain value it
// records.
type seqPruning struct {
	first seqRow
	prev  string
}

// seqModel is what the README says travel.db and trek.log hold.
type seqModel struct {
	rows   []seqRow     // audit_log's chained rows, in chain order, from position 1 or where a pruning left it
	log    []seqRow     // the chain heads in trek.log, oldest first
	acks   []seqAck     // audit_chain_acks, oldest first
	prunes []seqPruning // audit_prunes, oldest first
	seqNo  int64        // sqlite_sequence's value for audit_log
	// prevOf is, by label, the label of the row each row was chained
	// after ("" at position 1): a fact of history, which no restore changes.
	prevOf map[string]string
}

// clone is m as a backup keeps it: later steps append to the slices.
func (m *seqModel) clone() seqModel {
	return seqModel{rows: slices.Clone(m.rows), log: slices.Clone(m.log), acks: slices.Clone(m.acks), prunes: slices.Clone(m.prunes),
		seqNo: m.seqNo, prevOf: m.prevOf}
}

// start is where Verify's walk starts: position 1, or the table's first
// row where a record of a pruning names its position and the row it
// follows. broken: the table's first row is past position 1 and no
// record accounts for it; start is then the furthest a record reaches
// without passing it (the row's own position: a record names it, but
// another row before it), 1 if none does.
func (m *seqModel) start() (start int64, broken bool) {
	if len(m.rows) == 0 || m.rows[0].seq == 1 {
		return 1, false
	}
	first := m.rows[0]
	best := int64(1)
	for _, p := range m.prunes {
		if p.first.seq == first.seq && m.prevOf[first.label] == p.prev {
			return first.seq, false
		}
		if p.first.seq <= first.seq {
			best = max(best, p.first.seq)
		}
	}
	return best, true
}

// last is the chain's last row; the zero seqRow when there is none.
func (m *seqModel) last() seqRow {
	if len(m.rows) == 0 {
		return seqRow{}
	}
	return m.rows[len(m.rows)-1]
}

// at is the row at chain position seq.
func (m *seqModel) at(seq int64) (seqRow, bool) {
	if len(m.rows) == 0 || seq < m.rows[0].seq || seq > m.last().seq {
		return seqRow{}, false
	}
	return m.rows[seq-m.rows[0].seq], true
}

// matches: the row a head (or a record of the chain's last row) names is
// the one now at its position.
func (m *seqModel) matches(h seqRow) bool {
	r, ok := m.at(h.seq)
	return ok && r == h
}

// record adds the row of an event labelled label: the next chain position,
// and the id AUTOINCREMENT gives, past sqlite_sequence and every id there.
func (m *seqModel) record(label string) seqRow {
	r := seqRow{id: max(m.seqNo, m.last().id) + 1, seq: m.last().seq + 1, label: label}
	m.prevOf[label] = m.last().label
	m.rows = append(m.rows, r)
	m.log = append(m.log, r)
	m.seqNo = r.id
	return r
}

// acked are the heads the acknowledgements in audit_chain_acks list,
// superseded ones included.
func (m *seqModel) acked() map[seqRow]bool {
	set := map[seqRow]bool{}
	for _, a := range m.acks {
		for _, h := range a.heads {
			set[h] = true
		}
	}
	return set
}

// pending is what there is to acknowledge: the heads in trek.log that do
// not match the table and no acknowledgement lists, by position, and the
// acknowledgements not yet superseded whose record of the chain's last
// row does not match, oldest first.
func (m *seqModel) pending() (heads []seqRow, sup []seqAck) {
	acked := m.acked()
	start, _ := m.start()
	for _, h := range m.log {
		if h.seq >= start && !m.matches(h) && !acked[h] && !slices.Contains(heads, h) {
			heads = append(heads, h)
		}
	}
	slices.SortFunc(heads, func(x, y seqRow) int {
		if x.seq != y.seq {
			return int(x.seq - y.seq)
		}
		return strings.Compare(x.label, y.label)
	})
	superseded := map[seqAckKey]bool{}
	for _, a := range m.acks {
		for _, k := range a.supersedes {
			superseded[k] = true
		}
	}
	for _, a := range m.acks {
		if !superseded[a.key] && a.end.seq > 0 && a.end.seq >= start && !m.matches(a.end) {
			sup = append(sup, a)
		}
	}
	return heads, sup
}

// nothing: there is nothing to acknowledge, and Verify reports the chain
// intact.
func (m *seqModel) nothing() bool {
	heads, sup := m.pending()
	_, broken := m.start()
	return !broken && len(heads) == 0 && len(sup) == 0
}

// identity is what a digest shown with the chain's last row at shownSeq
// names, as the model writes it: that row, the heads, the records
// superseded.
func (m *seqModel) identity(shownSeq int64) string {
	heads, sup := m.pending()
	var b strings.Builder
	row := "none"
	if r, ok := m.at(shownSeq); ok {
		row = r.label
	}
	fmt.Fprintf(&b, "position %d holding %s; heads", shownSeq, row)
	for _, h := range heads {
		fmt.Fprintf(&b, " %d/%d/%s", h.seq, h.id, h.label)
	}
	b.WriteString("; superseding")
	for _, a := range sup {
		fmt.Fprintf(&b, " %d/%d", a.key.id, a.key.serial)
	}
	return b.String()
}

// ackView is what an Acknowledgement says about what it lists.
type ackView struct {
	Anchors, Differing, PastEnd, Doubled int
	DifferingAt, PastEndAt, DoubledAt    string
	HeadID, HeadSeq                      int64
	Supersedes                           []int64
}

// viewOf is a's view, compared whole so that a failure shows every field.
func viewOf(a Acknowledgement) ackView {
	return ackView{a.Anchors, a.Differing, a.PastEnd, a.Doubled, a.DifferingAt, a.PastEndAt, a.DoubledAt, a.HeadID, a.HeadSeq, a.Supersedes}
}

// expectShown is what Unacknowledged shows, and Acknowledge records, by
// the model: the heads by kind and position (positions as "6-10,14"), the
// positions that one of these heads and a head of another history name
// (another of these, or one an earlier acknowledgement lists, whether or
// not its row is back since: what was acknowledged stays as it was
// counted, and Acknowledgements reads the count back from the heads
// alone), the chain's last row, and the ids of the acknowledgements
// superseded.
func (m *seqModel) expectShown() ackView {
	heads, sup := m.pending()
	last := m.last()
	v := ackView{Anchors: len(heads), HeadID: last.id, HeadSeq: last.seq}
	var differing, pastEnd []int64
	named := map[int64]map[string]bool{}
	for _, h := range heads {
		if h.seq > last.seq {
			pastEnd = append(pastEnd, h.seq)
		} else {
			differing = append(differing, h.seq)
		}
		if named[h.seq] == nil {
			named[h.seq] = map[string]bool{}
		}
		named[h.seq][h.label] = true
	}
	for _, a := range m.acks {
		for _, h := range a.heads {
			if named[h.seq] != nil {
				named[h.seq][h.label] = true
			}
		}
	}
	var doubled []int64
	for seq, labels := range named {
		if len(labels) > 1 {
			doubled = append(doubled, seq)
		}
	}
	v.Differing, v.DifferingAt = len(differing), seqSpans(differing)
	v.PastEnd, v.PastEndAt = len(pastEnd), seqSpans(pastEnd)
	v.Doubled, v.DoubledAt = len(doubled), seqSpans(doubled)
	for _, a := range sup {
		v.Supersedes = append(v.Supersedes, a.key.id)
	}
	return v
}

// seqSpans writes positions as the API documents them: "6-10,14".
func seqSpans(seqs []int64) string {
	seqs = slices.Compact(slices.Sorted(slices.Values(seqs)))
	var spans []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if j > i {
			spans = append(spans, fmt.Sprintf("%d-%d", seqs[i], seqs[j]))
		} else {
			spans = append(spans, fmt.Sprint(seqs[i]))
		}
		i = j + 1
	}
	return strings.Join(spans, ",")
}

// seqReport is what the model predicts of a VerifyReport.
type seqReport struct {
	Intact                                                      bool
	Checked, Unchained, HeadID, HeadSeq                         int64
	Anchors, AcknowledgedAnchors, RejectedAnchors               int
	SkippedLogFiles, RejectedAcknowledgements, Acknowledgements int
	StartSeq                                                    int64
	PrunedAnchors, Prunings, RejectedPrunings                   int
	Problem                                                     *seqProblem
}

// seqProblem is what the model predicts of Verify's first problem.
type seqProblem struct {
	Kind            TamperKind
	ID, Seq         int64
	Acknowledgeable bool
}

// reportOf is rep's view, compared whole so that a failure shows every
// field.
func reportOf(rep VerifyReport) seqReport {
	r := seqReport{rep.Intact, rep.Checked, rep.Unchained, rep.HeadID, rep.HeadSeq, rep.Anchors, rep.AcknowledgedAnchors,
		rep.RejectedAnchors, rep.SkippedLogFiles, rep.RejectedAcknowledgements, len(rep.Acknowledgements),
		rep.StartSeq, rep.PrunedAnchors, len(rep.Prunings), rep.RejectedPrunings, nil}
	if p := rep.Problem; p != nil {
		r.Problem = &seqProblem{p.Kind, p.ID, p.Seq, p.Acknowledgeable}
	}
	return r
}

// expectReport is Verify's report by the model. The first problem in
// chain order is at the lowest position that disagrees, where the walk
// stops, and at the position past the chain's end (row 0) when all that
// disagree are past it.
func (m *seqModel) expectReport() seqReport {
	last := m.last()
	start, broken := m.start()
	r := seqReport{Intact: m.nothing(), Checked: int64(len(m.rows)), HeadID: last.id, HeadSeq: last.seq,
		Anchors: len(m.log), Acknowledgements: len(m.acks), StartSeq: start, Prunings: len(m.prunes)}
	acked := m.acked()
	for _, h := range m.log {
		if acked[h] {
			r.AcknowledgedAnchors++
		} else if h.seq < start {
			r.PrunedAnchors++
		}
	}
	if broken {
		// The walk stops at the table's first row: nothing checked. A
		// record names its position but another row before it (the row
		// reads as changed), or positions before it are gone, from the
		// furthest a record reaches (1: none does).
		first := m.rows[0]
		r.Checked, r.HeadID, r.HeadSeq = 0, 0, 0
		r.Problem = &seqProblem{Kind: TamperMissing, ID: first.id, Seq: start}
		if start == first.seq {
			r.Problem.Kind = TamperChanged
		}
		return r
	}
	if r.Intact {
		return r
	}
	p := &seqProblem{Kind: TamperMissing, Seq: last.seq + 1, Acknowledgeable: true}
	heads, sup := m.pending()
	var lost []int64
	for _, h := range heads {
		lost = append(lost, h.seq)
	}
	for _, a := range sup {
		lost = append(lost, a.end.seq)
	}
	for _, seq := range lost {
		if row, ok := m.at(seq); ok && seq < p.Seq {
			p.ID, p.Seq = row.id, seq
		}
	}
	r.Problem = p
	if p.ID != 0 {
		// The walk stopped there: the rows before it are those checked.
		before, _ := m.at(p.Seq - 1)
		r.Checked, r.HeadSeq, r.HeadID = p.Seq-start, before.seq, before.id
	}
	return r
}

// seqBackup is a copy of travel.db, and what the model says it holds.
type seqBackup struct {
	db []byte
	m  seqModel
}

// seqShown is a digest Unacknowledged showed, and what it named.
type seqShown struct {
	digest   string
	seq      int64 // the chain's last row's position then
	identity string
}

// seqOutcome is what a program did, for the named cases to check that
// each did what its name says.
type seqOutcome struct {
	acks      []Acknowledgement // written, in order
	refused   int               // digests shown earlier that Acknowledge refused
	accepted  int               // digests shown earlier that it accepted
	nothing   int               // acknowledge steps that found nothing to acknowledge
	lost      int               // checks whose report was not intact
	problems  []seqProblem      // the problems those reported
	lastShown Acknowledgement   // the last Unacknowledged that showed something
	final     VerifyReport
	prunings  []Pruning // written, in order
	// pruneRefused counts the prunings refused, the chain not intact.
	pruneRefused int
}

// seqRun runs a program on one travel.db and trek.log.
type seqRun struct {
	t       *testing.T
	cfg     Config
	a       *Auditor // nil while closed
	m       seqModel
	backups []seqBackup
	shown   []seqShown
	events  int
	serial  int
	strict  bool // a backup or a digest index past those there are fails the test, rather than wrapping
	done    []string
	out     seqOutcome
	// at is when each event was recorded, by label: a minute apart, on
	// the Auditor's clock, so that a pruning can name the rows before one.
	at map[string]time.Time
}

// seqEpoch is when the first event of a program is recorded.
var seqEpoch = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// now is the Auditor's clock: a minute past the newest event.
func (r *seqRun) now() time.Time { return seqEpoch.Add(time.Duration(r.events+1) * time.Minute) }

// runAckSequence runs prog and checks every step against the model.
// Backup 0 is travel.db as the first Open leaves it, before any event.
func runAckSequence(t *testing.T, prog []seqStep, strict bool) seqOutcome {
	t.Helper()
	cfg := testConfig(t)
	cfg.ChainKey = faultChainKey
	r := &seqRun{t: t, cfg: cfg, strict: strict, m: seqModel{prevOf: map[string]string{}}, at: map[string]time.Time{}}
	r.open()
	r.backUp()
	r.check()
	for i, s := range prog {
		r.done = append(r.done, fmt.Sprintf("%d. %s", i+1, s))
		r.step(i, s)
		r.check()
	}
	r.close()
	return r.out
}

// after says what the program did so far, for a failure's message.
func (r *seqRun) after() string {
	return "after:\n" + strings.Join(r.done, "\n")
}

// note adds what a step found to its line in the transcript.
func (r *seqRun) note(format string, args ...any) {
	r.done[len(r.done)-1] += " (" + fmt.Sprintf(format, args...) + ")"
}

// open opens the Auditor if it is closed; the steps that change the
// files close it first, as an operator stops the server.
func (r *seqRun) open() {
	r.t.Helper()
	if r.a == nil {
		a, err := Open(r.cfg)
		require.NoError(r.t, err, "Open, %s", r.after())
		r.t.Cleanup(func() { a.Close() })
		a.now = r.now
		r.a = a
	}
}

// close closes the Auditor if it is open.
func (r *seqRun) close() {
	r.t.Helper()
	if r.a != nil {
		require.NoError(r.t, r.a.Close(), r.after())
		r.a = nil
	}
}

// step runs step i of the program, s, and keeps the model in step with it.
func (r *seqRun) step(i int, s seqStep) {
	r.t.Helper()
	switch s.kind {
	case seqRecord:
		r.open()
		for range s.n {
			label := fmt.Sprintf("event %d", r.events+1)
			r.at[label] = r.now()
			require.NoError(r.t, r.a.Record(r.t.Context(), Event{Action: UserLogin, Resource: label}), r.after())
			r.events++
			r.m.record(label)
		}
	case seqRestore:
		r.restore(s)
	case seqAcknowledge:
		r.open()
		shown := r.show()
		if shown.Digest == "" {
			r.out.nothing++
			r.note("nothing to acknowledge")
			break
		}
		r.acknowledge(i, shown.Digest, true)
	case seqEarlier:
		r.open()
		if len(r.shown) == 0 {
			require.False(r.t, r.strict, "no digest shown yet, %s", r.after())
			r.note("no digest shown yet")
			break
		}
		require.False(r.t, r.strict && s.n >= len(r.shown), "digest %d of %d, %s", s.n, len(r.shown), r.after())
		d := r.shown[s.n%len(r.shown)]
		accept := !r.m.nothing() && r.m.identity(d.seq) == d.identity
		if accept {
			r.note("%s, which the model says is still current", d.digest)
		} else {
			r.note("%s, which the model says is stale", d.digest)
		}
		if r.acknowledge(i, d.digest, accept) {
			r.out.accepted++
		} else {
			r.out.refused++
		}
	case seqReopen:
		r.close()
		r.open()
	case seqRotate:
		r.rotate(s.n)
	case seqPrune:
		r.prune(s.n)
	}
	if s.backup {
		r.backUp()
		r.note("backup %d", len(r.backups)-1)
	}
}

// backUp copies travel.db with the Auditor closed, as an operator's backup
// of a stopped server is.
func (r *seqRun) backUp() {
	r.t.Helper()
	r.close()
	for _, suffix := range []string{"-wal", "-journal"} {
		info, err := os.Stat(r.cfg.DBPath + suffix)
		require.True(r.t, os.IsNotExist(err) || (err == nil && info.Size() == 0), "travel.db%s holds data a copy would lack", suffix)
	}
	b, err := os.ReadFile(r.cfg.DBPath)
	require.NoError(r.t, err)
	r.backups = append(r.backups, seqBackup{db: b, m: r.m.clone()})
}

// restore puts backup s.n back with the Auditor closed: the whole file,
// audit_chain_acks with it, or audit_log's rows alone. trek.log stays as
// it is. sqlite_sequence is the backup's, or, with s.keepSeq, kept from
// before the restore (never below the backup's).
func (r *seqRun) restore(s seqStep) {
	r.t.Helper()
	require.False(r.t, r.strict && s.n >= len(r.backups), "backup %d of %d, %s", s.n, len(r.backups), r.after())
	idx := s.n % len(r.backups)
	b := r.backups[idx]
	if idx != s.n {
		r.note("backup %d", idx)
	}
	r.close()
	seqNo := b.m.seqNo
	if s.keepSeq {
		seqNo = max(seqNo, r.m.seqNo)
	}
	if s.tableOnly {
		copyPath := filepath.Join(r.t.TempDir(), "backup.db")
		require.NoError(r.t, os.WriteFile(copyPath, b.db, 0o600))
		db := openPlainDB(r.t, r.cfg.DBPath)
		db.SetMaxOpenConns(1) // ATTACH holds for its connection only
		_, err := db.Exec(`ATTACH DATABASE ? AS backup`, copyPath)
		require.NoError(r.t, err)
		for _, q := range []string{`BEGIN`, `DELETE FROM main.audit_log`, `INSERT INTO main.audit_log SELECT * FROM backup.audit_log`,
			`COMMIT`, `DETACH DATABASE backup`} {
			_, err := db.Exec(q)
			require.NoError(r.t, err, q)
		}
		setAuditSequence(r.t, db, seqNo)
		require.NoError(r.t, db.Close())
		r.m.rows = slices.Clone(b.m.rows) // audit_chain_acks and audit_prunes as they are
	} else {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			require.NoError(r.t, os.RemoveAll(r.cfg.DBPath+suffix))
		}
		require.NoError(r.t, os.WriteFile(r.cfg.DBPath, b.db, 0o600))
		if seqNo != b.m.seqNo {
			db := openPlainDB(r.t, r.cfg.DBPath)
			setAuditSequence(r.t, db, seqNo)
			require.NoError(r.t, db.Close())
		}
		r.m.rows, r.m.acks, r.m.prunes = slices.Clone(b.m.rows), slices.Clone(b.m.acks), slices.Clone(b.m.prunes)
	}
	r.m.seqNo = seqNo
}

// setAuditSequence sets sqlite_sequence's value for audit_log, which
// AUTOINCREMENT gives ids past.
func setAuditSequence(t *testing.T, db *sql.DB, seqNo int64) {
	t.Helper()
	res, err := db.Exec(`UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit_log'`, seqNo)
	require.NoError(t, err)
	if n, err := res.RowsAffected(); err == nil && n == 0 && seqNo > 0 {
		_, err = db.Exec(`INSERT INTO sqlite_sequence (name, seq) VALUES ('audit_log', ?)`, seqNo)
		require.NoError(t, err)
	}
}

// rotate takes the n oldest chain heads out of trek.log, with every line
// before them, as rotation does on a quiet instance once their files are
// removed.
func (r *seqRun) rotate(n int) {
	r.t.Helper()
	r.close()
	lines := logLines(r.t, r.cfg.LogPath)
	var heads []int
	for i, l := range lines {
		if chainAnchorLine.MatchString(l) {
			heads = append(heads, i)
		}
	}
	require.Len(r.t, heads, len(r.m.log), "trek.log holds a chain head for each event the model has there")
	n = min(n, len(heads))
	if n == 0 {
		return
	}
	var kept []byte
	for _, l := range lines[heads[n-1]+1:] {
		kept = append(kept, l+"\n"...)
	}
	require.NoError(r.t, os.WriteFile(r.cfg.LogPath, kept, 0o600))
	r.m.log = slices.Clone(r.m.log[n:])
}

// seqFiles is everything Acknowledge could write: audit_log and
// audit_chain_acks as stored, and trek.log.
type seqFiles struct {
	rows   []tamperRow
	acks   []ackText
	prunes [][]sql.NullString
	log    []byte
}

// files reads them, through a handle closed before it returns.
func (r *seqRun) files() seqFiles {
	r.t.Helper()
	db := openPlainDB(r.t, r.cfg.DBPath)
	f := seqFiles{rows: readTamperRows(r.t, db), acks: readAckTexts(r.t, db), prunes: readTableTexts(r.t, db, "audit_prunes", recordColumns),
		log: readLog(r.t, r.cfg.LogPath)}
	require.NoError(r.t, db.Close())
	return f
}

// acknowledge calls Acknowledge with digest at step i, and checks that it
// recorded what the model says there is, or, when accept is false, that
// it refused and wrote nothing. It returns whether it recorded.
func (r *seqRun) acknowledge(i int, digest string, accept bool) bool {
	r.t.Helper()
	ctx := r.t.Context()
	want := r.m.expectShown()
	heads, sup := r.m.pending()
	nothing := r.m.nothing()
	before := r.files()
	reason := fmt.Sprintf("restored travel.db from a backup (step %d)", i+1)
	got, err := r.a.Acknowledge(ctx, reason, digest)
	after := r.files()

	if !accept {
		require.ErrorIs(r.t, err, ErrAcknowledge, "a digest the model calls stale, %s", r.after())
		assert.Zero(r.t, got, r.after())
		assert.Equal(r.t, before, after, "a refusal writes nothing, %s", r.after())
		if _, broken := r.m.start(); broken {
			assert.Contains(r.t, err.Error(), "the chain itself does not verify", r.after())
		} else if nothing {
			assert.Contains(r.t, err.Error(), "nothing to acknowledge", r.after())
		} else {
			now, err2 := r.a.Unacknowledged(ctx)
			require.NoError(r.t, err2)
			_, hash, _ := strings.Cut(now.Digest, "-")
			assert.NotContains(r.t, err.Error(), hash, "a refusal does not give the new digest, %s", r.after())
		}
		return false
	}
	require.NoError(r.t, err, "the model says %q is still what there is to acknowledge, %s", digest, r.after())
	assert.Equal(r.t, want, viewOf(got), "what it recorded, %s", r.after())
	assert.Equal(r.t, digest, got.Digest, r.after())
	assert.Equal(r.t, reason, got.Reason, r.after())
	for _, a := range r.m.acks {
		assert.Greater(r.t, got.ID, a.got.ID, "the newest is shown last (oldest first), %s", r.after())
	}
	assert.Equal(r.t, before.rows, after.rows, "audit_log untouched, %s", r.after())
	assert.Equal(r.t, before.prunes, after.prunes, "audit_prunes untouched, %s", r.after())
	assert.Equal(r.t, before.log, after.log, "trek.log untouched, %s", r.after())
	if assert.Len(r.t, after.acks, len(before.acks)+1, "one row of audit_chain_acks written, %s", r.after()) && len(before.acks) > 0 {
		assert.Equal(r.t, before.acks, after.acks[:len(before.acks)], "the others untouched, %s", r.after())
	}

	r.serial++
	a := seqAck{key: seqAckKey{got.ID, r.serial}, got: got, heads: heads, end: r.m.last()}
	for _, s := range sup {
		a.supersedes = append(a.supersedes, s.key)
	}
	r.m.acks = append(r.m.acks, a)
	r.out.acks = append(r.out.acks, got)
	r.note("acknowledgement %d", got.ID)
	return true
}

// show calls Unacknowledged and checks what it shows against the model;
// a digest is kept, with what the model says it names, for seqEarlier.
func (r *seqRun) show() Acknowledgement {
	r.t.Helper()
	shown, err := r.a.Unacknowledged(r.t.Context())
	if _, broken := r.m.start(); broken {
		require.ErrorIs(r.t, err, ErrAcknowledge, "the chain in the table does not verify, %s", r.after())
		assert.Contains(r.t, err.Error(), "the chain itself does not verify", r.after())
		return Acknowledgement{}
	}
	require.NoError(r.t, err, "the chain in the table verifies, %s", r.after())
	if r.m.nothing() {
		assert.Zero(r.t, shown, "nothing to acknowledge, %s", r.after())
		return shown
	}
	last := r.m.last()
	assert.Equal(r.t, r.m.expectShown(), viewOf(shown), "what there is to acknowledge, %s", r.after())
	assert.Regexp(r.t, fmt.Sprintf(`^%d-[0-9a-f]{16}$`, last.seq), shown.Digest, r.after())
	assert.Zero(r.t, shown.ID, r.after())
	assert.Empty(r.t, shown.Reason, r.after())
	id := r.m.identity(last.seq)
	known := false
	for _, d := range r.shown {
		if d.digest == shown.Digest {
			assert.Equal(r.t, d.identity, id, "one digest named two different things, %s", r.after())
			known = true
		} else {
			assert.NotEqual(r.t, d.identity, id, "the same thing shown under digests %s and %s, %s", d.digest, shown.Digest, r.after())
		}
	}
	if !known {
		r.shown = append(r.shown, seqShown{digest: shown.Digest, seq: last.seq, identity: id})
	}
	r.out.lastShown = shown
	return shown
}

// check compares the table, Verify's report and Unacknowledged with the
// model.
func (r *seqRun) check() {
	r.t.Helper()
	r.open()
	db := openPlainDB(r.t, r.cfg.DBPath)
	var rows []seqRow
	q, err := db.Query(`SELECT id, chain_seq, resource FROM audit_log ORDER BY id`)
	require.NoError(r.t, err)
	defer q.Close()
	for q.Next() {
		var row seqRow
		require.NoError(r.t, q.Scan(&row.id, &row.seq, &row.label), "every row chained")
		rows = append(rows, row)
	}
	require.NoError(r.t, q.Err())
	require.NoError(r.t, db.Close())
	require.Equal(r.t, r.m.rows, rows, "the chained rows where the model puts them, %s", r.after())

	rep, err := r.a.Verify(r.t.Context())
	require.NoError(r.t, err, r.after())
	want := r.m.expectReport()
	assert.Equal(r.t, want, reportOf(rep), "Verify's report (%+v), %s", rep.Problem, r.after())
	var acks []Acknowledgement
	for _, a := range r.m.acks {
		acks = append(acks, a.got)
	}
	assert.Equal(r.t, acks, rep.Acknowledgements, "every acknowledgement, oldest first, as written, %s", r.after())
	if rep.Problem != nil {
		r.out.lost++
		r.out.problems = append(r.out.problems, *reportOf(rep).Problem)
	}
	r.out.final = rep
	shown := r.show()
	if _, broken := r.m.start(); !broken {
		assert.Equal(r.t, rep.Intact, shown.Digest == "", "Verify is intact exactly when there is nothing to acknowledge, %s", r.after())
	}
}

// prune prunes the rows recorded before the keep-th newest, and checks
// that it deleted what the model says, wrote its one record and nothing
// else, or refused and changed nothing where the chain is not intact.
func (r *seqRun) prune(keep int) {
	r.t.Helper()
	r.open()
	rows := r.m.rows
	before := r.now()
	cut := max(len(rows)-keep, 0)
	if len(rows) > 0 {
		before = r.at[rows[cut].label]
	}
	was := r.files()
	p, err := r.a.Prune(r.t.Context(), before, "kept for a while")
	now := r.files()
	if !r.m.nothing() {
		require.ErrorIs(r.t, err, ErrPrune, "the chain is not intact, %s", r.after())
		assert.Contains(r.t, err.Error(), "the chain does not verify", r.after())
		assert.Zero(r.t, p, r.after())
		assert.Equal(r.t, was, now, "a refusal changes nothing, %s", r.after())
		r.note("refused")
		r.out.pruneRefused++
		return
	}
	require.NoError(r.t, err, "the chain is intact, %s", r.after())
	assert.Equal(r.t, was.acks, now.acks, "audit_chain_acks untouched, %s", r.after())
	assert.Equal(r.t, was.log, now.log, "trek.log untouched, %s", r.after())
	if cut == 0 {
		assert.Zero(r.t, p, "nothing recorded before the oldest row, %s", r.after())
		assert.Equal(r.t, was, now, "nothing to delete changes nothing, %s", r.after())
		r.note("nothing to delete")
		return
	}
	first := rows[cut]
	assert.EqualValues(r.t, cut, p.Rows, r.after())
	assert.Equal(r.t, [2]int64{first.id, first.seq}, [2]int64{p.FirstID, p.FirstSeq}, "where the chain starts, %s", r.after())
	assert.Equal(r.t, was.rows[cut:], now.rows, "the rows before it deleted, the others untouched, %s", r.after())
	if assert.Len(r.t, now.prunes, len(was.prunes)+1, "one record written, %s", r.after()) && len(was.prunes) > 0 {
		assert.Equal(r.t, was.prunes, now.prunes[:len(was.prunes)], "the others untouched, %s", r.after())
	}
	r.m.rows = slices.Clone(rows[cut:])
	r.m.prunes = append(r.m.prunes, seqPruning{first: first, prev: rows[cut-1].label})
	r.out.prunings = append(r.out.prunings, p)
	r.note("pruning %d: %d rows", p.ID, p.Rows)
}

// seqCase is a program picked by hand, and what it must have done for its
// name to be true.
type seqCase struct {
	name string
	prog []seqStep
	did  func(t *testing.T, o seqOutcome)
}

// Steps, for the cases below.
func recordSteps(n int) seqStep { return seqStep{kind: seqRecord, n: n} }
func restoreStep(backup int) seqStep {
	return seqStep{kind: seqRestore, n: backup}
}
func restoreTableStep(backup int) seqStep {
	return seqStep{kind: seqRestore, n: backup, tableOnly: true}
}
func earlierStep(digest int) seqStep { return seqStep{kind: seqEarlier, n: digest} }
func rotateStep(n int) seqStep       { return seqStep{kind: seqRotate, n: n} }
func pruneStep(keep int) seqStep     { return seqStep{kind: seqPrune, n: keep} }
func thenBackUp(s seqStep) seqStep {
	s.backup = true
	return s
}

var (
	acknowledgeStep = seqStep{kind: seqAcknowledge}
	reopenStep      = seqStep{kind: seqReopen}
)

// seqCases are the named cases; they seed FuzzAcknowledgeSequence too.
// Backup 0 is the database before any event; backup k the one the k-th
// step marked "then back up" made.
func seqCases() []seqCase {
	keepSeq := func(s seqStep) seqStep {
		s.keepSeq = true
		return s
	}
	return []seqCase{
		{"one restore, acknowledged", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 1)
			assert.Equal(t, "6-8", o.acks[0].PastEndAt)
			assert.Positive(t, o.lost, "reported before the acknowledgement")
			assert.True(t, o.final.Intact)
		}},
		{"rows recorded after the acknowledgement are chained and verify, across a reopen", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), acknowledgeStep, recordSteps(4), reopenStep, recordSteps(1),
		}, func(t *testing.T, o seqOutcome) {
			assert.True(t, o.final.Intact)
			assert.EqualValues(t, 10, o.final.Checked)
			assert.Equal(t, 13, o.final.Anchors)
			assert.Equal(t, 3, o.final.AcknowledgedAnchors)
		}},
		{"new rows at the lost positions, then acknowledged", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), recordSteps(2), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 1)
			assert.Equal(t, "6-7", o.acks[0].DifferingAt)
			assert.Equal(t, "8", o.acks[0].PastEndAt)
			assert.EqualValues(t, 7, o.acks[0].HeadID, "the lost ids given again")
		}},
		{"sqlite_sequence not set back: new ids at the lost positions", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), keepSeq(restoreStep(1)), recordSteps(2), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 1)
			assert.EqualValues(t, 7, o.acks[0].HeadSeq)
			assert.EqualValues(t, 10, o.acks[0].HeadID)
		}},
		{"every row lost, restored from before the first event", []seqStep{
			recordSteps(4), restoreStep(0), acknowledgeStep, recordSteps(2),
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 1)
			assert.Zero(t, o.acks[0].HeadSeq, "the table held no chained row")
			assert.Equal(t, "1-4", o.acks[0].PastEndAt)
			assert.True(t, o.final.Intact)
			assert.EqualValues(t, 2, o.final.Checked)
		}},
		{"a second restore from a backup holding the first acknowledgement: positions of two histories", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), thenBackUp(acknowledgeStep), recordSteps(2), restoreStep(2),
			acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			assert.Equal(t, 2, o.acks[1].Anchors)
			assert.Equal(t, "6-7", o.acks[1].DoubledAt)
			assert.Empty(t, o.acks[1].Supersedes, "the first's record of the chain's last row still matches")
			assert.Len(t, o.final.Acknowledgements, 2)
			assert.True(t, o.final.Intact)
		}},
		{"audit_log alone restored from a backup holding the acknowledged history: its positions still count as doubled", []seqStep{
			thenBackUp(recordSteps(5)), restoreStep(0), recordSteps(4), acknowledgeStep, keepSeq(restoreTableStep(1)),
			recordSteps(1), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			assert.Equal(t, "1-4", o.acks[0].DifferingAt, "the first history's rows, gone under the second's")
			assert.Equal(t, "5", o.acks[0].PastEndAt)
			assert.Equal(t, "1-4", o.acks[1].DifferingAt, "the second history's rows, gone under the first's")
			assert.Equal(t, "1-4", o.acks[1].DoubledAt, "rows were written there twice, though the first history's are back")
			assert.Equal(t, []int64{o.acks[0].ID}, o.acks[1].Supersedes)
			assert.True(t, o.final.Intact)
		}},
		{"a backup older than the acknowledgement takes it away, and the report comes back", []seqStep{
			thenBackUp(recordSteps(3)), recordSteps(3), restoreStep(1), acknowledgeStep, recordSteps(2), restoreStep(1),
			acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			assert.Equal(t, o.acks[0].ID, o.acks[1].ID, "the id given again")
			assert.Equal(t, 5, o.acks[1].Anchors)
			assert.Equal(t, "4-5", o.acks[1].DoubledAt)
			assert.Len(t, o.final.Acknowledgements, 1)
			assert.Equal(t, 2, o.lost, "after each restore")
		}},
		{"audit_log alone restored under an acknowledgement: the next supersedes it", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), recordSteps(2), acknowledgeStep, restoreTableStep(1),
			acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			assert.Equal(t, []int64{o.acks[0].ID}, o.acks[1].Supersedes)
			assert.Equal(t, "6-7", o.acks[1].PastEndAt)
			assert.Equal(t, "6-7", o.acks[1].DoubledAt)
			assert.True(t, o.final.Intact)
			assert.Equal(t, 5, o.final.AcknowledgedAnchors, "the superseded one's heads stay acknowledged")
		}},
		{"a third restore is shown superseding only the acknowledgement still standing", []seqStep{
			thenBackUp(recordSteps(3)), recordSteps(2), restoreTableStep(1), acknowledgeStep, restoreTableStep(0), recordSteps(1),
			acknowledgeStep, restoreTableStep(0),
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			assert.Equal(t, []int64{o.acks[0].ID}, o.acks[1].Supersedes)
			assert.Equal(t, []int64{o.acks[1].ID}, o.lastShown.Supersedes, "the first is superseded already")
			assert.False(t, o.final.Intact)
		}},
		{"a digest shown before events were recorded is still accepted", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), recordSteps(2), earlierStep(0),
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.accepted)
			require.Len(t, o.acks, 1)
			assert.True(t, strings.HasPrefix(o.acks[0].Digest, "5-"), "the digest shown at position 5: %s", o.acks[0].Digest)
			assert.EqualValues(t, 7, o.acks[0].HeadSeq, "the chain's last row when written")
			assert.True(t, o.final.Intact)
		}},
		{"digests shown before a second restore are refused", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), recordSteps(1), restoreStep(1), earlierStep(0), earlierStep(1),
			acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 2, o.refused)
			require.Len(t, o.acks, 1)
			assert.Equal(t, 4, o.acks[0].Anchors)
			assert.Equal(t, "6", o.acks[0].DoubledAt)
			assert.True(t, o.final.Intact)
		}},
		{"a digest shown before trek.log rotated is refused", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), rotateStep(6), earlierStep(0), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.refused)
			require.Len(t, o.acks, 1)
			assert.Equal(t, "7-8", o.acks[0].PastEndAt)
		}},
		{"a digest shown before the acknowledgement is refused: nothing is left", []seqStep{
			thenBackUp(recordSteps(5)), recordSteps(3), restoreStep(1), acknowledgeStep, earlierStep(0),
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.refused)
			assert.Len(t, o.acks, 1)
			assert.True(t, o.final.Intact)
		}},
		{"nothing lost, nothing to acknowledge", []seqStep{
			recordSteps(3), acknowledgeStep, reopenStep, recordSteps(2), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 2, o.nothing)
			assert.Empty(t, o.acks)
			assert.Zero(t, o.lost)
			assert.True(t, o.final.Intact)
		}},
		{"a newer backup brings the lost rows back", []seqStep{
			thenBackUp(recordSteps(3)), thenBackUp(recordSteps(2)), restoreStep(1), restoreStep(2), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.lost)
			assert.Equal(t, 1, o.nothing)
			assert.True(t, o.final.Intact)
		}},
		{"every head rotated out: the acknowledgement's record alone finds rows lost", []seqStep{
			thenBackUp(recordSteps(3)), thenBackUp(recordSteps(2)), recordSteps(3), restoreStep(2), acknowledgeStep, rotateStep(8),
			restoreTableStep(1), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			assert.Zero(t, o.acks[1].Anchors, "no head left to list")
			assert.Equal(t, []int64{o.acks[0].ID}, o.acks[1].Supersedes)
			require.NotEmpty(t, o.problems)
			assert.Equal(t, seqProblem{TamperMissing, 0, 4, true}, o.problems[len(o.problems)-1])
			assert.True(t, o.final.Intact)
			assert.Zero(t, o.final.Anchors)
		}},
		{"a digest names the acknowledgements superseded: one shown before they changed is refused", []seqStep{
			thenBackUp(recordSteps(5)), thenBackUp(recordSteps(3)), recordSteps(1), restoreTableStep(2), acknowledgeStep, recordSteps(1),
			rotateStep(9), restoreTableStep(1), restoreTableStep(2), earlierStep(1),
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.refused, "the same heads and row shown, the first acknowledgement no longer to supersede")
			assert.Len(t, o.acks, 1)
			assert.Empty(t, o.lastShown.Supersedes)
			assert.False(t, o.final.Intact, "the head of the newest row is past the end")
		}},
		{"a digest names the row shown, not only its position and id", []seqStep{
			thenBackUp(recordSteps(3)), thenBackUp(recordSteps(2)), recordSteps(1), restoreTableStep(2), acknowledgeStep,
			restoreTableStep(1), rotateStep(16), restoreTableStep(0), recordSteps(3), earlierStep(2),
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.refused, "another row with the same id at the position shown")
			assert.EqualValues(t, 3, o.final.HeadID)
			assert.Equal(t, []int64{o.acks[0].ID}, o.lastShown.Supersedes)
		}},
		{"every head rotated out: the acknowledgement's record finds its row chained over", []seqStep{
			thenBackUp(recordSteps(3)), recordSteps(2), restoreTableStep(1), acknowledgeStep, rotateStep(16), restoreTableStep(0),
			recordSteps(3), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 2)
			require.NotEmpty(t, o.problems)
			assert.Equal(t, seqProblem{TamperMissing, 3, 3, true}, o.problems[len(o.problems)-1], "row 3 again, another row")
			assert.Equal(t, []int64{o.acks[0].ID}, o.acks[1].Supersedes)
			assert.Zero(t, o.acks[1].Anchors)
			assert.True(t, o.final.Intact)
		}},
		{"pruned, then rows recorded: the walk starts after the rows deleted", []seqStep{
			recordSteps(5), pruneStep(2), recordSteps(2), reopenStep, pruneStep(5),
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.prunings, 1, "the second finds nothing recorded before the fifth newest of four")
			assert.EqualValues(t, 3, o.prunings[0].Rows)
			assert.True(t, o.final.Intact)
			assert.EqualValues(t, 4, o.final.StartSeq)
			assert.EqualValues(t, 4, o.final.Checked)
			assert.Equal(t, 3, o.final.PrunedAnchors)
		}},
		{"two prunings: the second record accounts for the table", []seqStep{
			recordSteps(5), pruneStep(3), recordSteps(3), pruneStep(2),
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.prunings, 2)
			assert.True(t, o.final.Intact)
			assert.EqualValues(t, 7, o.final.StartSeq)
			assert.Equal(t, 6, o.final.PrunedAnchors)
			assert.Len(t, o.final.Prunings, 2)
		}},
		{"pruning refused while a restore is unacknowledged, done once it is", []seqStep{
			thenBackUp(recordSteps(4)), recordSteps(2), restoreStep(1), pruneStep(2), acknowledgeStep, pruneStep(2),
		}, func(t *testing.T, o seqOutcome) {
			assert.Equal(t, 1, o.pruneRefused)
			require.Len(t, o.prunings, 1)
			assert.EqualValues(t, 3, o.prunings[0].FirstSeq)
			assert.True(t, o.final.Intact)
			assert.Equal(t, 2, o.final.AcknowledgedAnchors, "the heads of rows 5 and 6, lost in the restore")
			assert.Equal(t, 2, o.final.PrunedAnchors)
		}},
		{"audit_log alone restored from before a pruning: the rows are back and verify from position 1", []seqStep{
			thenBackUp(recordSteps(5)), pruneStep(2), recordSteps(1), restoreTableStep(1), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 1)
			assert.Equal(t, "6", o.acks[0].PastEndAt)
			assert.True(t, o.final.Intact)
			assert.EqualValues(t, 1, o.final.StartSeq)
			assert.Len(t, o.final.Prunings, 1, "the record stays, and accounts for nothing")
		}},
		{"rows of a pruned backup under a table without its record: reported, and nothing settles it", []seqStep{
			thenBackUp(recordSteps(3)), recordSteps(2), thenBackUp(pruneStep(2)), restoreStep(1), restoreTableStep(2), acknowledgeStep,
			pruneStep(2),
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.prunings, 1)
			assert.Equal(t, 1, o.pruneRefused)
			assert.Empty(t, o.acks)
			require.NotNil(t, o.final.Problem)
			assert.Equal(t, seqProblem{TamperMissing, 4, 1, false}, *reportOf(o.final).Problem)
		}},
		{"two prunings at one position, of two histories: the first row kept tells which record is its", []seqStep{
			thenBackUp(recordSteps(2)), recordSteps(3), thenBackUp(pruneStep(2)), restoreTableStep(1), recordSteps(3), acknowledgeStep,
			pruneStep(2), restoreTableStep(2), acknowledgeStep,
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.prunings, 2)
			assert.Equal(t, o.prunings[0].FirstSeq, o.prunings[1].FirstSeq)
			require.NotEmpty(t, o.problems)
			assert.Equal(t, seqProblem{TamperMissing, 4, 4, true}, o.problems[len(o.problems)-1],
				"the first history's rows verify after its record; the second's heads no longer match")
			require.Len(t, o.acks, 2)
			assert.True(t, o.final.Intact)
			assert.EqualValues(t, 4, o.final.StartSeq)
		}},
		{"reopened around every change, lost ids not given again", []seqStep{
			thenBackUp(recordSteps(2)), reopenStep, recordSteps(2), keepSeq(restoreStep(1)), reopenStep, acknowledgeStep, reopenStep,
			recordSteps(1),
		}, func(t *testing.T, o seqOutcome) {
			require.Len(t, o.acks, 1)
			assert.Equal(t, "3-4", o.acks[0].PastEndAt)
			assert.EqualValues(t, 5, o.final.HeadID)
			assert.EqualValues(t, 3, o.final.HeadSeq)
			assert.True(t, o.final.Intact)
		}},
	}
}

// FuzzAcknowledgeSequence runs programs of restores, acknowledgements and
// events on one travel.db and trek.log, and checks every step against the
// model (see the properties above). An input is the program,
// decodeSeqProgram's two bytes a step.
func FuzzAcknowledgeSequence(f *testing.F) {
	for _, c := range seqCases() {
		f.Add(encodeSeqProgram(c.prog))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		runAckSequence(t, decodeSeqProgram(in), false)
	})
}

// TestAcknowledgeSequenceCases runs the named programs through the same
// check, strictly (every backup and digest they name exists), and checks
// that each did what its name says. Each seeds the fuzz target, so its
// program must read back from its bytes.
func TestAcknowledgeSequenceCases(t *testing.T) {
	for _, c := range seqCases() {
		t.Run(c.name, func(t *testing.T) {
			require.LessOrEqual(t, len(c.prog), maxSeqSteps)
			require.Equal(t, c.prog, decodeSeqProgram(encodeSeqProgram(c.prog)), "the seed is the program")
			c.did(t, runAckSequence(t, c.prog, true))
		})
	}
}
