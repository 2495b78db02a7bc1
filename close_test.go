package audit

import (
	"context"
	"fmt"
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
