package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The properties Record owes its callers, whatever the interleaving of
// concurrent callers, full queues, cancelled or expiring contexts, bad
// events and a Close from another goroutine (the README's error table and
// the comments of Record, enqueue, Close and Stats in audit.go):
//
//  1. nil only once stored: a Record that returned nil has exactly one row,
//     with the event's fields, and exactly one trek.log line.
//  2. ErrLogWrite means stored: exactly one row ("the event is stored in
//     the database"); its line may be missing.
//  3. Nothing half written: any other error leaves no row and no line, and
//     is one the README names for the call, as errors.Is tells them apart:
//     ErrClosed, ErrStore, the event's validation error, or the context's
//     own error (context.Canceled, context.DeadlineExceeded) for a caller
//     whose context ended while the queue was full.
//  4. A bad event is never recorded: it gets its validation error, or
//     ErrClosed when Close began first (enqueue looks at that before the
//     event: "a host that stops on ErrClosed learns it whatever the
//     event").
//  5. Nothing else: no row or line names a resource no call made, ids are
//     unique, and there are as many rows as nil and ErrLogWrite answers.
//  6. Stats after Close: Recorded is the rows stored; Rejected, and
//     RejectedBy reason by reason, the calls refused with a validation
//     error or their context's error ("events refused before the queue");
//     ErrClosed is not counted ("a closed Auditor counts nothing more");
//     no event is left in the queue.
//  7. Close: a second call, beside the first or after it, returns the
//     first's result; a Record begun after Close returned answers
//     ErrClosed and writes nothing.
//
// Each call's event names a resource of its own, by which its row and its
// line are found. Scenarios start their goroutines together and never
// sleep: what each call answers varies from run to run, and the checks
// hold for every answer the library may give.

// outcomeKind is what one Record call of a scenario is.
type outcomeKind uint8

const (
	outcomeGood          outcomeKind = iota // a good event, context.Background
	outcomeCancelled                        // a good event, its context cancelled before the call
	outcomeDeadline                         // a good event, its context's deadline a few microseconds away
	outcomeUnknownAction                    // an action not in the catalogue
	outcomeMissingDetail                    // trip.create without its title
	outcomeIPWithPort                       // an IP given with its port
	outcomeUnencodable                      // details JSON cannot encode (a channel or NaN)
	outcomeKinds
)

var outcomeKindNames = [outcomeKinds]string{"good", "cancelled", "deadline", "unknown-action",
	"missing-detail", "ip-with-port", "unencodable"}

func (k outcomeKind) String() string { return outcomeKindNames[k] }

func (k outcomeKind) bad() bool { return k >= outcomeUnknownAction }

// outcomeCall is one Record call.
type outcomeCall struct {
	kind   outcomeKind
	alt    bool // good: trip.create rather than admin.user_update; unencodable: NaN rather than a channel
	micros int  // outcomeDeadline: the deadline, 1 to 16 µs after the call begins
}

// outcomeScenario is what decodeOutcomeScenario makes of a fuzz input.
type outcomeScenario struct {
	queueSize, maxBatch int
	goroutines          [][]outcomeCall
	// closeAfter: Close is called once this many calls have returned; 0:
	// at once, as the callers start; past the number of calls: once all
	// have returned.
	closeAfter int
	closeTwice bool          // a second Close, from a goroutine of its own beside the first
	after      []outcomeCall // Records once Close has returned
}

// decodeOutcomeCall makes a call of one byte: the kind in the low three
// bits (7 reads as 0), the variant in the next, the deadline in the top
// four.
func decodeOutcomeCall(b byte) outcomeCall {
	return outcomeCall{kind: outcomeKind((b & 0x07) % byte(outcomeKinds)), alt: b&0x08 != 0, micros: 1 + int(b>>4)}
}

// decodeOutcomeScenario reads any bytes as a scenario (missing bytes read
// as zero): QueueSize, MaxBatch, the number of goroutines, when Close is
// called and whether twice, how many Records follow it, then for each
// goroutine its number of calls and one byte a call, then the calls after
// Close.
func decodeOutcomeScenario(in []byte) outcomeScenario {
	next := (&tamperBytes{in}).next // missing bytes read as 0
	s := outcomeScenario{queueSize: 1 + int(next()%8), maxBatch: 1 + int(next()%8)}
	goroutines := 1 + int(next()%8)
	c := next()
	s.closeAfter, s.closeTwice = int(c&0x3f), c&0x40 != 0
	after := int(next() % 4)
	for range goroutines {
		calls := make([]outcomeCall, 1+int(next()%6))
		for i := range calls {
			calls[i] = decodeOutcomeCall(next())
		}
		s.goroutines = append(s.goroutines, calls)
	}
	for range after {
		s.after = append(s.after, decodeOutcomeCall(next()))
	}
	return s
}

