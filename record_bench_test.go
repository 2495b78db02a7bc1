package audit

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks below compare Record with what SQLite itself can do on the
// same machine, in the same run, on the same schema and the same rows:
//
//	go test -c -o audit.test . && for i in 1 2 3 4 5; do
//	  ./audit.test -test.run '^$' -test.benchmem \
//	    -test.bench 'BulkInsertCeiling|AutocommitInsert|RecordParallel$|RecordSerial$'
//	done > rec.txt && benchstat -col /sync rec.txt
//
// Five separate runs rather than -count 5, which would run all five of one
// benchmark before the next: a disk whose latency drifts over minutes
// would read as a difference between them.
//
// Targets: RecordParallel reaches at least half the events/s of
// BulkInsertCeiling/log=off at the same synchronous setting, and
// RecordSerial comes within 10% of AutocommitInsert/log=on and 15% of
// AutocommitInsert/log=off. (No slower than either cannot hold: a lone
// event must be checked, encoded, chained and guarded in front of the same
// fsync the naive insert waits for; the README's Speed section has the
// figures.) BenchmarkRecordSerialPaired measures these ratios directly,
// with the three interleaved event by event.
//
// Record pays for trek.log as well as SQLite; AutocommitInsert and
// BulkInsertCeiling/log=off write SQLite only, and
// BulkInsertCeiling/log=on also writes the same lines to trek.log through
// lumberjack, once per transaction, as the writer does.

// recBenchSyncModes are the synchronous settings every benchmark runs at.
var recBenchSyncModes = []string{"FULL", "NORMAL"}

// recBenchCallers is how many goroutines call Record at once in
// BenchmarkRecordParallel: a busy TREK instance's concurrent requests.
const recBenchCallers = 64

// recBenchWarmup is how many events every benchmark writes, the same way
// it then measures, before its timer starts: two of the store's checkpoint
// cycles counted in events, and for lone events, which a writer that never
// pauses starts over only at the 8,000-page backstop, four of those. A new
// WAL file grows with each commit until the first checkpoint lets SQLite
// start again at its beginning, and while it grows each fsync also writes
// the file's new blocks and size (its inode) to disk. A server pays that
// once after it opens the database; measured from a new file it would
// dominate a benchmark of a few thousand events, at a different share for
// each (the baselines checkpoint every 1,000 pages).
const recBenchWarmup = 2 * ckptEvery

// recBenchRow is one event of the workload with the columns the store makes of
// it, so the baselines that bypass Record insert exactly what Record stores.
type recBenchRow struct {
	event   Event
	details []byte // the stored details JSON
	label   string // for the log line
	subject string
}

// recBenchRows is the workload: a rotation of realistic events, each with an
// actor that has an email, a client IP and about 60 bytes of details.
var recBenchRows = sync.OnceValue(func() []recBenchRow {
	tools := []string{"list_trips", "get_trip", "create_place", "search_places"}
	cities := []string{"Lisbon", "Kyoto", "Reykjavik", "Oaxaca", "Tbilisi", "Hobart"}
	red := newRedactor(nil)
	rows := make([]recBenchRow, 0, 240)
	for i := range cap(rows) {
		uid := int64(1 + i%37)
		actor := Actor{UserID: uid, Username: fmt.Sprintf("user%02d", uid), Email: fmt.Sprintf("user%02d@example.com", uid)}
		ip := fmt.Sprintf("203.0.113.%d", 1+i%200)
		if i%5 == 0 {
			ip = fmt.Sprintf("2001:db8:85a3::%x", 1+i%200)
		}
		city := cities[i%len(cities)]
		tripID := 4000 + i
		var e Event
		switch i % 6 {
		case 0:
			e = Event{Action: UserLogin, Details: map[string]any{"method": "local", "mfa": i%2 == 0, "agent": "Firefox/128.0 (X11; Linux)"}}
		case 1:
			e = Event{Action: TripCreate, Resource: fmt.Sprintf("trip:%d", tripID),
				Details: map[string]any{"title": city + " in spring", "tripId": tripID, "reminder_days": 3}}
		case 2:
			e = Event{Action: TripUpdate, Resource: fmt.Sprintf("trip:%d", tripID),
				Details: map[string]any{"tripId": tripID, "trip": city + " in spring", "start_date": "2026-05-01"}}
		case 3:
			e = Event{Action: MCPToolCall, Resource: tools[i%len(tools)],
				Details: map[string]any{"client": "desktop", "duration_ms": 12 + i%90, "ok": true, "args": 2}}
		case 4:
			e = Event{Action: BackupCreate, Resource: fmt.Sprintf("backup-2026-04-%02d.zip", 1+i%28),
				Details: map[string]any{"size_bytes": 1048576 + i, "files": 37, "auto": false}}
		case 5:
			e = Event{Action: AdminUserUpdate, Resource: fmt.Sprintf("user:%d", 100+i),
				Details: map[string]any{"role": "user", "changed": []string{"email", "username"}}}
		}
		e.Actor, e.IP = actor, ip
		details, err := red.encode(e.Details)
		if err != nil {
			panic(err)
		}
		info := builtinActions[e.Action]
		rows = append(rows, recBenchRow{event: e, details: details, label: info.label(), subject: subjectOf(&e, &red)})
	}
	return rows
})

