package audit

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closeWaitLimit bounds every wait in these tests, so that a Close or Record
// that never returns fails the test instead of hanging it.
const closeWaitLimit = 30 * time.Second

// closeAwait returns what arrives on done, failing the test if nothing does
// within closeWaitLimit.
func closeAwait(t *testing.T, done <-chan error, format string, args ...any) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(closeWaitLimit):
		require.FailNowf(t, "no answer", "%s: nothing within %v", fmt.Sprintf(format, args...), closeWaitLimit)
		return nil
	}
}

// closeAccept does what Record does before its caller waits for the
// writer: it queues e (Auditor.enqueue). The event is accepted, but no
// caller is in line for the writer's place yet, as a Record caller is for a
// moment between queueing its event and waiting for its commit. Only Close
// can commit it. Its outcome arrives on the returned channel.
func closeAccept(t *testing.T, a *Auditor, e Event) <-chan error {
	t.Helper()
	p, err := a.enqueue(context.Background(), &e)
	require.NoError(t, err, "accepted before Close")
	return p.done
}

// TestCloseWaitsForAcceptedEvents: Close returns only once every event
// accepted before it is committed and logged, the events that callers are
// waiting for as well as those whose callers are not yet in line for the
// writer, over several batches of MaxBatch events; and every one of them is
// answered nil, stored exactly once and logged exactly once.
func TestCloseWaitsForAcceptedEvents(t *testing.T) {
	const (
		maxBatch = 4
		waiting  = 16 // Record callers waiting for their commit
		queued   = 4  // accepted events whose callers are not in line yet
	)
	a, obs, dbPath := memOpenObserved(t, Config{MaxBatch: maxBatch, BusyTimeout: time.Minute})
	logPath := filepath.Join(filepath.Dir(dbPath), "logs", "trek.log")
	release, first := memStallWriter(t, a, obs, dbPath)

	recorded := make([]<-chan error, waiting)
	var want []string // every resource that must be stored and logged once
	for i := range recorded {
		res := fmt.Sprintf("waiting:%02d", i)
		want = append(want, res)
		recorded[i] = memRecordAsync(a, memEvent(res))
	}
	memWaitQueueDepth(t, a, obs.queued, waiting)
	// Queued behind every waiting caller's event, so the callers' own
	// batches never take these: they are left for Close.
	accepted := make([]<-chan error, queued)
	var acceptedRes []string
	for i := range accepted {
		res := fmt.Sprintf("queued:%02d", i)
		acceptedRes = append(acceptedRes, res)
		accepted[i] = closeAccept(t, a, memEvent(res))
	}
	want = append(want, acceptedRes...)

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	release()

	assert.NoError(t, closeAwait(t, closed, "Close"))
	assert.NoError(t, closeAwait(t, first, "the stalled first event"))
	for i, d := range recorded {
		assert.NoError(t, closeAwait(t, d, "Record %d", i), "Record %d", i)
	}
	assert.ErrorIs(t, a.Record(context.Background(), memEvent("after")), ErrClosed, "Record after Close")

	// Close has returned, so nothing is written any more: these are the
	// files as Close left them.
	db := openPlainDB(t, dbPath)
	rows := readRows(t, db)
	var stored []string
	for _, r := range rows {
		stored = append(stored, r.Resource.String)
	}
	require.NotEmpty(t, stored)
	assert.Equal(t, "first", stored[0])
	assert.ElementsMatch(t, want, stored[1:], "every accepted event stored once, nothing else")
	if assert.GreaterOrEqual(t, len(stored), queued) {
		assert.Equal(t, acceptedRes, stored[len(stored)-queued:], "committed last, in the order accepted")
	}

	lines := eventLines(logLines(t, logPath))
	assert.Len(t, lines, 1+len(want), "one trek.log line per event")
	for _, res := range append([]string{"first"}, want...) {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, fmt.Sprintf("%q ip=", res)) {
				n++
			}
		}
		assert.Equal(t, 1, n, "trek.log lines for %s", res)
	}

	close(obs.batches)
	var batches []int
	for n := range obs.batches {
		batches = append(batches, n)
	}
	assert.Equal(t, slices.Repeat([]int{maxBatch}, (waiting+queued)/maxBatch), batches,
		"after the first event, full batches of MaxBatch")

	for i, d := range accepted {
		assert.NoError(t, closeAwait(t, d, "accepted event %d", i), "accepted event %d", i)
	}
}

// stuckMarshaler's encoding waits until release is closed, as a host's
// MarshalJSON that calls out to something hung may.
type stuckMarshaler struct{ entered, release chan struct{} }

func (m stuckMarshaler) MarshalJSON() ([]byte, error) {
	close(m.entered)
	<-m.release
	return []byte(`"late"`), nil
}

