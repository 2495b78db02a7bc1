package audit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memBatchObserver wraps the Auditor's real SQLite store and reports the size
// of every batch the writer hands it, as the insert begins, so a test can
// see how events are grouped into transactions and when the writer is busy.
// (Under load the writer adds events while the store writes; those are not
// counted.) What is stored is unchanged.
type memBatchObserver struct {
	store
	batches chan int
	queued  <-chan struct{} // see memWatchQueue
}

func (o *memBatchObserver) insert(ctx context.Context, batch []*pending, more func() []*pending) error {
	o.batches <- len(batch)
	return o.store.insert(ctx, batch, more)
}

// memOpenObserved opens an Auditor on new files in a temporary folder and puts
// a memBatchObserver around its store before any event is recorded.
func memOpenObserved(t *testing.T, cfg Config) (*Auditor, *memBatchObserver, string) {
	t.Helper()
	dir := t.TempDir()
	cfg.DBPath, cfg.LogPath = filepath.Join(dir, "travel.db"), filepath.Join(dir, "logs", "trek.log")
	a, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	// No event has been recorded yet, so nothing has read a.store: the
	// first batch is written after a Record that starts after this write.
	obs := &memBatchObserver{store: a.store, batches: make(chan int, 4096), queued: memWatchQueue(a)}
	a.store = obs
	return a, obs, cfg.DBPath
}

// memWatchQueue returns a channel told each time an event enters a's queue
// (through the hook Record calls). Call it before the first Record.
func memWatchQueue(a *Auditor) <-chan struct{} {
	c := make(chan struct{}, 1<<16)
	a.queued = func() { c <- struct{}{} }
	return c
}

// memHoldWriteLock takes SQLite's write lock on dbPath from a second
// connection, as TREK's own server does while it writes, so the Auditor's
// writer stalls at BEGIN IMMEDIATE until release is called.
func memHoldWriteLock(t *testing.T, dbPath string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=5000")
	require.NoError(t, err)
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	_, err = conn.ExecContext(context.Background(), "BEGIN IMMEDIATE")
	require.NoError(t, err)
	var once sync.Once
	release = func() {
		once.Do(func() {
			_, err := conn.ExecContext(context.Background(), "ROLLBACK")
			assert.NoError(t, err)
			assert.NoError(t, conn.Close())
			assert.NoError(t, db.Close())
		})
	}
	t.Cleanup(release)
	return release
}

// memRecordAsync calls Record in a goroutine; its error arrives on the
// returned channel.
func memRecordAsync(a *Auditor, e Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- a.Record(context.Background(), e) }()
	return done
}

// memStallWriter holds the database's write lock and records one event, which
// the writer takes alone and then waits on. It returns once the writer is
// inside that insert, so nothing else leaves the queue until release.
func memStallWriter(t *testing.T, a *Auditor, obs *memBatchObserver, dbPath string) (release func(), first <-chan error) {
	t.Helper()
	release = memHoldWriteLock(t, dbPath)
	first = memRecordAsync(a, memEvent("first"))
	require.Equal(t, 1, <-obs.batches, "the first event is a batch of its own")
	return release, first
}

// memWaitQueueDepth waits until n events wait in the queue, with the writer
// stalled so that none leaves it. Callers have been started in goroutines;
// queued (memWatchQueue) wakes it as each event enters the queue, and it
// looks at the depth only then.
func memWaitQueueDepth(t *testing.T, a *Auditor, queued <-chan struct{}, n int) {
	t.Helper()
	for a.Stats().QueueDepth < n {
		select {
		case <-queued:
		case <-time.After(30 * time.Second):
			require.FailNowf(t, "queue too short", "queue depth %d, never reached %d", a.Stats().QueueDepth, n)
		}
	}
	require.Equal(t, n, a.Stats().QueueDepth)
}

func memEvent(resource string) Event {
	return Event{
		Action:   AdminUserUpdate,
		Actor:    Actor{UserID: 7, Username: "alice", Email: "alice@example.com"},
		Resource: resource,
		Details:  map[string]any{"role": "admin"},
		IP:       "203.0.113.9",
	}
}

func memCountRows(t *testing.T, dbPath, where string, args ...any) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE "+where, args...).Scan(&n))
	return n
}

// memCountEventLines counts trek.log's event lines (each ends in ip=...).
func memCountEventLines(t *testing.T, logPath string) int {
	t.Helper()
	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	return strings.Count(string(b), " ip=")
}