// recBenchPaths opens an Auditor on a new file, so its schema (indexes,
// triggers) is in place, closes it and returns the paths.
func recBenchPaths(b *testing.B, mode string) (dbPath, logPath string) {
	b.Helper()
	recBenchSettle()
	dir := b.TempDir()
	dbPath, logPath = filepath.Join(dir, "travel.db"), filepath.Join(dir, "logs", "trek.log")
	a, err := Open(Config{DBPath: dbPath, LogPath: logPath, Synchronous: mode})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Close(); err != nil {
		b.Fatal(err)
	}
	return dbPath, logPath
}

// recBenchConn is a plain database/sql connection to the file with the
// pragmas the store uses: WAL, the given synchronous level, a busy timeout,
// statement journals in memory (temp_store).
func recBenchConn(b *testing.B, dbPath, mode string) *sql.Conn {
	b.Helper()
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_synchronous", mode)
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?"+q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), "PRAGMA temp_store = MEMORY"); err != nil {
		b.Fatal(err)
	}
	var got string
	if err := conn.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&got); err != nil || got != "wal" {
		b.Fatalf("journal_mode = %q, %v; want wal", got, err)
	}
	return conn
}

// recBenchTable is how the baselines write a row: the event's columns, plus
// the library's own actor_id, chain_seq and chain_mac columns where the
// schema has them, filled with values of the same size as the store's, so
// that every benchmark writes rows of the same size into the same indexes.
type recBenchTable struct {
	chain bool
	seq   int64
}