// TestCloseDoesNotWaitForAnEventBeingPrepared: an event whose details are
// still being encoded is not yet accepted, so Close does not wait for it,
// and once encoded it is refused with ErrClosed rather than recorded.
func TestCloseDoesNotWaitForAnEventBeingPrepared(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	m := stuckMarshaler{entered: make(chan struct{}), release: make(chan struct{})}
	// Released before the Auditor's own cleanup Close, should the test
	// fail while the encoding waits.
	release := sync.OnceFunc(func() { close(m.release) })
	t.Cleanup(release)
	recorded := make(chan error, 1)
	go func() {
		recorded <- a.Record(context.Background(), Event{Action: TripCreate, Details: map[string]any{"title": "x", "stuck": m}})
	}()
	<-m.entered

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	require.NoError(t, closeAwait(t, closed, "Close while an event is being prepared"))

	release()
	assert.ErrorIs(t, closeAwait(t, recorded, "Record"), ErrClosed)
	assert.Zero(t, countRows(t, openTestDB(t, cfg.DBPath)), "nothing stored")
}

// Once Close has begun, every call that reads or writes the database
// answers ErrClosed, naming itself, and reads and writes nothing: on the
// library's own file, whose connections Close closed, and on TREK's handle,
// which stays open for the host, alike. The admin list then answers 503:
// the server is stopping, no fault of the database's.
func TestCallsAfterCloseAnswerErrClosed(t *testing.T) {
	calls := []struct {
		name string
		call func(ctx context.Context, a *Auditor) error
	}{
		{"Record", func(ctx context.Context, a *Auditor) error { return a.Record(ctx, Event{Action: UserLogin}) }},
		{"List", func(ctx context.Context, a *Auditor) error { _, err := a.List(ctx, Query{}); return err }},
		{"Verify", func(ctx context.Context, a *Auditor) error { _, err := a.Verify(ctx); return err }},
		{"Unacknowledged", func(ctx context.Context, a *Auditor) error { _, err := a.Unacknowledged(ctx); return err }},
		{"Acknowledge", func(ctx context.Context, a *Auditor) error {
			_, err := a.Acknowledge(ctx, "restored travel.db from a backup", "3-0011223344556677")
			return err
		}},
		{"LogWriter", func(_ context.Context, a *Auditor) error {
			_, err := a.LogWriter().Write([]byte("host line\n"))
			return err
		}},
	}
	for _, own := range []bool{true, false} {
		for _, c := range calls {
			name := c.name + ", on TREK's handle"
			if own {
				name = c.name + ", on its own file"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				cfg := Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log")}
				var host *sql.DB
				if !own {
					host = createTrekDB(t, cfg.DBPath, nil)
					cfg = Config{DB: host, LogPath: cfg.LogPath, ChainKeyFile: filepath.Join(dir, ".audit_key")}
				}
				a, err := Open(cfg)
				require.NoError(t, err)
				recordN(t, a, 3, "before Close")
				require.NoError(t, a.Close())
				logBefore := readLog(t, cfg.LogPath)

				err = c.call(t.Context(), a)
				require.ErrorIs(t, err, ErrClosed)
				if c.name != "Record" && c.name != "LogWriter" {
					assert.ErrorContains(t, err, c.name+" after Close")
				}
				if c.name == "Verify" {
					assert.ErrorIs(t, err, ErrVerify, "Verify could not check")
				}
				assert.NotErrorIs(t, err, ErrStore, "not a database error worth retrying")
				assert.Equal(t, logBefore, readLog(t, cfg.LogPath), "nothing written to trek.log")
				db := host
				if own {
					db = openPlainDB(t, cfg.DBPath)
				}
				assert.Equal(t, int64(3), countRows(t, db))
				var acks int64
				require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_chain_acks`).Scan(&acks))
				assert.Zero(t, acks)
			})
		}
	}

	t.Run("the admin list", func(t *testing.T) {
		a, err := Open(testConfig(t))
		require.NoError(t, err)
		h := a.AdminHandler(func(*http.Request) bool { return true })
		require.NoError(t, a.Close())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/admin/audit-log", nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.JSONEq(t, `{"error":"the audit log is closed: the server is stopping"}`, rec.Body.String())
	})
}

// Reads racing Close: each answers as before Close, or ErrClosed, never a
// bare database error from connections closed under it.
func TestReadsRacingCloseAnswerErrClosed(t *testing.T) {
	a, err := Open(testConfig(t))
	require.NoError(t, err)
	recordN(t, a, 20, "before Close")
	reads := []func(context.Context) error{
		func(ctx context.Context) error { _, err := a.List(ctx, Query{Limit: 5}); return err },
		func(ctx context.Context) error { _, err := a.Verify(ctx); return err },
		func(ctx context.Context) error { _, err := a.Unacknowledged(ctx); return err },
	}
	errs := make(chan error, len(reads))
	var started sync.WaitGroup
	for _, read := range reads {
		started.Add(1)
		go func() {
			first := true
			for {
				err := read(context.Background())
				if first {
					started.Done()
					first = false
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	started.Wait() // every reader has read once, before Close
	require.NoError(t, a.Close())
	for range reads {
		err := closeAwait(t, errs, "a reader's answer after Close")
		assert.ErrorIs(t, err, ErrClosed, "%v", err)
	}
}
