package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"hash"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicHash is an HMAC whose Write panics, as a bug in the code around it
// would: the next Write only, or every one.
type panicHash struct {
	hash.Hash
	armed, always bool
}

func (h *panicHash) Write(p []byte) (int, error) {
	if h.armed {
		h.armed = h.always
		panic("injected panic")
	}
	return h.Hash.Write(p)
}

// TestWriterPanicInsideTransactionRollsBack: a panic between BEGIN and
// COMMIT, recovered by the host as net/http does, must not leave the writer
// connection inside its transaction. Else the next lone event would be
// inserted into that open transaction and reported stored, then lost with
// the connection, and TREK's own writes would wait on its lock.
func TestWriterPanicInsideTransactionRollsBack(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(ctx, memEvent("before"))) // the head is known from here on

	s := a.store.(*sqliteStore)
	s.chain.mac = &panicHash{Hash: s.chain.mac, armed: true}
	// A writer under load takes the transaction path even for one event,
	// with the head it knows: the path the next lone event would trust.
	memUnderLoad(a)
	assert.PanicsWithValue(t, "injected panic", func() {
		_ = a.Record(ctx, memEvent("panicked"))
	})

	require.NoError(t, a.Record(ctx, memEvent("after")))
	assert.Equal(t, 1, memCountRows(t, cfg.DBPath, "resource = ?", "after"),
		"committed, as seen from another connection, when Record returns")
	assert.Zero(t, memCountRows(t, cfg.DBPath, "resource = ?", "panicked"))

	// TREK's own writer gets the lock.
	trek := openPlainDB(t, cfg.DBPath)
	_, err := trek.Exec(`INSERT INTO audit_log (action, ip) VALUES ('user.login', '10.0.0.1')`)
	require.NoError(t, err)

	require.NoError(t, a.Record(ctx, memEvent("last")))
	rep, err := a.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.Intact, "%+v", rep.Problem)
	assert.EqualValues(t, 3, rep.Checked)
	require.NoError(t, a.Close())
	assert.Equal(t, 4, memCountRows(t, cfg.DBPath, "1"))
}

// panickyDriver opens SQLite connections for a host's pool, and panics
// instead while failing is set, as a driver that has just panicked may do
// again.
type panickyDriver struct {
	sqlite3.SQLiteDriver
	dsn     string
	failing atomic.Bool
}

func (d *panickyDriver) Connect(context.Context) (driver.Conn, error) {
	if d.failing.Load() {
		panic("injected panic opening a connection")
	}
	return d.Open(d.dsn)
}

func (d *panickyDriver) Driver() driver.Driver { return d }

// TestWriterPanicOnAHostPoolWhoseDriverWouldPanicAgain: after a panic
// inside the writer's transaction, on a host's pool of two connections
// whose driver would panic again if asked to open one. The writer must be
// given up all the same, else the next lone event goes into the
// transaction left open and is reported stored, then lost; and the panic
// path must not ask the pool for a connection: a panic while the pool
// opens one leaves it counting a connection that does not exist, and
// TREK's own queries would then wait for good.
func TestWriterPanicOnAHostPoolWhoseDriverWouldPanicAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "travel.db")
	createTrekDB(t, dbPath, map[int64]string{7: "alice"})
	drv := &panickyDriver{dsn: "file:" + dbPath + "?_journal_mode=WAL&_busy_timeout=5000"}
	host := sql.OpenDB(drv)
	t.Cleanup(func() { host.Close() })
	host.SetMaxOpenConns(2)
	host.SetMaxIdleConns(0) // every connection the pool gives is opened anew
	a := openAuditor(t, Config{DB: host, LogPath: filepath.Join(dir, "trek.log"), ChainKeyFile: filepath.Join(dir, ".audit_key")})
	require.NoError(t, a.Record(ctx, memEvent("before")))

	s := a.store.(*sqliteStore)
	s.chain.mac = &panicHash{Hash: s.chain.mac, armed: true}
	memUnderLoad(a)
	drv.failing.Store(true)
	assert.PanicsWithValue(t, "injected panic", func() { _ = a.Record(ctx, memEvent("panicked")) })
	drv.failing.Store(false)
	a.lastBatch = 1 // the next event comes alone, after a pause

	require.NoError(t, a.Record(ctx, memEvent("after")))
	assert.Equal(t, 1, memCountRows(t, dbPath, "resource = ?", "after"),
		"committed, as seen from another connection, when Record returns")
	watchdog, cancel := context.WithTimeout(ctx, time.Minute) // not a wait: the query answers at once or never
	defer cancel()
	var users int
	require.NoError(t, host.QueryRowContext(watchdog, `SELECT COUNT(*) FROM users`).Scan(&users), "TREK's own query")
	assert.Equal(t, 1, users)
	require.NoError(t, a.Close())
	assert.Equal(t, 1, memCountRows(t, dbPath, "resource = ?", "after"))
	assert.Zero(t, memCountRows(t, dbPath, "resource = ?", "panicked"))
}

