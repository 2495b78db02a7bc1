package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pruneBenchRows is the size of the table BenchmarkPrune prunes half of:
// a busy instance's few months.
const pruneBenchRows = 200_000

// BenchmarkPrune measures Prune deleting the older half of a table of
// pruneBenchRows chained rows, a second apart, beside what the same
// deletion costs as one plain DELETE on a copy of the same file
// (BaselineDelete) and a Verify of the whole table (Verify), which Prune
// runs first. TREK's own writes wait for Prune's transaction
// (WriteLocked: the rows it deletes walked again, deleted, the record
// written), not for the walk, which reads. Each reports rows deleted (or
// walked) per second.
//
//	go test -run '^$' -bench '^BenchmarkPrune$' -benchtime 3x .
func BenchmarkPrune(b *testing.B) {
	dir := b.TempDir()
	template := filepath.Join(dir, "template.db")
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	key := make([]byte, 32)
	{
		cfg := Config{DBPath: template, LogPath: filepath.Join(dir, "logs", "trek.log"), ChainKey: key, Synchronous: "NORMAL"}
		a, err := Open(cfg)
		require.NoError(b, err)
		var clock atomic.Int64
		a.now = func() time.Time { return base.Add(time.Duration(clock.Add(1)) * time.Second) }
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for next.Add(1) <= pruneBenchRows {
					if err := a.Record(context.Background(), Event{Action: UserLogin, Resource: "bench", IP: "203.0.113.9",
						Actor: Actor{UserID: 7, Username: "alice", Email: "alice@example.com"}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		require.NoError(b, a.Close())
	}
	half := base.Add(pruneBenchRows / 2 * time.Second)
	// copyTemplate puts a copy of the table at a new path, and returns it.
	n := 0
	copyTemplate := func(b *testing.B) string {
		n++
		path := filepath.Join(dir, fmt.Sprintf("copy%d.db", n))
		data, err := os.ReadFile(template)
		require.NoError(b, err)
		require.NoError(b, os.WriteFile(path, data, 0o600))
		return path
	}
	open := func(b *testing.B, path string) *Auditor {
		a, err := Open(Config{DBPath: path, LogPath: filepath.Join(dir, "logs", "none.log"), ChainKey: key})
		require.NoError(b, err)
		a.now = func() time.Time { return base.Add(pruneBenchRows * 2 * time.Second) }
		return a
	}
	report := func(b *testing.B, rows int64) {
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}

	// each runs timed on a fresh copy of the table b.N times, and
	// reports the rows it deleted per second.
	each := func(b *testing.B, timed func(a *Auditor) (deleted int64)) {
		var deleted int64
		for range b.N {
			b.StopTimer()
			path := copyTemplate(b)
			a := open(b, path)
			b.StartTimer()
			deleted = timed(a)
			b.StopTimer()
			require.NoError(b, a.Close())
			require.NoError(b, os.Remove(path))
			b.StartTimer()
		}
		report(b, deleted)
	}
	b.Run("Prune", func(b *testing.B) {
		each(b, func(a *Auditor) int64 {
			p, err := a.Prune(context.Background(), half, "bench")
			require.NoError(b, err)
			return p.Rows
		})
	})
	b.Run("WriteLocked", func(b *testing.B) {
		// Prune's transaction alone, which TREK's writes wait for: the
		// rows to delete found and walked again, deleted, and the record
		// written.
		each(b, func(a *Auditor) int64 {
			p, err := a.store.(*sqliteStore).pruneTx(context.Background(), half, "bench", func() string { return "2025-01-01T00:00:00Z" })
			require.NoError(b, err)
			return p.Rows
		})
	})
	b.Run("BaselineDelete", func(b *testing.B) {
		each(b, func(a *Auditor) int64 {
			b.StopTimer()
			db := a.store.(*sqliteStore).db
			var cut int64
			require.NoError(b, db.QueryRow(`SELECT MIN(id) FROM audit_log WHERE created_at >= ?`, half.Format(sqliteTimeLayout)).Scan(&cut))
			b.StartTimer()
			tx, err := db.Begin()
			require.NoError(b, err)
			res, err := tx.Exec(`DELETE FROM audit_log WHERE id < ?`, cut)
			require.NoError(b, err)
			require.NoError(b, tx.Commit())
			n, err := res.RowsAffected()
			require.NoError(b, err)
			return n
		})
	})
	b.Run("Verify", func(b *testing.B) {
		path := copyTemplate(b)
		a := open(b, path)
		defer a.Close()
		var walked int64
		for b.Loop() {
			rep, err := a.Verify(context.Background())
			require.NoError(b, err)
			require.True(b, rep.Intact)
			walked = rep.Checked
		}
		report(b, walked)
	})
}
