package audit

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRows is the size of the table the list benchmarks read: a busy TREK
// instance after a few years.
const benchRows = 1_000_000

// BenchmarkList measures the admin list on a table of a million rows. The
// table is built once, in this parent benchmark's temp dir, shared by every
// sub-benchmark and removed after the last one; plain `go test` never builds
// it. The Baseline sub-benchmarks are plain SQL on the same file, so the
// list's own cost reads off as the difference. Targets: the first page with
// its total under 5 ms, any cursor page under 5 ms, a page filtered by
// action under 10 ms. OffsetDeep900k is what the cursor is for.
//
// The Walk sub-benchmarks read every page of a filtered window by cursor,
// as trek-audit export, tail and list --all do: Counted counts the total
// on every page, SkipTotal on the first only (Query.SkipTotal), beside
// BaselineWalk, one plain SELECT of the same rows.
//
//	go test -run '^$' -bench '^BenchmarkList$' -benchmem -count 3 .
//	go test -run '^$' -bench '^BenchmarkList$/(Baseline)?Walk' -benchmem .
func BenchmarkList(b *testing.B) {
	dir := b.TempDir()
	a, raw := buildBenchDB(b, dir)
	ctx := context.Background()

	var newest int64
	require.NoError(b, raw.QueryRow(`SELECT MAX(id) FROM audit_log`).Scan(&newest))

	b.Run("BaselinePKPage", func(b *testing.B) {
		for b.Loop() {
			benchRawPage(b, raw, `SELECT id, CAST(created_at AS TEXT), user_id, action, resource, details, ip
				FROM audit_log ORDER BY id DESC LIMIT 100`)
		}
	})
	b.Run("BaselineCountStar", func(b *testing.B) {
		// What total would cost without the trigger-kept counter.
		var n int64
		for b.Loop() {
			require.NoError(b, raw.QueryRow(`SELECT COUNT(*) FROM audit_log`).Scan(&n))
		}
		require.EqualValues(b, benchRows, n)
	})

	pages := []struct {
		name string
		q    Query
	}{
		{"FirstPage", Query{}},
		{"CursorPage2", Query{Cursor: encodeCursor(newest - 100 + 1)}},
		{"CursorMiddle", Query{Cursor: encodeCursor(newest / 2)}},
		{"CursorDeep", Query{Cursor: encodeCursor(150)}},
		{"CursorLast", Query{Cursor: encodeCursor(60)}},
		{"FilterActionMostCommon", Query{Action: string(UserLogin)}},   // a quarter of the rows
		{"FilterActionCommon", Query{Action: string(UserLoginFailed)}}, // 7%
		{"FilterActionRare", Query{Action: string(AdminRotateJWTSecret)}},
		{"FilterActionCursorDeep", Query{Action: string(UserLoginFailed), Cursor: encodeCursor(5000)}},
		{"FilterPrefixAdmin", Query{Action: "admin."}},
		{"FilterCategoryOAuth", Query{Action: "OAuth"}},
		{"FilterUser", Query{UserID: 7}},
		{"FilterIP", Query{IP: benchIP(3)}},
		{"FilterIPAsTREKWritesIt", Query{IP: "::ffff:" + benchIP(3)}},
		{"FilterIPCategoryOAuth", Query{Action: "OAuth", IP: benchIP(3)}},
		{"FilterResource", Query{Resource: "trip:7"}},
		{"FilterActionUserSince", Query{Action: string(TripUpdate), UserID: 7,
			Since: benchStart.Add(200 * 24 * time.Hour)}},
		// What an admin asks most: one action, or one user, over the last
		// day; and the same over a year, where the window is wide.
		{"FilterActionMostCommonSinceADay", Query{Action: string(UserLogin), Since: benchEnd.Add(-24 * time.Hour)}},
		{"FilterActionCommonSinceADay", Query{Action: string(UserLoginFailed), Since: benchEnd.Add(-24 * time.Hour)}},
		{"FilterUserSinceADay", Query{UserID: 7, Since: benchEnd.Add(-24 * time.Hour)}},
		{"FilterCategoryTripsSinceADay", Query{Action: "Trips", Since: benchEnd.Add(-24 * time.Hour)}},
		{"FilterActionMostCommonSinceAYear", Query{Action: string(UserLogin), Since: benchEnd.Add(-365 * 24 * time.Hour)}},
		{"FilterActionCommonUntilTheFirstMonth", Query{Action: string(UserLoginFailed), Until: benchStart.Add(30 * 24 * time.Hour)}},
		{"FilterSinceLastMonth", Query{Since: benchEnd.Add(-30 * 24 * time.Hour)}},
		{"FilterUntilTwoYearsAgo", Query{Until: benchEnd.Add(-2 * 365 * 24 * time.Hour)}},
		{"FilterSinceTheLastHour", Query{Since: benchEnd.Add(-time.Hour)}},
		{"FilterTenMinutesHalfAnHourAgo", Query{Since: benchEnd.Add(-40 * time.Minute), Until: benchEnd.Add(-30 * time.Minute)}},
		{"FilterUntilSixDaysAgo", Query{Until: benchEnd.Add(-6 * 24 * time.Hour)}},
		{"FilterUntilTheFirstDay", Query{Until: benchStart.Add(24 * time.Hour)}},
		{"FilterSinceUntilEverything", Query{Since: benchStart, Until: benchEnd.Add(time.Hour)}},
		{"FilterSinceUntilOneYear", Query{Since: benchEnd.Add(-365 * 24 * time.Hour), Until: benchEnd.Add(time.Hour)}},
		{"FilterOneDay", Query{Since: benchStart.Add(400 * 24 * time.Hour), Until: benchStart.Add(401 * 24 * time.Hour)}},
		{"OffsetDeep900k", Query{Offset: 900_000}},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var page Page
			var err error
			for b.Loop() {
				page, err = a.List(ctx, p.q)
				if err != nil {
					b.Fatal(err)
				}
			}
			require.NotEmpty(b, page.Entries)
			require.Positive(b, page.Total)
		})
	}

	walks := []struct {
		name string
		q    Query
		sql  string // the same rows as one plain SELECT
		args []any
	}{
		{"SinceAYearAgo", Query{Since: benchEnd.Add(-365 * 24 * time.Hour)},
			`SELECT id FROM audit_log NOT INDEXED WHERE created_at >= ? ORDER BY id DESC`,
			[]any{benchEnd.Add(-365 * 24 * time.Hour).Format(sqliteTimeLayout)}},
		{"UntilAYearAfterTheStart", Query{Until: benchStart.Add(365 * 24 * time.Hour)},
			`SELECT id FROM audit_log NOT INDEXED WHERE created_at < ? ORDER BY id DESC`,
			[]any{benchStart.Add(365 * 24 * time.Hour).Format(sqliteTimeLayout)}},
		{"TripsSinceAYearAgo", Query{Action: "Trips", Since: benchEnd.Add(-365 * 24 * time.Hour)},
			`SELECT id FROM audit_log WHERE action IN ('trip.create', 'trip.update', 'trip.copy', 'trip.delete') AND created_at >= ? ORDER BY id DESC`,
			[]any{benchEnd.Add(-365 * 24 * time.Hour).Format(sqliteTimeLayout)}},
	}
	for _, w := range walks {
		want := len(benchRawIDs(b, raw, w.sql, w.args...))
		b.Run("BaselineWalk"+w.name, func(b *testing.B) {
			for b.Loop() {
				benchRawIDs(b, raw, w.sql, w.args...)
			}
			b.ReportMetric(float64(want), "rows/op")
		})
		for _, skip := range []bool{false, true} {
			name := "Walk" + w.name + "Counted"
			if skip {
				name = "Walk" + w.name + "SkipTotal"
			}
			b.Run(name, func(b *testing.B) {
				var rows int
				for b.Loop() {
					rows = benchWalk(b, a, w.q, skip)
				}
				require.Equal(b, want, rows, "the walk reads the baseline's rows")
				b.ReportMetric(float64(rows), "rows/op")
			})
		}
	}

	b.Run("AdminHandlerFirstPage", func(b *testing.B) {
		// The whole request as the panel makes it: parsing, list, JSON.
		h := a.AdminHandler(func(*http.Request) bool { return true })
		req := httptest.NewRequest(http.MethodGet, "/api/admin/audit-log", nil)
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// benchWalk reads every page q matches by cursor, 500 at a time, the
// total counted on the first page and, unless skip, on every other, and
// returns how many rows it read.
func benchWalk(b *testing.B, a *Auditor, q Query, skip bool) int {
	q.Limit = MaxPageLimit
	n := 0
	for {
		page, err := a.List(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		if q.SkipTotal != (page.Total == -1) {
			b.Fatalf("SkipTotal %v, total %d", q.SkipTotal, page.Total)
		}
		n += len(page.Entries)
		if page.NextCursor == nil {
			return n
		}
		q.Cursor, q.SkipTotal = *page.NextCursor, skip
	}
}

// benchRawIDs returns the ids query selects.
func benchRawIDs(b *testing.B, db *sql.DB, query string, args ...any) []int64 {
	rows, err := db.Query(query, args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return ids
}

func benchRawPage(b *testing.B, db *sql.DB, query string) {
	rows, err := db.Query(query)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var (
		id                        int64
		created, action           string
		userID                    sql.NullInt64
		resource, details, ipAddr sql.NullString
		n                         int
	)
	for rows.Next() {
		if err := rows.Scan(&id, &created, &userID, &action, &resource, &details, &ipAddr); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 100 {
		b.Fatalf("%d rows, %v", n, err)
	}
}

// The table's rows span benchStart to benchEnd, one every 94 seconds or so.
var (
	benchStart = time.Date(2023, 4, 20, 0, 0, 0, 0, time.UTC)
	benchEnd   = benchStart.Add(3 * 365 * 24 * time.Hour)
)

// benchIP is one of the few thousand client addresses of the table.
func benchIP(i int) string {
	if i%10 == 0 {
		return fmt.Sprintf("2001:db8::%x", i)
	}
	return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
}

// benchWeights is how often each key occurs, roughly as on a busy instance:
// logins, MCP calls and token refreshes dominate, admin actions are rare.
var benchWeights = map[Action]int{
	UserLogin: 300, UserLoginFailed: 80, UserRegister: 5, UserPasswordChange: 3, UserAccountDelete: 1,
	UserMFAEnable: 2, UserMFADisable: 1,
	TripCreate: 30, TripUpdate: 120, TripCopy: 5, TripDelete: 8,
	MCPToolCall:     200,
	OAuthTokenIssue: 40, OAuthTokenRefresh: 150, OAuthTokenRevoke: 5, OAuthConsentGrant: 5,
	OAuthTokenGrantFailed: 10, OAuthTokenClientAuthFailed: 5,
	BackupCreate: 2,
}

// buildBenchDB makes the database a busy TREK instance has when it first
// runs the library: TREK's tables, filled the way TREK's own server writes
// them (plain multi-row INSERTs, here in one transaction), then opened, so
// the library's migrations add their columns, counter and indexes to a
// million existing rows. It returns an Auditor on the file and a second,
// plain handle for the baselines.
func buildBenchDB(b *testing.B, dir string) (*Auditor, *sql.DB) {
	b.Helper()
	start := time.Now()
	path := filepath.Join(dir, "travel.db")
	build, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=MEMORY&_synchronous=OFF")
	require.NoError(b, err)
	defer build.Close()
	build.SetMaxOpenConns(1)
	_, err = build.Exec(trekSchema)
	require.NoError(b, err)
	for id := 1; id <= 300; id++ {
		_, err = build.Exec(`INSERT INTO users (id, username, email) VALUES (?, ?, ?)`,
			id, fmt.Sprintf("user%d", id), fmt.Sprintf("user%d@example.com", id))
		require.NoError(b, err)
	}

	var keys []Action // each key as often as its weight
	for _, info := range Catalogue() {
		for range max(benchWeights[info.Action], 1) {
			keys = append(keys, info.Action)
		}
	}
	rng := rand.New(rand.NewPCG(4, 20))
	const perStmt = 500
	tx, err := build.Begin()
	require.NoError(b, err)
	stmt, err := tx.Prepare(`INSERT INTO audit_log (created_at, user_id, action, resource, details, ip) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?),", perStmt), ","))
	require.NoError(b, err)
	args := make([]any, 0, perStmt*6)
	step := benchEnd.Sub(benchStart) / benchRows
	for i := range benchRows {
		act := keys[rng.IntN(len(keys))]
		var userID, resource, details any
		if act != UserLoginFailed && act != OAuthTokenClientAuthFailed && rng.IntN(20) != 0 {
			userID = 1 + rng.IntN(300)
		}
		switch act {
		case MCPToolCall:
			resource = []string{"list_trips", "get_trip", "create_place", "search_places"}[rng.IntN(4)]
		case TripCreate:
			resource = fmt.Sprintf("trip:%d", i)
			details = fmt.Sprintf(`{"title":"Trip %d","tripId":%d}`, i, i)
		case TripUpdate:
			trip := rng.IntN(50000)
			resource = fmt.Sprintf("trip:%d", trip)
			details = fmt.Sprintf(`{"tripId":%d,"start_date":"2026-05-01","trip":"Lisbon"}`, trip)
		case UserLoginFailed:
			details = `{"email":"someone@example.com"}`
		}
		created := benchStart.Add(time.Duration(i) * step).Format(sqliteTimeLayout)
		args = append(args, created, userID, string(act), resource, details, benchIP(rng.IntN(3000)))
		if len(args) == cap(args) {
			_, err = stmt.Exec(args...)
			require.NoError(b, err)
			args = args[:0]
		}
	}
	require.Empty(b, args, "benchRows must be a multiple of perStmt")
	require.NoError(b, stmt.Close())
	require.NoError(b, tx.Commit())
	require.NoError(b, build.Close())
	filled := time.Since(start)

	a, err := Open(Config{DBPath: path, LogPath: filepath.Join(dir, "logs", "trek.log")})
	require.NoError(b, err)
	b.Cleanup(func() { a.Close() })
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	require.NoError(b, err)
	b.Cleanup(func() { raw.Close() })
	b.Logf("%d rows: filled in %v, first Open (migrations) took %v", benchRows,
		filled.Round(time.Millisecond), (time.Since(start) - filled).Round(time.Millisecond))
	return a, raw
}