// outcomeEvent is c's event, naming res.
func outcomeEvent(c outcomeCall, res string) Event {
	e := Event{
		Action:   AdminUserUpdate,
		Actor:    Actor{UserID: 7, Username: "alice", Email: "alice@example.com"},
		Resource: res,
		Details:  map[string]any{"role": "admin"},
		IP:       "203.0.113.9",
	}
	switch c.kind {
	case outcomeGood, outcomeCancelled, outcomeDeadline:
		if c.alt {
			// The log line names the title: the resource again.
			e.Action, e.Details = TripCreate, map[string]any{"title": res, "tripId": 12}
		}
	case outcomeUnknownAction:
		e.Action = "trip.teleport"
	case outcomeMissingDetail:
		e.Action, e.Details = TripCreate, map[string]any{"tripId": 12}
	case outcomeIPWithPort:
		e.IP = "203.0.113.9:443"
	case outcomeUnencodable:
		e.Details = map[string]any{"role": make(chan int)}
		if c.alt {
			e.Details = map[string]any{"role": math.NaN()}
		}
	}
	return e
}

// outcomeDetails is the details column a good call's row must hold.
func outcomeDetails(c outcomeCall, res string) string {
	if c.alt {
		return fmt.Sprintf(`{"title":%q,"tripId":12}`, res)
	}
	return `{"role":"admin"}`
}

// recordOutcome makes call c with its context.
func recordOutcome(a *Auditor, c outcomeCall, e Event) error {
	ctx := context.Background()
	switch c.kind {
	case outcomeCancelled:
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		ctx = cctx
	case outcomeDeadline:
		dctx, cancel := context.WithTimeout(ctx, time.Duration(c.micros)*time.Microsecond)
		defer cancel()
		ctx = dctx
	}
	return a.Record(ctx, e)
}

// outcomeAnswer is what one call answered.
type outcomeAnswer struct {
	res        string
	call       outcomeCall
	afterClose bool // begun once Close had returned
	err        error
}

// allowedErrors are the errors the README lets a call answer, the first
// that matches naming the answer; a nil answer is allowed where ok.
func (ans outcomeAnswer) allowedErrors() (errs []error, nilOK bool) {
	if ans.afterClose {
		return []error{ErrClosed}, false
	}
	switch ans.call.kind {
	case outcomeUnknownAction:
		return []error{ErrClosed, ErrUnknownAction}, false
	case outcomeMissingDetail:
		return []error{ErrClosed, ErrMissingDetail}, false
	case outcomeIPWithPort, outcomeUnencodable:
		return []error{ErrClosed, ErrInvalidEvent}, false
	}
	errs = []error{ErrClosed, ErrLogWrite, ErrStore}
	switch ans.call.kind {
	case outcomeCancelled:
		errs = append(errs, context.Canceled)
	case outcomeDeadline:
		errs = append(errs, context.DeadlineExceeded)
	}
	return errs, true
}

// matched is the allowed error ans.err wraps, nil if none.
func (ans outcomeAnswer) matched() error {
	errs, _ := ans.allowedErrors()
	for _, want := range errs {
		if errors.Is(ans.err, want) {
			return want
		}
	}
	return nil
}

// rejectedReason is the reason Stats counts ans under, "" for an answer
// not counted as rejected.
func (ans outcomeAnswer) rejectedReason() string {
	switch ans.matched() {
	case ErrUnknownAction:
		return "unknown_action"
	case ErrMissingDetail:
		return "missing_detail"
	case ErrInvalidEvent:
		return "invalid_event"
	case context.DeadlineExceeded:
		return "queue_timeout"
	case context.Canceled:
		return "queue_cancelled"
	}
	return ""
}

// outcomeTally sums a run's answers, for the cases to check they did what
// they are about.
type outcomeTally struct {
	ok, logWrite, closed, store int
	invalid                     int // refused with a validation error
	rejected                    int // refused with a validation error or the context's
}

