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

// BenchmarkList measures the admin list on a table of a million rows, built
// once in the parent benchmark's temp dir (removed when the last
// sub-benchmark is done) and shared by every sub-benchmark. The Baseline
// sub-benchmarks are plain SQL on the same file, so the list's own cost reads
// off as the difference. Targets: first page with total under 5 ms, any
// cursor page under 5 ms, a page filtered by action under 10 ms.
//
//	go test -run '^$' -bench 'List' -benchmem -count 3 .
func BenchmarkList(b *testing.B) {
	dir := b.TempDir()
	a, raw := buildBenchDB(b, dir)
	ctx := context.Background()

	var newest int64
	require.NoError(b, raw.QueryRow(`SELECT MAX(id) FROM audit_log`).Scan(&newest))

	b.Run("BaselinePKPage", func(b *testing.B) {
		for b.Loop() {
			benchRawPage(b, raw, `SELECT id, created_at, user_id, action, resource, details, ip
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
		{"FilterActionCommon", Query{Action: string(UserLoginFailed)}},
		{"FilterActionRare", Query{Action: string(AdminRotateJWTSecret)}},
		{"FilterActionCursorDeep", Query{Action: string(UserLoginFailed), Cursor: encodeCursor(5000)}},
		{"FilterPrefixAdmin", Query{Action: "admin."}},
		{"FilterCategoryOAuth", Query{Action: "OAuth"}},
		{"FilterUser", Query{UserID: 7}},
		{"FilterIP", Query{IP: benchIP(3)}},
		{"FilterActionUserSince", Query{Action: string(TripUpdate), UserID: 7,
			Since: benchStart.Add(200 * 24 * time.Hour)}},
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

var benchStart = time.Date(2023, 4, 20, 0, 0, 0, 0, time.UTC)

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
	MCPToolCall: 200,
	OAuthTokenIssue: 40, OAuthTokenRefresh: 150, OAuthTokenRevoke: 5, OAuthConsentGrant: 5,
	OAuthTokenGrantFailed: 10, OAuthTokenClientAuthFailed: 5,
	BackupCreate: 2,
}

// buildBenchDB creates the schema through Open, then fills audit_log the way
// TREK's own server writes it, with plain multi-row INSERTs, in one
// transaction. It returns an Auditor on the file and a second, plain handle.
func buildBenchDB(b *testing.B, dir string) (*Auditor, *sql.DB) {
	b.Helper()
	start := time.Now()
	path := filepath.Join(dir, "travel.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_synchronous=OFF")
	require.NoError(b, err)
	b.Cleanup(func() { raw.Close() })
	_, err = raw.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT)`)
	require.NoError(b, err)
	for id := 1; id <= 300; id++ {
		_, err = raw.Exec(`INSERT INTO users (id, username, email) VALUES (?, ?, ?)`,
			id, fmt.Sprintf("user%d", id), fmt.Sprintf("user%d@example.com", id))
		require.NoError(b, err)
	}

	a, err := Open(Config{DBPath: path, LogPath: filepath.Join(dir, "logs", "trek.log")})
	require.NoError(b, err)
	require.NoError(b, a.Close()) // schema only; reopened below

	var keys []Action
	for _, info := range Catalogue() {
		w := benchWeights[info.Action]
		if w == 0 {
			w = 1
		}
		for range w {
			keys = append(keys, info.Action)
		}
	}
	rng := rand.New(rand.NewPCG(4, 20))
	const perStmt = 500
	stmtSQL := `INSERT INTO audit_log (created_at, user_id, action, resource, details, ip, actor_username, actor_email) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", perStmt), ",")
	tx, err := raw.Begin()
	require.NoError(b, err)
	stmt, err := tx.Prepare(stmtSQL)
	require.NoError(b, err)
	args := make([]any, 0, perStmt*8)
	// About one event every 90 seconds: a million rows span three years.
	step := 3 * 365 * 24 * time.Hour / benchRows
	for i := 0; i < benchRows; i++ {
		act := keys[rng.IntN(len(keys))]
		var userID, resource, details, username, email any
		if act != UserLoginFailed && act != OAuthTokenClientAuthFailed && rng.IntN(20) != 0 {
			uid := 1 + rng.IntN(300)
			userID = uid
			if i%2 == 0 { // rows the library wrote carry a snapshot
				username, email = fmt.Sprintf("user%d", uid), fmt.Sprintf("user%d@example.com", uid)
			}
		}
		switch act {
		case MCPToolCall:
			resource = []string{"list_trips", "get_trip", "create_place", "search_places"}[rng.IntN(4)]
		case TripCreate:
			resource = fmt.Sprintf("trip:%d", i)
			details = fmt.Sprintf(`{"title":"Trip %d","tripId":%d}`, i, i)
		case TripUpdate:
			resource = fmt.Sprintf("trip:%d", rng.IntN(50000))
			details = fmt.Sprintf(`{"tripId":%d,"start_date":"2026-05-01","trip":"Lisbon"}`, rng.IntN(50000))
		case UserLoginFailed:
			details = `{"email":"someone@example.com","reason":"invalid_password"}`
		}
		created := benchStart.Add(time.Duration(i) * step).Format(sqliteTimeLayout)
		args = append(args, created, userID, string(act), resource, details, benchIP(rng.IntN(3000)), username, email)
		if len(args) == cap(args) {
			_, err = stmt.Exec(args...)
			require.NoError(b, err)
			args = args[:0]
		}
	}
	require.Empty(b, args, "benchRows must be a multiple of perStmt")
	require.NoError(b, stmt.Close())
	require.NoError(b, tx.Commit())
	_, err = raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(b, err)

	a, err = Open(Config{DBPath: path, LogPath: filepath.Join(dir, "logs", "trek.log")})
	require.NoError(b, err)
	b.Cleanup(func() { a.Close() })
	b.Logf("built %d rows in %v", benchRows, time.Since(start).Round(time.Millisecond))
	return a, raw
}