func recBenchTableOf(b *testing.B, conn *sql.Conn) *recBenchTable {
	b.Helper()
	var n int
	if err := conn.QueryRowContext(context.Background(),
		`SELECT COUNT(*) FROM pragma_table_info('audit_log') WHERE name IN ('actor_id', 'chain_seq', 'chain_mac')`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return &recBenchTable{chain: n == 3}
}

func (t *recBenchTable) prepare(b *testing.B, conn *sql.Conn, rows int) *sql.Stmt {
	b.Helper()
	cols, marks := "created_at, user_id, action, resource, details, ip, actor_username, actor_email", "(?,?,?,?,?,?,?,?)"
	if t.chain {
		cols, marks = cols+", actor_id, chain_seq, chain_mac", "(?,?,?,?,?,?,?,?,?,?,?)"
	}
	st, err := conn.PrepareContext(context.Background(),
		"INSERT INTO audit_log ("+cols+") VALUES "+strings.TrimSuffix(strings.Repeat(marks+",", rows), ","))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// recBenchMac stands in for a chain_mac value: 64 hex digits.
const recBenchMac = "3f0c9a1be5d27c4480f6a1d3b95e2c7708d4f61a9b3c5e7d2f1a0b9c8d7e6f50"

// appendArgs appends the column values of r as the store binds them.
func (t *recBenchTable) appendArgs(args []any, r *recBenchRow, createdAt string) []any {
	e := &r.event
	args = append(args, createdAt, e.Actor.UserID, string(e.Action), nullString(e.Resource), string(r.details),
		e.IP, e.Actor.Username, e.Actor.Email)
	if t.chain {
		t.seq++
		args = append(args, e.Actor.UserID, t.seq, recBenchMac)
	}
	return args
}

func recReportEventsPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBulkInsertCeiling is the most SQLite takes here: the workload's
// rows as multi-row prepared INSERTs of 64 rows, DefaultMaxBatch rows per
// transaction, on one connection with the store's pragmas. DefaultMaxBatch
// is the largest transaction the writer ever commits; one transaction for
// all of b.N would measure a number that depends on b.N and that no writer
// which must answer each caller after its commit can approach. log=off
// writes SQLite only; log=on also writes each transaction's trek.log lines
// (and the chain anchor line) in one lumberjack write, as the writer does.
func BenchmarkBulkInsertCeiling(b *testing.B) { recBenchBaseline(b, recBenchBulkInsert) }

// recBenchBaseline runs a baseline at each synchronous setting, with and
// without trek.log.
func recBenchBaseline(b *testing.B, run func(b *testing.B, mode string, withLog bool)) {
	for _, mode := range recBenchSyncModes {
		for _, withLog := range []bool{false, true} {
			name := fmt.Sprintf("sync=%s/log=%s", mode, map[bool]string{false: "off", true: "on"}[withLog])
			b.Run(name, func(b *testing.B) { run(b, mode, withLog) })
		}
	}
}

// recBenchLog writes the baselines' trek.log lines as the writer does: a
// batch's event lines and the chain anchor in one write. With log=off it
// writes nothing.
type recBenchLog struct {
	flog  *fileLog
	batch []*pending
}

func newRecBenchLog(b *testing.B, logPath string, withLog bool, maxBatch int) *recBenchLog {
	b.Helper()
	l := &recBenchLog{}
	if !withLog {
		return l
	}
	var err error
	if l.flog, err = openFileLog(logPath, 10, 4, false); err != nil {
		b.Fatal(err)
	}
	l.flog.anchors = newAnchorSigner(make([]byte, chainKeyLen)) // tagged as Record's are
	b.Cleanup(func() { l.flog.Close() })
	l.batch = make([]*pending, maxBatch)
	for i := range l.batch {
		l.batch[i] = new(pending)
	}
	return l
}

// write logs rows start to start+n, committed at now with ids from start+1.
func (l *recBenchLog) write(b *testing.B, start, n int, now time.Time) {
	if l.flog == nil {
		return
	}
	rows := recBenchRows()
	for j, p := range l.batch[:n] {
		r := &rows[(start+j)%len(rows)]
		id := int64(start + j + 1)
		p.row = row{id: id, createdAt: now, userID: r.event.Actor.UserID,
			username: r.event.Actor.Username, email: r.event.Actor.Email, action: r.event.Action,
			resource: r.event.Resource, details: r.details, ip: r.event.IP, seq: id, mac: recBenchMac}
		p.label, p.subject = r.label, r.subject
	}
	if err := l.flog.writeEvents(l.batch[:n], time.UTC, false); err != nil {
		b.Fatal(err)
	}
}

func recBenchBulkInsert(b *testing.B, mode string, withLog bool) {
	const perStmt, perTx = 64, DefaultMaxBatch
	ctx := context.Background()
	rows := recBenchRows()
	dbPath, logPath := recBenchPaths(b, mode)
	conn := recBenchConn(b, dbPath, mode)
	table := recBenchTableOf(b, conn)
	multi, single := table.prepare(b, conn, perStmt), table.prepare(b, conn, 1)
	log := newRecBenchLog(b, logPath, withLog, perTx)
	args := make([]any, 0, perStmt*11)
	exec := func(st *sql.Stmt) {
		if _, err := st.ExecContext(ctx, args...); err != nil {
			b.Fatal(err)
		}
		args = args[:0]
	}
	// tx commits rows start to start+n in one transaction, then writes
	// their trek.log lines.
	tx := func(start, n int) {
		now := time.Now().UTC().Truncate(time.Second)
		createdAt := now.Format(sqliteTimeLayout)
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			b.Fatal(err)
		}
		i := 0
		for ; i+perStmt <= n; i += perStmt {
			for j := range perStmt {
				args = table.appendArgs(args, &rows[(start+i+j)%len(rows)], createdAt)
			}
			exec(multi)
		}
		for ; i < n; i++ {
			args = table.appendArgs(args, &rows[(start+i)%len(rows)], createdAt)
			exec(single)
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			b.Fatal(err)
		}
		log.write(b, start, n, now)
	}
	for start := 0; start < recBenchWarmup; start += perTx {
		tx(start, min(perTx, recBenchWarmup-start))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < b.N; start += perTx {
		tx(recBenchWarmup+start, min(perTx, b.N-start))
	}
	recReportEventsPerSecond(b)
}

// BenchmarkAutocommitInsert is the naive way: one prepared single-row
// INSERT per event, each its own transaction, with the store's pragmas.
// log=off writes SQLite only; log=on also appends each event's trek.log
// line after its commit, as TREK's server does today, so that it pays what
// Record pays for the file.
func BenchmarkAutocommitInsert(b *testing.B) { recBenchBaseline(b, recBenchAutocommit) }

func recBenchAutocommit(b *testing.B, mode string, withLog bool) {
	one := newRecBenchAutocommit(b, mode, withLog)
	for i := range recBenchWarmup {
		one(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		one(recBenchWarmup + i)
	}
	recReportEventsPerSecond(b)
}

// newRecBenchAutocommit opens a new file for the naive way and returns
// what writes event i: its row in a transaction of its own, then (withLog)
// its trek.log line.
func newRecBenchAutocommit(b *testing.B, mode string, withLog bool) func(i int) {
	b.Helper()
	ctx := context.Background()
	rows := recBenchRows()
	dbPath, logPath := recBenchPaths(b, mode)
	conn := recBenchConn(b, dbPath, mode)
	table := recBenchTableOf(b, conn)
	single := table.prepare(b, conn, 1)
	log := newRecBenchLog(b, logPath, withLog, 1)
	args := make([]any, 0, 11)
	return func(i int) {
		now := time.Now().UTC().Truncate(time.Second)
		r := &rows[i%len(rows)]
		args = table.appendArgs(args[:0], r, now.Format(sqliteTimeLayout))
		if _, err := single.ExecContext(ctx, args...); err != nil {
			b.Fatal(err)
		}
		log.write(b, i, 1, now)
	}
}

// recCommitCounter wraps an Auditor's store and counts the transactions it
// commits and the events in them.
type recCommitCounter struct {
	store
	commits, events atomic.Int64
}

func (c *recCommitCounter) insert(ctx context.Context, batch []*pending, more func() []*pending) error {
	n := len(batch)
	if more != nil {
		writerMore := more
		more = func() []*pending {
			rows := writerMore()
			n += len(rows)
			return rows
		}
	}
	err := c.store.insert(ctx, batch, more)
	if err == nil {
		c.commits.Add(1)
		c.events.Add(int64(n))
	}
	return err
}

// recBenchEachMode runs a Record benchmark at each synchronous setting, on
// a new Auditor.
func recBenchEachMode(b *testing.B, run func(b *testing.B, mode string, a *Auditor)) {
	recBenchEachModeOn(b, nil, run)
}

// recBenchEachModeOn is recBenchEachMode on a file that prepare has made
// first (nil: a new file).
func recBenchEachModeOn(b *testing.B, prepare func(b *testing.B, dbPath string), run func(b *testing.B, mode string, a *Auditor)) {
	for _, mode := range recBenchSyncModes {
		b.Run("sync="+mode, func(b *testing.B) { run(b, mode, recBenchAuditorOn(b, mode, prepare)) })
	}
}

// recBenchAuditorOn opens an Auditor for a Record benchmark on a new file
// that prepare, if not nil, has made first.
func recBenchAuditorOn(b *testing.B, mode string, prepare func(b *testing.B, dbPath string)) *Auditor {
	b.Helper()
	recBenchSettle()
	dir := b.TempDir()
	dbPath := filepath.Join(dir, "travel.db")
	if prepare != nil {
		prepare(b, dbPath)
	}
	a, err := Open(Config{DBPath: dbPath, LogPath: filepath.Join(dir, "logs", "trek.log"), Synchronous: mode})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := a.Close(); err != nil {
			b.Error(err)
		}
	})
	return a
}

// BenchmarkRecordParallel has recBenchCallers goroutines, whatever
// GOMAXPROCS is, share b.N Record calls: the group-commit path, trek.log
// included. Each caller waits for its own commit, so a transaction holds at
// most recBenchCallers events; taking in the callers the last commit
// released while it writes brings the average near that (61 at FULL).
// events/commit reports the average.
func BenchmarkRecordParallel(b *testing.B) {
	recBenchEachMode(b, func(b *testing.B, _ string, a *Auditor) {
		ctx := context.Background()
		rows := recBenchRows()
		// No event is queued yet: whoever writes the first batch starts
		// after this write.
		counter := &recCommitCounter{store: a.store}
		a.store = counter
		// run has recBenchCallers goroutines share n Record calls.
		run := func(n int64) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range recBenchCallers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= n {
							return
						}
						if err := a.Record(ctx, rows[i%int64(len(rows))].event); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		}
		run(recBenchWarmup)
		counter.commits.Store(0)
		counter.events.Store(0)
		b.ReportAllocs()
		b.ResetTimer()
		run(int64(b.N))
		recReportEventsPerSecond(b)
		b.ReportMetric(float64(counter.events.Load())/float64(counter.commits.Load()), "events/commit")
	})
}