// memRecordCheckVisible calls Record in a goroutine and, the moment it
// returns nil, counts the rows with e's resource through db, a handle of its
// own on the database file: Record returns only after the commit, so that
// count is 1 already. The answer arrives on the returned channel.
func memRecordCheckVisible(a *Auditor, db *sql.DB, e Event) <-chan memVisible {
	done := make(chan memVisible, 1)
	go func() {
		v := memVisible{err: a.Record(context.Background(), e)}
		if v.err == nil {
			v.countErr = db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE resource = ?`, e.Resource).Scan(&v.rows)
		}
		done <- v
	}()
	return done
}

// memVisible is what memRecordCheckVisible saw: Record's error and, after
// a nil one, how many rows held the event's resource right then.
type memVisible struct {
	err      error
	rows     int
	countErr error
}

// TestRecordGroupsWaitingCallersIntoOneTransaction: callers that queue while
// the writer is stalled are committed together, in transactions of at most
// MaxBatch events, and each caller's row is in the database file, seen
// through another connection, as soon as its Record returns nil.
func TestRecordGroupsWaitingCallersIntoOneTransaction(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxBatch    int
		waiting     int   // callers queued while the writer is stalled
		wantBatches []int // the transactions they are committed in, in order
	}{
		{name: "all waiting callers share one commit", maxBatch: 512, waiting: 40, wantBatches: []int{40}},
		{name: "a batch holds at most MaxBatch events", maxBatch: 16, waiting: 40, wantBatches: []int{16, 16, 8}},
		{name: "a single waiting caller commits alone", maxBatch: 512, waiting: 1, wantBatches: []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, obs, dbPath := memOpenObserved(t, Config{MaxBatch: tc.maxBatch, BusyTimeout: time.Minute})
			release, first := memStallWriter(t, a, obs, dbPath)
			reader := openPlainDB(t, dbPath)
			done := make([]<-chan memVisible, tc.waiting)
			for i := range done {
				done[i] = memRecordCheckVisible(a, reader, memEvent(fmt.Sprintf("waiting:%02d", i)))
			}
			memWaitQueueDepth(t, a, obs.queued, tc.waiting)
			release()

			require.NoError(t, <-first)
			for i, d := range done {
				v := <-d
				if assert.NoError(t, v.err, "caller %d", i) {
					require.NoError(t, v.countErr, "caller %d", i)
					assert.Equal(t, 1, v.rows, "caller %d: its row is committed when Record returns", i)
				}
			}
			var got []int
			for sum := 0; sum < tc.waiting; {
				n := <-obs.batches
				got = append(got, n)
				sum += n
			}
			assert.Equal(t, tc.wantBatches, got)
			require.NoError(t, a.Close())
			assert.Equal(t, 1+tc.waiting, memCountRows(t, dbPath, "1"))
			assert.Equal(t, 1+tc.waiting, memCountEventLines(t, filepath.Join(filepath.Dir(dbPath), "logs", "trek.log")))
		})
	}
}

// memUnderLoad makes a's next writer act as right after a shared commit,
// as if busy callers had just been released. Call it before any Record.
func memUnderLoad(a *Auditor) {
	a.lastBatch, a.lastCommit, a.lastEnd = 40, time.Hour, time.Now()
}

// TestWriterUnderLoadTakesArrivalsIntoItsTransaction: callers that queue
// while a writer under load is in its transaction are committed in it, not
// in the next one; outside load they wait for the next.
func TestWriterUnderLoadTakesArrivalsIntoItsTransaction(t *testing.T) {
	for _, tc := range []struct {
		name      string
		underLoad bool
		wantLater []int // the transactions after the first, in order
	}{
		{"right after a shared commit", true, nil},
		{"after a pause", false, []int{5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, obs, dbPath := memOpenObserved(t, Config{BusyTimeout: time.Minute})
			if tc.underLoad {
				memUnderLoad(a)
			}
			// The writer takes the first event, then stalls at BEGIN while
			// five more queue.
			release, first := memStallWriter(t, a, obs, dbPath)
			done := make([]<-chan error, 5)
			for i := range done {
				done[i] = memRecordAsync(a, memEvent("arrived"))
			}
			memWaitQueueDepth(t, a, obs.queued, len(done))
			release()

			require.NoError(t, <-first)
			for _, d := range done {
				assert.NoError(t, <-d)
			}
			require.NoError(t, a.Close())
			close(obs.batches)
			var later []int
			for n := range obs.batches {
				later = append(later, n)
			}
			assert.Equal(t, tc.wantLater, later)
			assert.Equal(t, 1+len(done), memCountRows(t, dbPath, "1"))
			assert.Equal(t, 1+len(done), memCountEventLines(t, filepath.Join(filepath.Dir(dbPath), "logs", "trek.log")))
		})
	}
}

// memJoinObserver wraps the real store: it tells entered when a batch
// reaches it, waits for proceed, then lets the store write, and tells took
// how many events the transaction came to, arrivals included, and gives
// back the store's outcome.
type memJoinObserver struct {
	store
	entered, proceed chan struct{}
	took             chan int
}

func (f *memJoinObserver) insert(ctx context.Context, batch []*pending, more func() []*pending) error {
	select {
	case f.entered <- struct{}{}:
	default: // a later batch: the test waits on the first only
	}
	<-f.proceed
	n := len(batch)
	counted := more
	if more != nil {
		counted = func() []*pending {
			rows := more()
			n += len(rows)
			return rows
		}
	}
	err := f.store.insert(ctx, batch, counted)
	f.took <- n
	return err
}

// TestArrivalsShareTheOutcomeOfAFailedTransaction: events a writer under
// load took into a transaction that then fails get its error, like the
// event it began with, and none is stored or logged. The fault is SQLite's
// own: a trigger refuses the last arrival's row, after the others are
// written in the same transaction.
func TestArrivalsShareTheOutcomeOfAFailedTransaction(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	_, err := openPlainDB(t, cfg.DBPath).Exec(`CREATE TRIGGER test_refuse BEFORE INSERT ON audit_log
		WHEN NEW.resource = 'refused' BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END`)
	require.NoError(t, err)
	memUnderLoad(a)
	f := &memJoinObserver{store: a.store, entered: make(chan struct{}, 1), proceed: make(chan struct{}), took: make(chan int, 8)}
	a.store = f
	queued := memWatchQueue(a)

	first := memRecordAsync(a, memEvent("first"))
	<-f.entered
	done := []<-chan error{first}
	for i := range 5 {
		res := "arrived"
		if i == 4 {
			res = "refused"
		}
		done = append(done, memRecordAsync(a, memEvent(res)))
	}
	memWaitQueueDepth(t, a, queued, 5)
	close(f.proceed)

	assert.Equal(t, 6, <-f.took, "the five arrivals joined the first event's transaction")
	for i, d := range done {
		err := <-d
		assert.ErrorIs(t, err, ErrStore, "event %d", i)
		assert.ErrorContains(t, err, "the disk is on fire", "event %d", i)
	}
	st := a.Stats()
	assert.Equal(t, uint64(0), st.Recorded)
	assert.Equal(t, uint64(1), st.StoreErrors, "one failed transaction")
	require.NoError(t, a.Close())
	assert.Zero(t, memCountRows(t, cfg.DBPath, "1"))
	assert.NoFileExists(t, cfg.LogPath, "trek.log, opened at the first logged event, was never needed")
}

func TestRecordAloneCommitsWithoutWaitingForCompany(t *testing.T) {
	a, obs, dbPath := memOpenObserved(t, Config{})
	for i := range 5 {
		require.NoError(t, a.Record(context.Background(), memEvent("alone")))
		// Record has returned, so its batch has been handed to the store.
		assert.Equal(t, 1, <-obs.batches, "event %d", i)
		assert.Equal(t, i+1, memCountRows(t, dbPath, "resource = ?", "alone"), "committed when Record returned")
	}
}

// TestWriterWaitsForCompanyOnlyUnderLoad: the writer gives released
// callers time to join its batch only right after a shared commit.
func TestWriterWaitsForCompanyOnlyUnderLoad(t *testing.T) {
	now := time.Date(2026, 4, 20, 10, 11, 53, 0, time.UTC)
	const commit = 2 * time.Millisecond
	for _, tc := range []struct {
		name      string
		lastBatch int
		sinceEnd  time.Duration
		want      bool
	}{
		{"the first batch", 0, 0, false},
		{"right after a commit of its own", 1, 10 * time.Microsecond, false},
		{"right after a shared commit", 40, 10 * time.Microsecond, true},
		{"a shared commit that ended a while ago", 40, 5 * commit, false},
		{"a shared commit that ended an hour ago", 40, time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Auditor{lastBatch: tc.lastBatch, lastCommit: commit, lastEnd: now.Add(-tc.sinceEnd)}
			if tc.lastBatch == 0 {
				a.lastCommit, a.lastEnd = 0, time.Time{}
			}
			assert.Equal(t, tc.want, a.underLoad(now))
		})
	}
}

func TestRecordWaitsForRoomInAFullQueueOnlyUntilItsContextEnds(t *testing.T) {
	const queueSize = 4
	a, obs, dbPath := memOpenObserved(t, Config{QueueSize: queueSize, BusyTimeout: time.Minute})
	release, first := memStallWriter(t, a, obs, dbPath)
	// The queue fills up; two more callers wait for room.
	done := make([]<-chan error, queueSize+2)
	for i := range done {
		done[i] = memRecordAsync(a, memEvent("accepted"))
	}
	memWaitQueueDepth(t, a, obs.queued, queueSize)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
		reason  string
	}{
		{name: "deadline passes while waiting for room",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded, reason: "queue_timeout"},
		{name: "context already cancelled",
			ctx:     func() (context.Context, context.CancelFunc) { return cancelled, func() {} },
			wantErr: context.Canceled, reason: "queue_cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- a.Record(ctx, memEvent("refused")) }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				t.Fatal("Record still waits for room after its context ended")
			}
			require.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), "queue full")
			assert.Equal(t, uint64(1), a.Stats().RejectedBy[tc.reason])
			assert.Equal(t, queueSize, a.Stats().QueueDepth, "the queue never grows past its size")
		})
	}

	release()
	require.NoError(t, <-first)
	for _, d := range done {
		assert.NoError(t, <-d, "an accepted event is committed once the lock is released")
	}
	require.NoError(t, a.Close())
	assert.Equal(t, 1+len(done), memCountRows(t, dbPath, "1"))
	assert.Zero(t, memCountRows(t, dbPath, "resource = ?", "refused"), "a refused event is not stored")
	assert.Equal(t, uint64(1+len(done)), a.Stats().Recorded)
}

// memLiveHeap is the heap in use once garbage is collected. Two cycles, so
// that sync.Pool's victim cache is emptied as well.
func memLiveHeap() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// memOpenFlat opens the Auditor the memory measurements run on: durable
// commits off (the heap is the question, not the disk), and trek.log
// rotated every MiB, so that rotation is part of the run.
func memOpenFlat(tb testing.TB) *Auditor {
	tb.Helper()
	dir := tb.TempDir()
	a, err := Open(Config{
		DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
		Synchronous: "NORMAL", LogMaxSizeMB: 1,
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { a.Close() })
	return a
}

// memFeed records the events numbered from to upTo-1 from 512 concurrent
// callers, enough for full batches, and fails if any Record does.
func memFeed(tb testing.TB, a *Auditor, from, upTo int64) {
	tb.Helper()
	const callers = 512
	rows := recBenchRows()
	var next atomic.Int64
	next.Store(from)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range callers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < upTo; i = next.Add(1) - 1 {
				if err := a.Record(context.Background(), rows[i%int64(len(rows))].event); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(tb, failed.Load(), "Record failed")
}

// memFlatBaseline is how many events the heap is first measured after.
const memFlatBaseline = 10_000

// TestRecordMemoryStaysFlat guards against a leak: it records 10,000
// events, measures the heap, goes on to 100,000 and measures again; the Go
// heap the Auditor keeps must not depend on how many events went through
// it. (BenchmarkRecordMemory measures the figure the README gives, over a
// million.)
//
// The bound, 512 KiB, is far above what the measurement varies by (pooled
// batches, the writer's reused buffers, lumberjack's rotation, the
// runtime's own spans: under 100 KiB here) and below what keeping anything
// per event costs: a single pointer per event over 90,000 events is 703
// KiB, and any leak of 6 bytes an event or more crosses it. SQLite's own
// memory is C memory, outside the Go heap; its page cache is bounded by
// cache_size.
func TestRecordMemoryStaysFlat(t *testing.T) {
	const (
		large   = 100_000
		maxGrow = 512 << 10
	)
	a := memOpenFlat(t)
	memFeed(t, a, 0, memFlatBaseline)
	before := memLiveHeap()
	memFeed(t, a, memFlatBaseline, large)
	after := memLiveHeap()

	st := a.Stats()
	require.Equal(t, uint64(large), st.Recorded)
	assert.Zero(t, st.QueueDepth)
	grow := int64(after.HeapInuse) - int64(before.HeapInuse)
	assert.Less(t, grow, int64(maxGrow), "heap grew by %d KiB between %d and %d events", grow>>10, memFlatBaseline, large)
}

// BenchmarkRecordMemory measures the heap in use after 10,000 events (the
// baseline, in the same run) and again after 10,000 + b.N, for the README:
//
//	go test -run '^$' -bench '^BenchmarkRecordMemory$' -benchtime 1000000x .
//
// heap-KiB-base and heap-KiB-end are the two figures, grow-KiB their
// difference. events/s is incidental (synchronous=NORMAL, 512 callers).
func BenchmarkRecordMemory(b *testing.B) {
	a := memOpenFlat(b)
	memFeed(b, a, 0, memFlatBaseline)
	before := memLiveHeap()
	b.ResetTimer()
	memFeed(b, a, memFlatBaseline, memFlatBaseline+int64(b.N))
	b.StopTimer()
	after := memLiveHeap()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(before.HeapInuse>>10), "heap-KiB-base")
	b.ReportMetric(float64(after.HeapInuse>>10), "heap-KiB-end")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/1024, "grow-KiB")
}
