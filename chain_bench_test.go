//go:build unix

// The benchmarks report CPU time through getrusage, hence unix only.

package audit

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// verifyBenchRows is the size of the table BenchmarkVerify walks: years of
// a busy instance.
const verifyBenchRows = 500_000

// BenchmarkVerify measures Verify over a table of 500,000 chained rows
// (and one unchained TREK row per thousand), with the chain heads of every
// batch in trek.log and its rotated files, as a long-running instance
// leaves them. Run it with
//
//	go test -run '^$' -bench 'BenchmarkVerify$' -benchtime 5x -count 3 .
//
// The table is built once and shared by three sub-benchmarks. Chain is
// Verify itself; target: 500,000 rows/s. BaselineScan is the same SELECT
// scanned into the same types through database/sql, without decoding or
// HMAC: the floor Verify stands on. BaselineHMAC is the chain's HMAC
// alone, over rows already in memory. Each reports rows/s, and rows/cpu-s
// (rows per second of the process's CPU time), which a busy machine
// disturbs far less than the wall clock.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	a := buildChainedDB(b, dir, verifyBenchRows)
	s := a.store.(*sqliteStore)
	ctx := context.Background()
	var total int64
	require.NoError(b, s.db.QueryRow(`SELECT COUNT(*) FROM audit_log`).Scan(&total))

	b.Run("Chain", func(b *testing.B) {
		var rep VerifyReport
		var err error
		cpu := cpuTime()
		for b.Loop() {
			if rep, err = a.Verify(ctx); err != nil {
				b.Fatal(err)
			}
		}
		require.True(b, rep.Intact, "%+v", rep.Problem)
		require.EqualValues(b, verifyBenchRows, rep.Checked)
		require.Positive(b, rep.Anchors)
		reportRows(b, total, cpu)
	})

	b.Run("BaselineScan", func(b *testing.B) {
		var n int64
		cpu := cpuTime()
		for b.Loop() {
			n = scanAll(b, s.db)
		}
		require.Equal(b, total, n)
		reportRows(b, total, cpu)
	})

	b.Run("BaselineHMAC", func(b *testing.B) {
		// A thousand rows as stored, chained over and over: the cost of
		// the HMAC per row, without the database.
		rows, err := s.db.Query(`SELECT ` + chainRowCols + ` FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY id LIMIT 1000`)
		require.NoError(b, err)
		var fields []chainFields
		for rows.Next() {
			var r chainRow
			_, err := scanChainRow(rows, &r)
			require.NoError(b, err)
			fields = append(fields, r.chainFields)
		}
		require.NoError(b, rows.Err())
		c := newChainer(s.chain.key)
		prev := zeroMac
		cpu := cpuTime()
		for b.Loop() {
			for i := range verifyBenchRows {
				prev = c.next(prev, &fields[i%len(fields)])
			}
		}
		reportRows(b, verifyBenchRows, cpu)
	})
}

