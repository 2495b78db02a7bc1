package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// BenchmarkTREKWriteUnderAuditLoad measures what the audit writer costs
// TREK's own writes to travel.db: an op is one UPDATE of TREK's users table
// on TREK's handle, made every trekWriteEvery (the pause is not timed)
// while callers goroutines keep calling Record. Both
// connections want SQLite's one write lock; a connection that finds it
// taken sleeps in SQLite's busy handler (1, 2, 5, 10 ... 100 ms) and tries
// again, while the audit writer takes the lock again as soon as it has
// committed. TREK's handle waits up to 5 s for the lock, as
// better-sqlite3 does by default; a write still refused then counts in
// refused (and its 5 s in the percentiles). It reports the median, 99th
// percentile and slowest TREK write in milliseconds, and the Record calls
// made meanwhile:
//
//	go test -run '^$' -bench TREKWriteUnderAuditLoad -benchtime 100x .
func BenchmarkTREKWriteUnderAuditLoad(b *testing.B) {
	const trekWriteEvery = 10 * time.Millisecond
	for _, callers := range []int{0, 1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			recBenchSettle()
			dir := b.TempDir()
			dbPath := filepath.Join(dir, "travel.db")
			createTrekDB(b, dbPath, map[int64]string{1: "user01"}).Close()
			a, err := Open(Config{DBPath: dbPath, LogPath: filepath.Join(dir, "logs", "trek.log")})
			if err != nil {
				b.Fatal(err)
			}
			host, err := sql.Open("sqlite3", "file:"+dbPath+"?_foreign_keys=on&_busy_timeout=5000")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { host.Close() })
			b.Cleanup(func() { a.Close() })
			rows := recBenchRows()
			var stop atomic.Bool
			var recorded atomic.Int64
			var wg sync.WaitGroup
			started := make(chan struct{}, callers)
			for range callers {
				wg.Go(func() {
					for !stop.Load() {
						i := recorded.Add(1)
						if i == int64(callers) {
							close(started)
						}
						if err := a.Record(context.Background(), rows[i%int64(len(rows))].event); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			if callers > 0 {
				<-started // every caller has begun its first Record
			}
			took := make([]time.Duration, 0, b.N)
			refused := 0
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				time.Sleep(trekWriteEvery)
				b.StartTimer()
				start := time.Now()
				_, err := host.Exec(`UPDATE users SET username = ? WHERE id = 1`, fmt.Sprintf("user%d", i))
				var se sqlite3.Error
				switch {
				case errors.As(err, &se) && se.Code == sqlite3.ErrBusy:
					refused++
				case err != nil:
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			slices.Sort(took)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
			b.ReportMetric(ms(took[len(took)*99/100]), "p99-ms")
			b.ReportMetric(ms(took[len(took)-1]), "max-ms")
			b.ReportMetric(float64(recorded.Load()), "records")
			b.ReportMetric(float64(refused), "refused")
		})
	}
}