// outcomeLine picks the resource out of an event's trek.log line.
var outcomeLine = regexp.MustCompile(`^\[INFO\] \S+ alice@example\.com [^"]+ "(rec-[a-z0-9]+-[0-9]+)" ip=203\.0\.113\.9$`)

// runOutcomeScenario runs s against a fresh Auditor and checks every
// answer against the files and Stats.
func runOutcomeScenario(t *testing.T, s outcomeScenario) outcomeTally {
	t.Helper()
	cfg := testConfig(t)
	cfg.QueueSize, cfg.MaxBatch, cfg.Synchronous = s.queueSize, s.maxBatch, "NORMAL"
	a := openAuditor(t, cfg)

	var (
		answers       = make([][]outcomeAnswer, len(s.goroutines))
		closeReturned atomic.Bool
		returned      atomic.Int64
		reached       = make(chan struct{})
		reach         = sync.OnceFunc(func() { close(reached) })
		start         = make(chan struct{})
		wg            sync.WaitGroup
	)
	if s.closeAfter == 0 {
		reach()
	}
	closeErrs := make([]error, 1, 2)
	var closers sync.WaitGroup
	closers.Go(func() {
		<-start
		<-reached
		closeErrs[0] = a.Close()
		closeReturned.Store(true)
	})
	if s.closeTwice {
		closeErrs = closeErrs[:2]
		closers.Go(func() {
			<-start
			<-reached
			closeErrs[1] = a.Close()
		})
	}
	for g, calls := range s.goroutines {
		answers[g] = make([]outcomeAnswer, len(calls))
		wg.Go(func() {
			<-start
			for i, c := range calls {
				res := fmt.Sprintf("rec-%d-%d", g, i)
				ans := outcomeAnswer{res: res, call: c, afterClose: closeReturned.Load()}
				ans.err = recordOutcome(a, c, outcomeEvent(c, res))
				answers[g][i] = ans
				if returned.Add(1) == int64(s.closeAfter) {
					reach()
				}
			}
		})
	}
	close(start)
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		reach() // closeAfter past the calls: Close once all have returned
		closers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(closeWaitLimit):
		require.FailNow(t, "no answer", "the Records and Close did not all return within %v", closeWaitLimit)
	}

	var all []outcomeAnswer
	for _, g := range answers {
		all = append(all, g...)
	}
	for i, c := range s.after {
		res := fmt.Sprintf("rec-after-%d", i)
		all = append(all, outcomeAnswer{res: res, call: c, afterClose: true,
			err: recordOutcome(a, c, outcomeEvent(c, res))})
	}

	// 7. Close answers every call alike.
	assert.NoError(t, closeErrs[0], "Close")
	for i, err := range closeErrs[1:] {
		assert.Equal(t, closeErrs[0], err, "Close %d, beside the first", i+2)
	}
	assert.Equal(t, closeErrs[0], a.Close(), "Close again, after the first returned")

	db := openPlainDB(t, cfg.DBPath)
	rows := readRows(t, db)
	rowsOf := map[string][]storedRow{}
	ids := map[int64]bool{}
	for _, r := range rows {
		assert.False(t, ids[r.ID], "id %d is in two rows", r.ID)
		ids[r.ID] = true
		rowsOf[r.Resource.String] = append(rowsOf[r.Resource.String], r)
	}
	linesOf := map[string]int{}
	for _, l := range eventLines(logLines(t, cfg.LogPath)) {
		m := outcomeLine.FindStringSubmatch(l)
		if assert.NotNil(t, m, "a trek.log line of no call's event: %q", l) {
			linesOf[m[1]]++
		}
	}

	var tally outcomeTally
	made := map[string]bool{}
	wantRejectedBy := map[string]uint64{}
	for _, ans := range all {
		made[ans.res] = true
		what := fmt.Sprintf("%s (%s, after Close %v): %v", ans.res, ans.call.kind, ans.afterClose, ans.err)
		errs, nilOK := ans.allowedErrors()
		match := ans.matched()
		switch {
		case ans.err == nil:
			// 4, 7: a bad event or a Record after Close is never nil.
			assert.True(t, nilOK, "%s: answered nil", what)
		case match == nil:
			// 3. The error is one the README names for the call.
			assert.Fail(t, "an error not among those allowed", "%s: want one of %v", what, errs)
		}
		if reason := ans.rejectedReason(); reason != "" {
			wantRejectedBy[reason]++
			tally.rejected++
			if ans.call.kind.bad() {
				tally.invalid++
			}
		}
		got := rowsOf[ans.res]
		switch {
		case ans.err == nil:
			// 1. Stored once, with the event's fields, and logged once.
			tally.ok++
			if assert.Len(t, got, 1, "%s: rows", what) {
				r := got[0]
				e := outcomeEvent(ans.call, ans.res)
				assert.Equal(t, string(e.Action), r.Action, what)
				assert.Equal(t, "203.0.113.9", r.IP.String, what)
				assert.Equal(t, int64(7), r.UserID.Int64, what)
				assert.Equal(t, "alice", r.ActorUsername.String, what)
				assert.Equal(t, "alice@example.com", r.ActorEmail.String, what)
				assert.JSONEq(t, outcomeDetails(ans.call, ans.res), r.Details.String, what)
			}
			assert.Equal(t, 1, linesOf[ans.res], "%s: trek.log lines", what)
		case match == ErrLogWrite:
			// 2. Stored once; the line may be missing.
			tally.logWrite++
			assert.Len(t, got, 1, "%s: rows", what)
			assert.LessOrEqual(t, linesOf[ans.res], 1, "%s: trek.log lines", what)
		default:
			// 3. Nothing half written.
			switch match {
			case ErrClosed:
				tally.closed++
			case ErrStore:
				tally.store++
			}
			assert.Empty(t, got, "%s: rows", what)
			assert.Zero(t, linesOf[ans.res], "%s: trek.log lines", what)
		}
	}

	// 5. Nothing else.
	for res := range rowsOf {
		assert.True(t, made[res], "a row names %q, which no call made", res)
	}
	for res := range linesOf {
		assert.True(t, made[res], "a trek.log line names %q, which no call made", res)
	}
	assert.Len(t, rows, tally.ok+tally.logWrite, "rows: answers nil or ErrLogWrite")

	// 6. Stats.
	st := a.Stats()
	assert.EqualValues(t, len(rows), st.Recorded, "Stats.Recorded")
	assert.EqualValues(t, tally.rejected, st.Rejected, "Stats.Rejected: validation and context errors, not ErrClosed")
	gotRejectedBy := map[string]uint64{}
	for k, v := range st.RejectedBy {
		if v != 0 {
			gotRejectedBy[k] = v
		}
	}
	assert.Equal(t, wantRejectedBy, gotRejectedBy, "Stats.RejectedBy")
	assert.Zero(t, st.QueueDepth, "Stats.QueueDepth after Close")
	assert.Equal(t, tally.store > 0, st.StoreErrors > 0, "Stats.StoreErrors against the ErrStore answers")
	assert.Equal(t, tally.logWrite > 0, st.LogErrors > 0, "Stats.LogErrors against the ErrLogWrite answers")
	return tally
}