// BenchmarkRecordSerial is one caller at a time: every event is its own
// batch, trek.log included.
func BenchmarkRecordSerial(b *testing.B) {
	recBenchEachMode(b, func(b *testing.B, _ string, a *Auditor) { recBenchSerial(b, a) })
}

// BenchmarkRecordSerialTREKDatabase is BenchmarkRecordSerial on a database
// as TREK's server leaves it, with its users table holding the workload's
// 37 actors: each event's user_id is then checked against it, as on a
// TREK instance.
func BenchmarkRecordSerialTREKDatabase(b *testing.B) {
	recBenchEachModeOn(b, func(b *testing.B, dbPath string) {
		users := map[int64]string{}
		for id := int64(1); id <= 37; id++ {
			users[id] = fmt.Sprintf("user%02d", id)
		}
		createTrekDB(b, dbPath, users).Close()
	}, func(b *testing.B, _ string, a *Auditor) { recBenchSerial(b, a) })
}

// recBenchSerial records the workload's events one at a time.
func recBenchSerial(b *testing.B, a *Auditor) {
	ctx := context.Background()
	rows := recBenchRows()
	for i := range recBenchWarmup {
		if err := a.Record(ctx, rows[i%len(rows)].event); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := a.Record(ctx, rows[i%len(rows)].event); err != nil {
			b.Fatal(err)
		}
	}
	recReportEventsPerSecond(b)
}