// reportRows reports rows per second of wall time and of CPU time, for b.N
// passes over rows, CPU time counted from cpu0.
func reportRows(b *testing.B, rows int64, cpu0 time.Duration) {
	n := float64(rows) * float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(n/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scanAll reads every row of audit_log with Verify's query into the types
// Verify scans into, and does nothing else with them.
func scanAll(b *testing.B, db *sql.DB) int64 {
	rows, err := db.Query(`SELECT ` + chainRowCols + ` FROM audit_log ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var (
		id                                     int64
		action                                 string
		userID, actorID, seq                   sql.NullInt64
		created, macHex                        sql.NullString
		resource, details, ip, username, email sql.NullString
		stored                                 bool
		n                                      int64
	)
	for rows.Next() {
		if err := rows.Scan(&id, &created, &userID, &action, &resource, &details, &ip, &username, &email,
			&actorID, &seq, &macHex, &stored); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// buildChainedDB fills a new database in dir with n chained rows through
// the library's own insert path (prepare, the store's insert, the log's
// writeEvents) in batches of MaxBatch, the way the writer commits them
// under load, minus the goroutines. One row in a thousand is TREK's own.
func buildChainedDB(b *testing.B, dir string, n int) *Auditor {
	b.Helper()
	start := time.Now()
	a, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
		Synchronous: "NORMAL"})
	require.NoError(b, err)
	b.Cleanup(func() { a.Close() })
	s := a.store.(*sqliteStore)
	ctx := context.Background()
	events := benchEvents()
	batch := make([]*pending, 0, a.maxBatch)
	flush := func() {
		require.NoError(b, s.insert(ctx, batch, nil))
		require.NoError(b, a.log.writeEvents(batch, time.UTC, false))
		for _, p := range batch {
			pendingPool.Put(p)
		}
		batch = batch[:0]
	}
	for i := range n {
		p, err := a.prepare(ctx, &events[i%len(events)])
		require.NoError(b, err)
		batch = append(batch, p)
		if len(batch) == cap(batch) {
			flush()
		}
		if i%1000 == 999 {
			flush()
			_, err := s.db.Exec(`INSERT INTO audit_log (user_id, action, ip) VALUES (NULL, 'user.passkey_register', '10.0.0.1')`)
			require.NoError(b, err)
		}
	}
	if len(batch) > 0 {
		flush()
	}
	_, err = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(b, err)
	b.Logf("built %d chained rows in %v", n, time.Since(start).Round(time.Millisecond))
	return a
}

// benchEvents are a few hundred events shaped as TREK's handlers send them.
func benchEvents() []Event {
	var out []Event
	for i := range 300 {
		actor := Actor{UserID: int64(i%50 + 1), Username: fmt.Sprintf("user%d", i%50+1), Email: fmt.Sprintf("user%d@example.com", i%50+1)}
		ip := fmt.Sprintf("198.51.100.%d", i%250+1)
		switch i % 4 {
		case 0:
			out = append(out, Event{Action: UserLogin, Actor: actor, IP: ip})
		case 1:
			out = append(out, Event{Action: TripUpdate, Actor: actor, IP: ip, Resource: fmt.Sprintf("trip:%d", i),
				Details: map[string]any{"tripId": i, "trip": "Lisbon", "start_date": "2026-05-01", "end_date": "2026-05-09"}})
		case 2:
			out = append(out, Event{Action: MCPToolCall, Actor: actor, IP: ip, Resource: "get_trip_summary"})
		default:
			out = append(out, Event{Action: UserLoginFailed, IP: ip,
				Details: map[string]any{"email": fmt.Sprintf("someone%d@example.com", i), "reason": "invalid_password"}})
		}
	}
	return out
}

// BenchmarkRecordParallelChain measures Record from 64 goroutines with the
// chain on (as shipped) and off, so the chain's cost reads off as the
// difference. Target: the chain costs at most 10% of events/s. The
// sync=NORMAL pair takes the fsync out of each commit, where the chain's
// share is largest; events/cpu-s shows its share of the CPU.
//
//	go test -c -o audit.test . && for i in 1 2 3 4 5; do
//	  ./audit.test -test.run '^$' -test.bench RecordParallelChain -test.benchtime 20000x; done
//
// (-count 5 would run the five chain=on runs before the five chain=off
// ones, so a change in the machine's load would read as the chain's cost;
// separate runs interleave them.)
func BenchmarkRecordParallelChain(b *testing.B) {
	cases := []struct {
		name  string
		sync  string
		chain bool
	}{
		{"chain=on", "", true},
		{"chain=off", "", false},
		{"sync=NORMAL,chain=on", "NORMAL", true},
		{"sync=NORMAL,chain=off", "NORMAL", false},
	}
	events := benchEvents()
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			a, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "logs", "trek.log"),
				Synchronous: tc.sync})
			require.NoError(b, err)
			defer a.Close()
			if !tc.chain {
				// Before the first Record: the writer reads it only after
				// receiving an event, so this write happens before that read.
				a.store.(*sqliteStore).chain = nil
			}
			ctx := context.Background()
			b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			cpu := cpuTime()
			// One counter for all goroutines, so that the events committed
			// together differ as they would in real traffic (the same event
			// 64 times would touch few index pages and flatter both sides).
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					if err := a.Record(ctx, events[i%int64(len(events))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "events/cpu-s")
			b.StopTimer()
			var chained int64
			require.NoError(b, a.store.(*sqliteStore).db.QueryRow(
				`SELECT COUNT(*) FROM audit_log WHERE chain_seq IS NOT NULL`).Scan(&chained))
			if tc.chain {
				require.EqualValues(b, b.N, chained)
			} else {
				require.Zero(b, chained)
			}
		})
	}
}