// FuzzRecordOutcomes runs scenarios made of any bytes (see
// decodeOutcomeScenario) and checks every call's answer against the
// database, trek.log and Stats.
func FuzzRecordOutcomes(f *testing.F) {
	const (
		good, cancelled, deadline, unknown, missing, port, unencodable = 0, 1, 2, 3, 4, 5, 6
		trip, alt                                                      = 0x08, 0x08
		end                                                            = 0x3f // Close once every call has returned
		twice                                                          = 0x40
	)
	seeds := [][]byte{
		{3, 3, 3, end, 0, 5, good, good | trip, good, good, good, 5, good, good, good, good, good, 5, good, good, good, good, good},
		{0, 0, 3, 0, 2, 3, good, cancelled, deadline, 3, good, good, good, 3, unknown, good, port, good, unknown},
		{0, 1, 7, 4 | twice, 1, 5, cancelled, cancelled, cancelled, cancelled, cancelled, 5, good, good, good, good, good,
			5, deadline, deadline | 0xf0, deadline, deadline, deadline, 5, good, good, good, good, good,
			5, cancelled, good, cancelled, good, cancelled, 5, good, good, good, good, good, 5, good, good, good, good, good, good},
		{1, 1, 4, end, 0, 5, unknown, missing, port, unencodable, unencodable | alt, 5, good, good, good, good, good,
			5, good | trip, missing, good, port, good, 5, unencodable, good, unencodable | alt, good, unknown},
		{7, 7, 7, 10, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, good, unknown, cancelled},
		{0, 0, 1, 1 | twice, 3, 5, good, good, good, good, good, good, good, good},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		runOutcomeScenario(t, decodeOutcomeScenario(in))
	})
}