// BenchmarkRecordSerialPaired does the work of RecordSerial and of both
// AutocommitInsert variants event by event in turn, each on a file of its
// own in the same folder, and times each apart. On a disk whose latency
// drifts from one second to the next, separate benchmarks compare
// different moments; here every event of one is flanked by events of the
// others, so the ratios it reports (Record's events/s over each naive
// way's) move far less from run to run than those between
// BenchmarkRecordSerial and BenchmarkAutocommitInsert. The order of the
// three turns with every event, so none always follows the same one. It
// also reports each way's median and 99th-percentile event, in µs.
func BenchmarkRecordSerialPaired(b *testing.B) {
	recBenchEachMode(b, func(b *testing.B, mode string, a *Auditor) {
		ctx := context.Background()
		rows := recBenchRows()
		ways := [3]func(i int){
			func(i int) {
				if err := a.Record(ctx, rows[i%len(rows)].event); err != nil {
					b.Fatal(err)
				}
			},
			newRecBenchAutocommit(b, mode, false),
			newRecBenchAutocommit(b, mode, true),
		}
		var took [3]time.Duration
		var each [3][]time.Duration // per event, once timed
		run := func(first, n int, timed bool) {
			for i := first; i < first+n; i++ {
				for k := range ways {
					w := (i + k) % len(ways)
					start := time.Now()
					ways[w](i)
					d := time.Since(start)
					took[w] += d
					if timed {
						each[w] = append(each[w], d)
					}
				}
			}
		}
		run(0, recBenchWarmup, false)
		took = [3]time.Duration{}
		for w := range each {
			each[w] = make([]time.Duration, 0, b.N)
		}
		b.ResetTimer()
		run(recBenchWarmup, b.N, true)
		b.StopTimer()
		rate := func(k int) float64 { return float64(b.N) / took[k].Seconds() }
		b.ReportMetric(rate(0), "events/s")
		b.ReportMetric(rate(1), "autocommit-events/s")
		b.ReportMetric(rate(2), "autocommit+log-events/s")
		b.ReportMetric(rate(0)/rate(1), "x-autocommit")
		b.ReportMetric(rate(0)/rate(2), "x-autocommit+log")
		// The means above hide how the time is spread: the naive way's
		// connection copies the WAL into the database file itself every
		// 1,000 pages, so about one event in a hundred waits milliseconds
		// for it; Record's checkpointer does that beside the writer.
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		for w, name := range [3]string{"", "autocommit-", "autocommit+log-"} {
			slices.Sort(each[w])
			b.ReportMetric(us(each[w][len(each[w])/2]), name+"p50-us")
			b.ReportMetric(us(each[w][len(each[w])*99/100]), name+"p99-us")
		}
		b.ReportMetric(0, "ns/op") // an op is three events of different ways
	})
}