// TestWriterPanicAfterCommitSaysStored: the callers of a batch whose writer
// panicked after the commit must not hear ErrStore ("not stored, safe to
// retry"): their events are stored, and retrying would store them twice.
func TestWriterPanicAfterCommitSaysStored(t *testing.T) {
	const callers = 4
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	// Every batch panics after its commit, while its log lines are
	// written (the chain-head line's tag is an HMAC).
	a.log.anchors.mac = &panicHash{Hash: a.log.anchors.mac, armed: true, always: true}
	queued := make(chan struct{}, callers)
	a.queued = func() { queued <- struct{}{} }

	// With the write lock held elsewhere, the first writer waits at BEGIN
	// while the others queue; at least two then share a batch.
	release := memHoldWriteLock(t, cfg.DBPath)
	type outcome struct {
		err      error
		panicked bool
	}
	done := make(chan outcome, callers)
	for i := range callers {
		go func() {
			var o outcome
			defer func() {
				o.panicked = recover() != nil
				done <- o
			}()
			o.err = a.Record(context.Background(), memEvent("e"+string(rune('0'+i))))
		}()
	}
	for range callers {
		<-queued
	}
	release()

	var panicked, toldStored int
	for range callers {
		o := <-done
		switch {
		case o.panicked:
			panicked++
		case o.err != nil:
			assert.ErrorIs(t, o.err, ErrLogWrite)
			assert.False(t, errors.Is(o.err, ErrStore), "a stored event reported as not stored: %v", o.err)
			toldStored++
		}
	}
	assert.Positive(t, panicked, "a batch of two or more was written")
	assert.Positive(t, toldStored, "its other callers were answered")
	assert.Equal(t, callers, memCountRows(t, cfg.DBPath, "1"), "every event is stored once")
	require.NoError(t, a.Close())
}

// TestClosePanicDrainsTheRestFirst: when a batch Close writes panics, Close
// must not close the files while anything is still queued or another
// caller has taken the writer's place: it takes the place back, commits
// the rest, closes the files, and only then passes the panic on.
func TestClosePanicDrainsTheRestFirst(t *testing.T) {
	a, obs, dbPath := memOpenObserved(t, Config{MaxBatch: 1, BusyTimeout: time.Minute})
	ctx := context.Background()
	p1, err := a.enqueue(ctx, &Event{Action: UserLogin, IP: "10.0.0.1"})
	require.NoError(t, err)
	p2, err := a.enqueue(ctx, &Event{Action: UserLogin, IP: "10.0.0.2"})
	require.NoError(t, err)

	release := memHoldWriteLock(t, dbPath)
	// The first batch panics once committed, while its log lines are
	// written.
	a.log.anchors.mac = &panicHash{Hash: a.log.anchors.mac, armed: true}
	closed := make(chan any, 1)
	go func() {
		defer func() { closed <- recover() }()
		a.Close()
	}()
	require.Equal(t, 1, <-obs.batches, "Close writes the first event alone")
	// p2's caller waits for its commit, and for the writer's place.
	waited := make(chan error, 1)
	go func() { waited <- a.await(p2) }()
	release()

	assert.Equal(t, "injected panic", <-closed)
	first := <-p1.done
	assert.ErrorIs(t, first, ErrLogWrite, "committed before the panic: stored")
	assert.False(t, errors.Is(first, ErrStore), first)
	assert.NoError(t, <-waited, "the event after the panic is committed before the files close")
	assert.Equal(t, 2, memCountRows(t, dbPath, "1"))
	assert.ErrorIs(t, a.Record(ctx, Event{Action: UserLogin}), ErrClosed)
}

// TestWriterPanicLeavesItsOwnEventUnwritten: a writer whose batch did not
// hold its own event (MaxBatch 1, another event queued first) panics. Its
// caller's answer is the panic, so its event, still queued, must never be
// written: the next writer would otherwise commit it with no one told, and
// a host that recovers the panic (net/http) and tries again would store it
// twice. The event queued first gets its error; the next events are
// stored.
func TestWriterPanicLeavesItsOwnEventUnwritten(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.MaxBatch = 1
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(ctx, memEvent("warm")))
	first := closeAccept(t, a, memEvent("queued-first")) // accepted, its caller not yet in line

	s := a.store.(*sqliteStore)
	s.chain.mac = &panicHash{Hash: s.chain.mac, armed: true}
	assert.PanicsWithValue(t, "injected panic", func() { _ = a.Record(ctx, memEvent("writer-own")) })
	assert.ErrorIs(t, <-first, ErrStore, "the batch written was queued-first's")
	assert.Zero(t, a.Stats().QueueDepth, "the writer's own event waits for no one")

	require.NoError(t, a.Record(ctx, memEvent("later")))
	require.NoError(t, a.Close())
	assert.Zero(t, memCountRows(t, cfg.DBPath, "resource = ?", "writer-own"))
	assert.NotContains(t, string(readLog(t, cfg.LogPath)), `"writer-own"`)
	assert.Equal(t, 1, memCountRows(t, cfg.DBPath, "resource = ?", "later"))
	assert.Zero(t, memCountRows(t, cfg.DBPath, "resource = ?", "queued-first"))
}