// TestRecordOutcomesCases runs hand-picked scenarios through the same
// check, and checks what each must have done whatever the interleaving.
func TestRecordOutcomesCases(t *testing.T) {
	repeat := func(n int, c outcomeCall) []outcomeCall {
		out := make([]outcomeCall, n)
		for i := range out {
			out[i] = c
		}
		return out
	}
	each := func(g int, calls []outcomeCall) [][]outcomeCall {
		out := make([][]outcomeCall, g)
		for i := range out {
			out[i] = calls
		}
		return out
	}
	var (
		good        = outcomeCall{kind: outcomeGood}
		goodTrip    = outcomeCall{kind: outcomeGood, alt: true}
		cancelled   = outcomeCall{kind: outcomeCancelled}
		deadline    = outcomeCall{kind: outcomeDeadline, micros: 1}
		unknown     = outcomeCall{kind: outcomeUnknownAction}
		missing     = outcomeCall{kind: outcomeMissingDetail}
		port        = outcomeCall{kind: outcomeIPWithPort}
		unencodable = outcomeCall{kind: outcomeUnencodable}
		nan         = outcomeCall{kind: outcomeUnencodable, alt: true}
		badMix      = []outcomeCall{unknown, missing, port, unencodable, nan}
	)
	const end = 1 << 10 // Close once every call has returned
	cases := []struct {
		name  string
		s     outcomeScenario
		about func(t *testing.T, got outcomeTally)
	}{
		{"many goroutines, Close only at the end",
			outcomeScenario{queueSize: 4, maxBatch: 3, goroutines: each(8, []outcomeCall{good, goodTrip, good, good, goodTrip, good}), closeAfter: end},
			func(t *testing.T, got outcomeTally) { assert.Equal(t, 48, got.ok, "every event recorded") }},
		{"Close at once",
			outcomeScenario{queueSize: 2, maxBatch: 2, goroutines: each(6, repeat(4, good)), closeAfter: 0},
			nil},
		{"Close at once, twice",
			outcomeScenario{queueSize: 8, maxBatch: 8, goroutines: each(4, repeat(6, goodTrip)), closeAfter: 0, closeTwice: true},
			nil},
		{"Close in the middle, a queue of one, cancelled and expiring contexts",
			outcomeScenario{queueSize: 1, maxBatch: 1, closeAfter: 12, closeTwice: true,
				goroutines: each(8, []outcomeCall{cancelled, good, deadline, cancelled, good, deadline})},
			nil},
		{"every context already cancelled",
			outcomeScenario{queueSize: 1, maxBatch: 4, goroutines: each(8, repeat(6, cancelled)), closeAfter: end},
			nil},
		{"every context expiring at once",
			outcomeScenario{queueSize: 1, maxBatch: 1, goroutines: each(8, repeat(6, deadline)), closeAfter: end},
			nil},
		{"bad events mixed with good under load",
			outcomeScenario{queueSize: 2, maxBatch: 3, closeAfter: end, goroutines: append(each(4, repeat(6, good)),
				badMix, []outcomeCall{good, unknown, goodTrip, missing, good, port},
				[]outcomeCall{nan, good, unencodable, good, cancelled, unknown}, repeat(6, port))},
			func(t *testing.T, got outcomeTally) {
				assert.Equal(t, 5+3+3+6, got.invalid, "every bad event refused")
				assert.GreaterOrEqual(t, got.ok, 24+3+2)
			}},
		{"bad events while Close runs",
			outcomeScenario{queueSize: 1, maxBatch: 2, closeAfter: 5, goroutines: append(each(3, badMix), each(3, repeat(5, good))...)},
			nil},
		{"Records after Close",
			outcomeScenario{queueSize: 3, maxBatch: 3, goroutines: each(2, repeat(2, good)), closeAfter: end, closeTwice: true,
				after: []outcomeCall{good, goodTrip, cancelled, deadline, unknown, missing, port, unencodable}},
			func(t *testing.T, got outcomeTally) {
				assert.Equal(t, 4, got.ok, "the Records before Close")
				assert.Equal(t, 8, got.closed, "every Record after Close: ErrClosed, the bad events too")
				assert.Zero(t, got.rejected, "a closed Auditor counts nothing more")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runOutcomeScenario(t, tc.s)
			if tc.about != nil {
				tc.about(t, got)
			}
		})
	}
}
