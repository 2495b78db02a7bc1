package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listRow is one audit_log row written with plain SQL, as TREK's server or an
// earlier run of the library left it. nil is NULL; a nil createdAt leaves the
// column to its CURRENT_TIMESTAMP default.
type listRow struct {
	createdAt any
	userID    any
	action    string
	resource  any
	details   any
	ip        any
	username  any // actor_username, the library's snapshot column
	email     any // actor_email
}

// insertListRows writes rows in one transaction, in order, and returns their
// ids. The snapshot columns are written only when the table has them.
func insertListRows(t testing.TB, db *sql.DB, rows ...listRow) []int64 {
	t.Helper()
	var snapshots int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('audit_log') WHERE name = 'actor_username'`).Scan(&snapshots))
	tx, err := db.Begin()
	require.NoError(t, err)
	defer tx.Rollback()
	ids := make([]int64, len(rows))
	for i, r := range rows {
		cols, args := "user_id, action, resource, details, ip", []any{r.userID, r.action, r.resource, r.details, r.ip}
		if r.createdAt != nil {
			cols, args = "created_at, "+cols, append([]any{r.createdAt}, args...)
		}
		if snapshots > 0 {
			cols, args = cols+", actor_username, actor_email", append(args, r.username, r.email)
		} else {
			require.Nil(t, r.username, "audit_log has no snapshot columns yet")
		}
		res, err := tx.Exec(`INSERT INTO audit_log (`+cols+`) VALUES (?`+strings.Repeat(", ?", len(args)-1)+`)`, args...)
		require.NoError(t, err)
		ids[i], err = res.LastInsertId()
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	return ids
}

// insertManyTrekRows adds n rows the way TREK's server writes them, with one
// multi-row INSERT per 100 rows, and returns their ids in order.
func insertManyTrekRows(t testing.TB, db *sql.DB, n int) []int64 {
	t.Helper()
	var first int64
	require.NoError(t, db.QueryRow(`SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log`).Scan(&first))
	for done := 0; done < n; {
		k := min(100, n-done)
		args := make([]any, 0, 2*k)
		for i := range k {
			args = append(args, string(UserLogin), fmt.Sprintf("198.51.100.%d", (done+i)%250+1))
		}
		_, err := db.Exec(`INSERT INTO audit_log (action, ip) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?), ", k), ", "), args...)
		require.NoError(t, err)
		done += k
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = first + int64(i)
	}
	return ids
}

// listAllIDs returns audit_log's ids, newest first.
func listAllIDs(t testing.TB, db *sql.DB) []int64 {
	t.Helper()
	return queryIDs(t, db, `SELECT id FROM audit_log ORDER BY id DESC`)
}

func entryIDs(entries []Entry) []int64 {
	ids := make([]int64, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids
}

func TestListLimitAndOffset(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	ids := insertManyTrekRows(t, db, 600)
	newest := ids[len(ids)-1]

	cases := []struct {
		name       string
		q          Query
		wantLimit  int
		wantOffset int
		wantLen    int
		wantFirst  int64 // id of the first entry
	}{
		{"zero limit is the default 100", Query{}, 100, 0, 100, newest},
		{"negative limit is clamped to 1", Query{Limit: -5}, 1, 0, 1, newest},
		{"limit 1 is kept", Query{Limit: 1}, 1, 0, 1, newest},
		{"limit 10 is kept", Query{Limit: 10}, 10, 0, 10, newest},
		{"limit 500 is kept", Query{Limit: 500}, 500, 0, 500, newest},
		{"limit 501 is clamped to 500", Query{Limit: 501}, 500, 0, 500, newest},
		{"limit 9999 is clamped to 500", Query{Limit: 9999}, 500, 0, 500, newest},
		{"negative offset is 0", Query{Limit: 10, Offset: -5}, 10, 0, 10, newest},
		{"offset 10 skips the 10 newest", Query{Limit: 10, Offset: 10}, 10, 10, 10, newest - 10},
		{"offset near the end gives the rest", Query{Limit: 10, Offset: 595}, 10, 595, 5, newest - 595},
		{"offset past the end gives no entries", Query{Limit: 10, Offset: 9999}, 10, 9999, 0, 0},
		{"cursor wins over offset", Query{Limit: 10, Offset: 50, Cursor: encodeCursor(newest - 3)}, 10, 0, 10, newest - 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page, err := a.List(t.Context(), c.q)
			require.NoError(t, err)
			assert.Equal(t, c.wantLimit, page.Limit, "limit")
			assert.Equal(t, c.wantOffset, page.Offset, "offset")
			assert.EqualValues(t, 600, page.Total, "total")
			require.Len(t, page.Entries, c.wantLen)
			if c.wantLen > 0 {
				assert.Equal(t, c.wantFirst, page.Entries[0].ID)
				got := entryIDs(page.Entries)
				assert.True(t, slices.IsSortedFunc(got, func(x, y int64) int { return int(y - x) }), "newest first: %v", got)
			}
		})
	}
}

func TestListNewestFirstAcrossLibraryAndTrekRows(t *testing.T) {
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice"})
	trekIDs := insertListRows(t, db,
		listRow{userID: 1, action: string(UserLogin), ip: "203.0.113.9"},
		listRow{action: string(UserLoginFailed), ip: "203.0.113.10"})
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: TripCreate, Actor: Actor{UserID: 1},
		Details: map[string]any{"title": "Lisbon"}}))
	moreTrek := insertListRows(t, db, listRow{userID: 1, action: string(TripDelete), details: `{"tripId":3,"trip":"Porto"}`})

	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 4)
	assert.EqualValues(t, 4, page.Total)
	assert.Equal(t, listAllIDs(t, db), entryIDs(page.Entries))
	assert.Equal(t, []Action{TripDelete, TripCreate, UserLoginFailed, UserLogin},
		[]Action{page.Entries[0].Action, page.Entries[1].Action, page.Entries[2].Action, page.Entries[3].Action})
	assert.Equal(t, moreTrek[0], page.Entries[0].ID)
	assert.Equal(t, trekIDs[0], page.Entries[3].ID)
	assert.Nil(t, page.NextCursor, "one page holds everything")
}

var isoUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestListCreatedAtIsISOUTC(t *testing.T) {
	cfg := testConfig(t)
	cfg.TZ = "Asia/Tokyo" // trek.log's zone must not leak into the list
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)

	before := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, a.Record(t.Context(), Event{Action: BackupCreate}))
	insertListRows(t, db, listRow{action: string(BackupDelete)}) // TREK's CURRENT_TIMESTAMP default
	insertListRows(t, db, listRow{createdAt: "2026-04-20 08:11:53", action: string(BackupRestore)})
	after := time.Now().UTC()

	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 3)
	assert.Equal(t, "2026-04-20T08:11:53Z", page.Entries[0].CreatedAt)
	for _, e := range page.Entries[1:] {
		require.Regexp(t, isoUTC, e.CreatedAt, "%s", e.Action)
		ts, err := time.Parse(time.RFC3339, e.CreatedAt)
		require.NoError(t, err)
		assert.False(t, ts.Before(before) || ts.After(after), "%s: %s outside [%s, %s]", e.Action, e.CreatedAt, before, after)
	}
}

func TestListDetails(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	cases := []struct {
		name   string
		stored any
		want   string // the JSON of the entry's details
	}{
		{"an object is passed as stored", `{"title":"Lisbon","tripId":12}`, `{"title":"Lisbon","tripId":12}`},
		{"nested values and escapes survive", `{"a":{"b":[1,2.5,null]},"q":"say \"hi\"\n","u":"Zürich"}`,
			`{"a":{"b":[1,2.5,null]},"q":"say \"hi\"\n","u":"Zürich"}`},
		{"NULL is null", nil, `null`},
		{"text that is not JSON", `not json`, `{"_parse_error":true}`},
		{"a cut-off object", `{"title":"Lis`, `{"_parse_error":true}`},
		{"an empty string", ``, `{"_parse_error":true}`},
		{"invalid UTF-8", "{\"title\":\"\xff\xfe\"}", `{"_parse_error":true}`},
	}
	rows := make([]listRow, len(cases))
	for i, c := range cases {
		rows[i] = listRow{action: string(TripCreate), details: c.stored}
	}
	ids := insertListRows(t, db, rows...)

	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	byID := map[int64]Entry{}
	for _, e := range page.Entries {
		byID[e.ID] = e
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := byID[ids[i]]
			require.True(t, ok)
			got, err := json.Marshal(e)
			require.NoError(t, err)
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(got, &fields))
			assert.JSONEq(t, c.want, string(fields["details"]))
		})
	}
}

func TestListActorNames(t *testing.T) {
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice", 2: "bob", 3: "carol"})
	a := openAuditor(t, cfg)
	ctx := t.Context()

	// Recorded by id alone: the library takes the snapshot from users.
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 2}}))
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 3}}))
	require.NoError(t, a.Record(ctx, Event{Action: UserLoginFailed}))
	insertListRows(t, db, listRow{userID: 3, action: string(UserLogin)}) // TREK's row: no snapshot

	_, err := db.Exec(`UPDATE users SET username = 'alice2', email = 'alice2@example.com' WHERE id = 1`)
	require.NoError(t, err)
	_, err = db.Exec(`DELETE FROM users WHERE id = 2`) // ON DELETE SET NULL: user_id goes
	require.NoError(t, err)
	_, err = db.Exec(`PRAGMA foreign_keys = OFF; DELETE FROM users WHERE id = 3; PRAGMA foreign_keys = ON`)
	require.NoError(t, err) // without foreign keys: user_id stays

	page, err := a.List(ctx, Query{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 5)
	type names struct {
		UserID          *int64
		Username, Email *string
	}
	p := func(s string) *string { return &s }
	id := func(n int64) *int64 { return &n }
	want := []names{
		{id(3), nil, nil}, // users row gone, no snapshot
		{nil, nil, nil},   // anonymous
		{id(3), p("carol"), p("carol@example.com")},   // users row gone, id kept: snapshot
		{nil, p("bob"), p("bob@example.com")},         // users row deleted, id set NULL: snapshot
		{id(1), p("alice2"), p("alice2@example.com")}, // users row wins over the snapshot
	}
	for i, w := range want {
		e := page.Entries[i]
		assert.Equal(t, w, names{e.UserID, e.Username, e.UserEmail}, "entry %d (%s)", i, e.Action)
	}
}

// An actor the host names by id and one name has the other from users:
// the log line gives the email, and the entry keeps both once the user is
// deleted. The first event of an Auditor is written in a transaction, the
// second alone (see insertAlone): both are checked.
func TestPartialActorIsCompletedFromUsers(t *testing.T) {
	for _, actor := range []Actor{{UserID: 7, Username: "alice"}, {UserID: 7, Email: "alice@example.com"}} {
		t.Run(fmt.Sprintf("%+v", actor), func(t *testing.T) {
			cfg := testConfig(t)
			db := createTrekDB(t, cfg.DBPath, map[int64]string{7: "alice"})
			a := openAuditor(t, cfg)
			for range 2 {
				require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: actor, IP: "203.0.113.9"}))
			}
			assert.Equal(t, 2, strings.Count(string(readLog(t, cfg.LogPath)), " alice@example.com logged in ip=203.0.113.9\n"))

			_, err := db.Exec(`DELETE FROM users WHERE id = 7`)
			require.NoError(t, err)
			page, err := a.List(t.Context(), Query{})
			require.NoError(t, err)
			require.Len(t, page.Entries, 2)
			for _, e := range page.Entries {
				require.NotNil(t, e.Username)
				require.NotNil(t, e.UserEmail)
				assert.Equal(t, "alice", *e.Username)
				assert.Equal(t, "alice@example.com", *e.UserEmail)
			}
		})
	}
}

func TestListWithoutUsersTable(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openTestDB(t, cfg.DBPath)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin,
		Actor: Actor{UserID: 4, Username: "dave", Email: "dave@example.com"}}))
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLogin, Actor: Actor{UserID: 5}}))
	var hasUsers int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'`).Scan(&hasUsers))
	require.Zero(t, hasUsers)

	page, err := a.List(t.Context(), Query{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	byID := page.Entries[0]
	assert.Equal(t, int64(5), *byID.UserID)
	assert.Nil(t, byID.Username)
	assert.Nil(t, byID.UserEmail)
	snap := page.Entries[1]
	assert.Equal(t, int64(4), *snap.UserID)
	require.NotNil(t, snap.Username)
	require.NotNil(t, snap.UserEmail)
	assert.Equal(t, "dave", *snap.Username)
	assert.Equal(t, "dave@example.com", *snap.UserEmail)

	// A users table TREK creates later is joined from then on.
	_, err = db.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT);
		INSERT INTO users VALUES (5, 'erin', 'erin@example.com')`)
	require.NoError(t, err)
	page, err = a.List(t.Context(), Query{})
	require.NoError(t, err)
	require.NotNil(t, page.Entries[0].Username)
	assert.Equal(t, "erin", *page.Entries[0].Username)
	assert.Equal(t, "dave", *page.Entries[1].Username)
}

// TestListTotalStaysExact checks the trigger-kept row count that total
// reads when there is no filter against COUNT(*), through every way rows
// reach the table: TREK's rows from before the library, the library's
// writer, TREK's plain INSERTs (single, multi-row, INSERT ... SELECT, in
// committed and rolled-back transactions, concurrent with the library) and
// deletes by hand.
func TestListTotalStaysExact(t *testing.T) {
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice"})
	insertManyTrekRows(t, db, 37)
	a := openAuditor(t, cfg)
	ctx := t.Context()

	steps := []struct {
		name  string
		do    func(t *testing.T)
		delta int64 // how COUNT(*) changes
	}{
		{"rows TREK wrote before the first Open", func(t *testing.T) {}, 0},
		{"events the library records", func(t *testing.T) {
			for range 3 {
				require.NoError(t, a.Record(ctx, Event{Action: UserLogin, Actor: Actor{UserID: 1}}))
			}
		}, 3},
		{"a single TREK insert", func(t *testing.T) {
			insertTrekRow(t, db, 1, string(TripCreate), "trip:1", `{"title":"Lisbon"}`, "203.0.113.9")
		}, 1},
		{"a multi-row TREK insert", func(t *testing.T) { insertManyTrekRows(t, db, 250) }, 250},
		{"a TREK transaction rolled back", func(t *testing.T) {
			tx, err := db.Begin()
			require.NoError(t, err)
			_, err = tx.Exec(`INSERT INTO audit_log (action) VALUES ('user.login'), ('user.login')`)
			require.NoError(t, err)
			require.NoError(t, tx.Rollback())
		}, 0},
		{"an INSERT ... SELECT", func(t *testing.T) {
			_, err := db.Exec(`INSERT INTO audit_log (action, ip) SELECT action, ip FROM audit_log ORDER BY id LIMIT 10`)
			require.NoError(t, err)
		}, 10},
		{"rows an operator deletes by hand", func(t *testing.T) {
			res, err := db.Exec(`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT 20)`)
			require.NoError(t, err)
			n, err := res.RowsAffected()
			require.NoError(t, err)
			require.EqualValues(t, 20, n)
		}, -20},
		{"the library and TREK writing at once", func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 80)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						if w%2 == 0 {
							errs <- a.Record(ctx, Event{Action: OAuthTokenIssue})
						} else {
							_, err := db.Exec(`INSERT INTO audit_log (action) VALUES ('oauth.token.refresh')`)
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
		}, 80},
		{"after reopening", func(t *testing.T) {
			require.NoError(t, a.Close())
			a = openAuditor(t, cfg)
		}, 0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := countRows(t, db)
			s.do(t)
			require.Equal(t, before+s.delta, countRows(t, db), "the step did what it says")
			page, err := a.List(ctx, Query{Limit: 1})
			require.NoError(t, err)
			assert.Equal(t, before+s.delta, page.Total)
		})
	}
}

// TestListTotalAndPageFromOneSnapshot lists while events keep arriving and
// checks that each page's total is the number of matching rows up to the
// page's newest entry: the total and the page were read from the same
// state of the table, whichever way the total is counted. The reader goes
// on until every query has read listMinNewest pages with different newest
// entries, so commits really did land between its reads.
func TestListTotalAndPageFromOneSnapshot(t *testing.T) {
	const (
		listMinNewest = 20               // distinct newest entries each query must see
		listWatchdog  = 60 * time.Second // a reader that never gets there fails
	)
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	ctx := t.Context()
	queries := []struct {
		name  string
		q     Query
		where string // the same filter in SQL, for the check
	}{
		{"no filter (the row count table)", Query{Limit: 3}, "1"},
		{"an action (the per-action counts)", Query{Limit: 3, Action: string(UserLogin)}, "action = 'user.login'"},
		{"an action and an IP (COUNT)", Query{Limit: 3, Action: string(UserLogin), IP: "203.0.113.7"},
			"action = 'user.login' AND ip = '203.0.113.7'"},
	}
	type seen struct {
		query         int
		total, newest int64
	}
	got := map[seen]bool{} // a page read twice in the same state is checked once
	// One event that every query matches, committed before the reader
	// starts: no page it reads is empty.
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, IP: "203.0.113.7"}))

	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				e := Event{Action: UserLogin, IP: fmt.Sprintf("203.0.113.%d", 7+(w+i)%2)}
				if i%3 == 0 {
					e = Event{Action: UserRegister}
				}
				if err := a.Record(ctx, e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	newest := make([]map[int64]bool, len(queries)) // per query: the newest ids its pages had
	for qi := range newest {
		newest[qi] = map[int64]bool{}
	}
	enough := func() bool {
		for _, m := range newest {
			if len(m) < listMinNewest {
				return false
			}
		}
		return true
	}
	watchdog := time.After(listWatchdog)
	timedOut := false
read:
	for i := 0; !enough(); i++ {
		select {
		case <-watchdog:
			timedOut = true
			break read
		default:
		}
		qi := i % len(queries)
		page, err := a.List(ctx, queries[qi].q)
		if !assert.NoError(t, err) {
			break
		}
		if assert.NotEmpty(t, page.Entries, "%s: the event recorded first matches", queries[qi].name) {
			got[seen{qi, page.Total, page.Entries[0].ID}] = true
			newest[qi][page.Entries[0].ID] = true
		}
		runtime.Gosched() // with one P, let the writers run between reads
	}
	close(stop)
	wg.Wait()
	for range 4 {
		require.NoError(t, <-errs)
	}
	require.NoError(t, a.Close())
	require.False(t, timedOut, "after %v the queries had seen only %d, %d and %d different newest entries",
		listWatchdog, len(newest[0]), len(newest[1]), len(newest[2]))

	db := openPlainDB(t, cfg.DBPath)
	torn := 0
	for g := range got {
		var want int64
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE `+queries[g.query].where+` AND id <= ?`,
			g.newest).Scan(&want))
		if want != g.total {
			torn++
			t.Logf("%s: total %d, but %d rows up to the newest entry %d", queries[g.query].name, g.total, want, g.newest)
		}
	}
	assert.Zero(t, torn, "pages whose total and entries disagree, of %d distinct", len(got))
}

// walkCursor reads every page of q through next_cursor, calling between
// after each page but the last, and returns the ids in the order read.
func walkCursor(t *testing.T, a *Auditor, q Query, between func()) []int64 {
	t.Helper()
	ids := []int64{}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10_000, "the walk does not end")
		page, err := a.List(t.Context(), q)
		require.NoError(t, err)
		ids = append(ids, entryIDs(page.Entries)...)
		if page.NextCursor == nil {
			return ids
		}
		require.NotEmpty(t, page.Entries, "a page with a next cursor has entries")
		q.Cursor = *page.NextCursor
		if between != nil {
			between()
		}
	}
}

// TestListCursorWalkWhileRecording walks every page while another goroutine
// records events: each row that existed before the walk is read exactly once
// and the ids only go down.
func TestListCursorWalkWhileRecording(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	insertManyTrekRows(t, db, 230)
	for range 7 {
		require.NoError(t, a.Record(t.Context(), Event{Action: UserRegister}))
	}
	before := listAllIDs(t, db)

	check := func(t *testing.T, got []int64) {
		t.Helper()
		assert.True(t, slices.IsSortedFunc(got, func(x, y int64) int { return int(y - x) }) &&
			len(slices.Compact(slices.Clone(got))) == len(got), "ids must strictly decrease: %v", got)
		seen := map[int64]int{}
		for _, id := range got {
			seen[id]++
		}
		for _, id := range before {
			assert.Equal(t, 1, seen[id], "row %d", id)
		}
	}

	t.Run("inserts between every two pages", func(t *testing.T) {
		turn, done := make(chan struct{}), make(chan error)
		go func() {
			defer close(done)
			for range turn {
				var err error
				for i := range 9 {
					if i%3 == 0 {
						_, err = db.Exec(`INSERT INTO audit_log (action) VALUES ('user.login')`)
					} else {
						err = a.Record(t.Context(), Event{Action: UserLogin})
					}
					if err != nil {
						break
					}
				}
				done <- err
			}
		}()
		defer func() {
			close(turn)
			<-done
		}()
		got := walkCursor(t, a, Query{Limit: 25}, func() {
			turn <- struct{}{}
			require.NoError(t, <-done)
		})
		check(t, got)
		assert.Len(t, got, len(before), "rows recorded during the walk are newer than its first page")
	})

	t.Run("a writer running freely", func(t *testing.T) {
		stop, wrote := make(chan struct{}), make(chan struct{}, 1)
		errc := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				if err := a.Record(t.Context(), Event{Action: OAuthTokenRefresh}); err != nil {
					errc <- err
					return
				}
				select {
				case wrote <- struct{}{}:
				default:
				}
			}
		}()
		<-wrote
		got := walkCursor(t, a, Query{Limit: 20}, func() { <-wrote })
		close(stop)
		require.NoError(t, <-errc)
		check(t, got)
	})
}

// TestListOffsetRepeatsRowsUnderInserts shows what the cursor is for: with
// offset paging, rows recorded between two pages push rows already shown
// onto the next page.
func TestListOffsetRepeatsRowsUnderInserts(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	insertManyTrekRows(t, db, 60)

	first, err := a.List(t.Context(), Query{Limit: 20})
	require.NoError(t, err)
	insertManyTrekRows(t, db, 5)
	byOffset, err := a.List(t.Context(), Query{Limit: 20, Offset: 20})
	require.NoError(t, err)
	byCursor, err := a.List(t.Context(), Query{Limit: 20, Cursor: *first.NextCursor})
	require.NoError(t, err)

	shown := entryIDs(first.Entries)
	repeated := 0
	for _, id := range entryIDs(byOffset.Entries) {
		if slices.Contains(shown, id) {
			repeated++
		}
	}
	assert.Equal(t, 5, repeated, "offset paging repeats one row per insert")
	for _, id := range entryIDs(byCursor.Entries) {
		assert.NotContains(t, shown, id, "cursor paging repeats nothing")
	}
	assert.Equal(t, shown[len(shown)-1]-1, byCursor.Entries[0].ID, "cursor paging skips nothing")
}

// filterFixture is a small table covering every filter: categories,
// prefixes (with a key holding '_', LIKE's wildcard), keys outside the
// catalogue, users, IPs, resources and times on both sides of each bound.
type filterFixture struct {
	a   *Auditor
	ids map[string]int64 // by row name
}

func newFilterFixture(t *testing.T) filterFixture {
	t.Helper()
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, map[int64]string{1: "alice", 2: "bob", 3: "carol"})
	a := openAuditor(t, cfg)
	names := []string{}
	rows := []listRow{}
	add := func(name, created string, user any, action string, resource, ip any) {
		names = append(names, name)
		rows = append(rows, listRow{createdAt: created, userID: user, action: action, resource: resource, ip: ip})
	}
	add("login", "2026-04-01 08:00:00", 1, "user.login", nil, "203.0.113.9")
	add("failed", "2026-04-01 09:30:00", nil, "user.login_failed", nil, "198.51.100.7")
	add("adminUser", "2026-04-02 10:00:00", 2, "admin.user_update", "user:3", "203.0.113.20")
	add("adminRevoke", "2026-04-03 11:00:00", 2, "admin.oauth_session.revoke", nil, "203.0.113.20")
	add("appSettings", "2026-04-04 12:00:00", 2, "settings.app_update", nil, "203.0.113.20")
	add("oauthCreate", "2026-04-05 08:00:00", 1, "oauth.client.create", "client:7", "2001:db8::1")
	add("tokenIssue", "2026-04-05 08:00:01", 3, "oauth.token.issue", "client:7", "198.51.100.7")
	add("tokenRefresh", "2026-04-06 00:00:00", 3, "oauth.token.refresh", "client:7", "198.51.100.7")
	add("tokenRefresh2", "2026-04-06 01:00:00", 3, "oauth.token.refresh", "client:7", "198.51.100.7")
	add("tokenRefresh3", "2026-04-06 02:00:00", 3, "oauth.token.refresh", "client:7", "198.51.100.7")
	add("mcp", "2026-04-07 13:00:00", 1, "mcp.tool_call", "get_trip", "203.0.113.9")
	add("trip", "2026-04-08 14:00:00", 1, "trip.create", "trip:12", "203.0.113.9")
	add("adminUser2", "2026-04-09 14:00:00", 2, "admin.user_update", "user:4", "203.0.113.20")
	add("adminNew", "2026-04-09 15:00:00", 2, "admin.new_thing", nil, "203.0.113.20") // a newer TREK's key
	add("lookalike", "2026-04-10 16:00:00", 2, "admin.oauthxsession.revoke", nil, "203.0.113.20")
	add("administrator", "2026-04-11 17:00:00", 2, "administrator.reset", nil, nil)
	add("adminTools", "2026-04-12 18:00:00", 2, "admin_tools.reset", nil, nil)
	add("photo", "2026-04-12 19:00:00", 1, "photo.upload", "photo:9", "2001:db8::1")
	ids := insertListRows(t, db, rows...)
	f := filterFixture{a: a, ids: map[string]int64{}}
	for i, n := range names {
		f.ids[n] = ids[i]
	}
	return f
}

// want returns the ids of the named rows, newest first.
func (f filterFixture) want(names ...string) []int64 {
	ids := make([]int64, len(names))
	for i, n := range names {
		ids[i] = f.ids[n]
	}
	slices.SortFunc(ids, func(x, y int64) int { return int(y - x) })
	return ids
}

func mustTime(s string) time.Time {
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return ts
}

// filterCase is one filter, as a Query and as the admin list's parameters.
type filterCase struct {
	name   string
	q      Query
	params string
	want   []string // row names
}

var filterCases = []filterCase{
	{"exact key", Query{Action: "user.login"}, "action=user.login", []string{"login"}},
	{"key outside the catalogue", Query{Action: "photo.upload"}, "action=photo.upload", []string{"photo"}},
	{"prefix admin. takes unknown keys, not admin_ or administrator", Query{Action: "admin."}, "action=admin.",
		[]string{"adminUser", "adminRevoke", "adminUser2", "adminNew", "lookalike"}},
	{"prefix with '_' is not a LIKE pattern", Query{Action: "admin.oauth_session."}, "action=admin.oauth_session.",
		[]string{"adminRevoke"}},
	{"prefix with one key", Query{Action: "photo."}, "action=photo.", []string{"photo"}},
	{"prefix with no rows", Query{Action: "backup."}, "action=backup.", nil},
	{"category OAuth", Query{Action: "OAuth"}, "action=OAuth",
		[]string{"oauthCreate", "tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
	{"category in any case", Query{Action: "oauth"}, "action=oauth",
		[]string{"oauthCreate", "tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
	{"category with one key", Query{Action: "MCP"}, "action=MCP", []string{"mcp"}},
	{"category Admin actions has settings.app_update, only catalogue keys", Query{Action: "Admin actions"},
		"action=Admin+actions", []string{"adminUser", "adminRevoke", "appSettings", "adminUser2"}},
	{"user_id", Query{UserID: 3}, "user_id=3", []string{"tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
	{"user_id with no rows", Query{UserID: 42}, "user_id=42", nil},
	{"ip v4", Query{IP: "198.51.100.7"}, "ip=198.51.100.7",
		[]string{"failed", "tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
	{"ip v6", Query{IP: "2001:db8::1"}, "ip=2001:db8::1", []string{"oauthCreate", "photo"}},
	{"ip v6 in capitals", Query{IP: "2001:DB8::1"}, "ip=2001:DB8::1", []string{"oauthCreate", "photo"}},
	{"ip v6 written out", Query{IP: "2001:db8:0:0:0:0:0:1"}, "ip=2001:db8:0:0:0:0:0:1", []string{"oauthCreate", "photo"}},
	{"ip v4 as IPv4-mapped", Query{IP: "::ffff:198.51.100.7"}, "ip=::ffff:198.51.100.7",
		[]string{"failed", "tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
	{"resource", Query{Resource: "client:7"}, "resource=client:7",
		[]string{"oauthCreate", "tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
	{"since is inclusive", Query{Since: mustTime("2026-04-10T16:00:00Z")}, "since=2026-04-10T16:00:00Z",
		[]string{"lookalike", "administrator", "adminTools", "photo"}},
	{"until is exclusive", Query{Until: mustTime("2026-04-02T10:00:00Z")}, "until=2026-04-02T10:00:00Z",
		[]string{"login", "failed"}},
	{"since with an offset is converted to UTC", Query{Since: mustTime("2026-04-12T20:00:00+02:00")},
		"since=2026-04-12T20:00:00%2B02:00", []string{"adminTools", "photo"}},
	{"since and until", Query{Since: mustTime("2026-04-05T08:00:00Z"), Until: mustTime("2026-04-06T00:00:00Z")},
		"since=2026-04-05T08:00:00Z&until=2026-04-06T00:00:00Z", []string{"oauthCreate", "tokenIssue"}},
	{"prefix, user and since combined", Query{Action: "admin.", UserID: 2, Since: mustTime("2026-04-03T00:00:00Z")},
		"action=admin.&user_id=2&since=2026-04-03T00:00:00Z", []string{"adminRevoke", "adminUser2", "adminNew", "lookalike"}},
	{"category, ip and until combined", Query{Action: "OAuth", IP: "198.51.100.7", Until: mustTime("2026-04-06T00:00:00Z")},
		"action=OAuth&ip=198.51.100.7&until=2026-04-06T00:00:00Z", []string{"tokenIssue"}},
	{"SQL in a value is a value", Query{IP: "' OR 1=1 --"}, "ip=%27+OR+1%3D1+--", nil},
	{"unknown parameters are ignored", Query{UserID: 3}, "user_id=3&sort=asc&foo=bar",
		[]string{"tokenIssue", "tokenRefresh", "tokenRefresh2", "tokenRefresh3"}},
}

func TestListFilters(t *testing.T) {
	f := newFilterFixture(t)
	for _, c := range filterCases {
		t.Run(c.name, func(t *testing.T) {
			want := f.want(c.want...)
			page, err := f.a.List(t.Context(), c.q)
			require.NoError(t, err)
			assert.Equal(t, want, entryIDs(page.Entries))
			assert.EqualValues(t, len(want), page.Total, "total counts what the filter matches")
			assert.Nil(t, page.NextCursor)

			// Page by page, through the cursor and through offsets.
			q := c.q
			q.Limit = 1
			assert.Equal(t, want, walkCursor(t, f.a, q, nil), "cursor walk")
			byOffset := []int64{}
			for q.Offset = 0; q.Offset <= len(want); q.Offset++ {
				page, err := f.a.List(t.Context(), q)
				require.NoError(t, err)
				assert.EqualValues(t, len(want), page.Total)
				byOffset = append(byOffset, entryIDs(page.Entries)...)
			}
			assert.Equal(t, want, byOffset, "offset walk")
		})
	}
}

func TestListRejectsBadQueries(t *testing.T) {
	f := newFilterFixture(t)
	cases := []struct {
		name string
		q    Query
		says string // what the error names
	}{
		{"cursor that is not a number", Query{Cursor: "abc"}, "cursor"},
		{"cursor 0", Query{Cursor: "0"}, "cursor"},
		{"negative cursor", Query{Cursor: "-3"}, "cursor"},
		{"action that is no key, prefix or category", Query{Action: "no such category"}, "action"},
		{"prefix in capitals", Query{Action: "Admin."}, "action"},
		{"key in capitals", Query{Action: "User.Login"}, "action"},
		{"SQL as an action", Query{Action: "x'; DROP TABLE audit_log; --"}, "action"},
		{"negative user", Query{UserID: -1}, "user_id"},
		{"since equal to until", Query{Since: mustTime("2026-04-05T00:00:00Z"), Until: mustTime("2026-04-05T00:00:00Z")}, "since"},
		{"since after until", Query{Since: mustTime("2026-04-06T00:00:00Z"), Until: mustTime("2026-04-05T00:00:00Z")}, "until"},
		{"since past the year 9999 in UTC", Query{Since: mustTime("9999-12-31T23:59:59-23:59")}, "since"},
		{"until before the year 1 in UTC", Query{Until: mustTime("0001-01-01T00:00:00+01:00")}, "until"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.a.List(t.Context(), c.q)
			require.ErrorIs(t, err, ErrBadQuery)
			assert.Contains(t, err.Error(), c.says)
		})
	}
	page, err := f.a.List(t.Context(), Query{})
	require.NoError(t, err)
	assert.Len(t, page.Entries, len(f.ids), "nothing was harmed")
}

// TREK's own rows hold the address as TREK's server wrote it, IPv4-mapped
// for an IPv4 client on its dual-stack socket: looked for in any spelling
// (the canonical one the library's rows show included), the filter finds
// those rows and the library's, stored canonical, together.
func TestListIPFilterFindsTREKsSpellingAndTheCanonical(t *testing.T) {
	cfg := testConfig(t)
	db := createTrekDB(t, cfg.DBPath, nil)
	trek := insertTrekRow(t, db, nil, "user.login_failed", nil, nil, "::ffff:203.0.113.9")
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLoginFailed, IP: "::ffff:203.0.113.9"}))
	require.NoError(t, a.Record(t.Context(), Event{Action: UserLoginFailed, IP: "203.0.113.10"}))
	for _, ip := range []string{"::ffff:203.0.113.9", "203.0.113.9", "::FFFF:203.0.113.9", "::ffff:cb00:7109"} {
		t.Run(ip, func(t *testing.T) {
			page, err := a.List(t.Context(), Query{IP: ip})
			require.NoError(t, err)
			require.Len(t, page.Entries, 2)
			assert.Equal(t, "203.0.113.9", *page.Entries[0].IP, "the library's row, canonical")
			assert.Equal(t, trek, page.Entries[1].ID, "TREK's row, as TREK wrote it")
			assert.EqualValues(t, 2, page.Total)
		})
	}
}

// TestListCreatedAtForms: a created_at in any text form SQLite reads as a
// time is listed as ISO 8601 UTC; anything else as stored, so that an odd
// row is seen as it is.
func TestListCreatedAtForms(t *testing.T) {
	cases := []struct{ stored, listed string }{
		{"2026-04-20 08:11:53", "2026-04-20T08:11:53Z"},
		{"2026-04-20 08:11:53.250", "2026-04-20T08:11:53.25Z"},
		{"2026-04-20T08:11:53", "2026-04-20T08:11:53Z"},
		{"2026-04-20T08:11:53.123Z", "2026-04-20T08:11:53.123Z"}, // JavaScript's toISOString
		{"2026-04-20T10:11:53+02:00", "2026-04-20T08:11:53Z"},
		{"2026-04-20 10:11:53+02:00", "2026-04-20T08:11:53Z"},
		{"2026-04-20 08:11", "2026-04-20T08:11:00Z"},
		{"2026-04-20T08:11-01:30", "2026-04-20T09:41:00Z"},
		{"2026-04-20", "2026-04-20T00:00:00Z"},
		{"1713600000", "1713600000"}, // a number: unix time or a Julian day, who can say
		{"yesterday", "yesterday"},
		{"2026-02-30 08:11:53", "2026-02-30 08:11:53"}, // no such day
		{"", ""},
	}
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	for _, tc := range cases {
		t.Run(tc.stored, func(t *testing.T) {
			res, err := db.Exec(`INSERT INTO audit_log (created_at, action) VALUES (?, 'user.login')`, tc.stored)
			require.NoError(t, err)
			id, err := res.LastInsertId()
			require.NoError(t, err)
			page, err := a.List(t.Context(), Query{Limit: 1})
			require.NoError(t, err)
			require.Len(t, page.Entries, 1)
			require.Equal(t, id, page.Entries[0].ID)
			assert.Equal(t, tc.listed, page.Entries[0].CreatedAt)
			if tc.listed != tc.stored || strings.HasSuffix(tc.listed, "Z") {
				assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`, page.Entries[0].CreatedAt)
			}
		})
	}
	// And NULL, which TREK's column allows.
	_, err := db.Exec(`INSERT INTO audit_log (created_at, action) VALUES (NULL, 'user.login')`)
	require.NoError(t, err)
	page, err := a.List(t.Context(), Query{Limit: 1})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Empty(t, page.Entries[0].CreatedAt)
}

// plannedAuditor opens an Auditor that tells planned how each page
// filtered by time alone is read (true: walked, false: sorted; see
// smallWindow), with the test's own handle on its database.
func plannedAuditor(t *testing.T, planned func(walk bool)) (*Auditor, *sql.DB) {
	t.Helper()
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	a.store.(*sqliteStore).planned = planned
	return a, openPlainDB(t, cfg.DBPath)
}

// TestListTimeWindowsReadEitherWay: a page filtered by time alone is read
// by sorting the window's rows when they are few, else by walking the ids
// they lie between (see smallWindow). Either way it must be exactly the
// page plain SQL gives, for windows of every size and place, on rows whose
// times are not all in id order, with offsets and cursors; and with the
// created_at index gone, a small window is still read.
func TestListTimeWindowsReadEitherWay(t *testing.T) {
	var walked []bool
	a, db := plannedAuditor(t, func(walk bool) { walked = append(walked, walk) })
	const n = 3 * smallWindow
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]listRow, n)
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Minute)
		if i%37 == 0 {
			at = start.Add(time.Duration((i*7919)%n) * time.Minute) // out of id order
		}
		rows[i] = listRow{createdAt: at.Format(sqliteTimeLayout), action: string(UserLogin)}
		if i%101 == 0 {
			rows[i].createdAt = "not a time" // text sorts after every time
		}
	}
	insertListRows(t, db, rows...)
	minute := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }

	windows := []struct{ since, until time.Time }{
		{since: minute(n - 10)}, {since: minute(n - 2*smallWindow)}, {since: minute(10)}, {since: minute(n + 100)},
		{until: minute(5)}, {until: minute(400)}, {until: minute(n / 2)}, {until: minute(n - 5)},
		{minute(100), minute(130)}, {minute(0), minute(n)}, {minute(1000), minute(n - 500)}, {minute(n - 100), minute(n - 50)},
		{minute(10), minute(500)}, {minute(n - 40), minute(n - 30)}, {minute(100), minute(smallWindow + 1000)},
	}
	ways := map[bool]int{} // pages read by walking (true) and by sorting
	check := func(t *testing.T, w struct{ since, until time.Time }) {
		for _, pg := range []struct {
			limit, offset int
			cursor        int64
		}{{100, 0, 0}, {1, 0, 0}, {10, 7, 0}, {100, 0, n / 2}, {5, 3, 250}, {50, 2 * smallWindow, 0}} {
			name := fmt.Sprintf("since %s until %s limit %d offset %d cursor %d", w.since.Format(time.DateTime), w.until.Format(time.DateTime),
				pg.limit, pg.offset, pg.cursor)
			q := Query{Since: w.since, Until: w.until, Limit: pg.limit, Offset: pg.offset}
			if pg.cursor > 0 {
				q.Cursor = encodeCursor(pg.cursor)
			}
			want, total := plainPage(t, db, q, "1", nil, pg.cursor)

			walked = walked[:0]
			page, err := a.List(t.Context(), q)
			require.NoError(t, err, name)
			assert.Equal(t, want, entryIDs(page.Entries), name)
			assert.Equal(t, total, page.Total, name)
			assert.Equal(t, []bool{total > smallWindow}, walked, "%s: %d rows, walked", name, total)
			ways[total > smallWindow]++
		}
	}
	for _, w := range windows {
		check(t, w)
	}
	require.Len(t, ways, 2, "windows read both ways")

	// TREK may rebuild audit_log while the library runs, its index gone
	// until the next Open: a window is read all the same.
	_, err := db.Exec(`DROP INDEX idx_audit_log_created`)
	require.NoError(t, err)
	check(t, windows[8])
	check(t, windows[9])
}

// TestListTimeWindowBesideAnotherFilter: a page filtered by time and by
// something else (an action, a category, a user, an address) is read
// within the ids the window's rows lie between, where the window is small
// (windowIDs). Bounded or not, it must be exactly the page plain SQL
// gives, for windows of every size and place, on rows whose times are not
// all in id order, with offsets and cursors.
func TestListTimeWindowBesideAnotherFilter(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	db := openPlainDB(t, cfg.DBPath)
	var bounded []bool
	s := a.store.(*sqliteStore)
	s.windowCap, s.bounded = 200, func(b bool) { bounded = append(bounded, b) }
	const n = 3000
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	actions := []Action{UserLogin, UserLoginFailed, TripCreate, TripUpdate}
	rows := make([]listRow, n)
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Minute)
		if i%37 == 0 {
			at = start.Add(time.Duration((i*7919)%n) * time.Minute) // out of id order
		}
		rows[i] = listRow{createdAt: at.Format(sqliteTimeLayout), action: string(actions[i%len(actions)]),
			userID: int64(i%5 + 1), ip: fmt.Sprintf("203.0.113.%d", i%3)}
		if i%101 == 0 {
			rows[i].createdAt = "not a time" // text sorts after every time
		}
	}
	insertListRows(t, db, rows...)
	minute := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }

	filters := []struct {
		q     Query
		where string
		args  []any
	}{
		{Query{Action: string(UserLogin)}, "action = ?", []any{string(UserLogin)}},
		{Query{Action: "Trips"}, "action IN (?, ?)", []any{string(TripCreate), string(TripUpdate)}},
		{Query{Action: "user."}, "action IN (?, ?)", []any{string(UserLogin), string(UserLoginFailed)}},
		{Query{UserID: 3}, "user_id = ?", []any{int64(3)}},
		{Query{IP: "::ffff:203.0.113.1", Action: string(TripCreate)}, "ip = ? AND action = ?", []any{"203.0.113.1", string(TripCreate)}},
	}
	windows := []struct{ since, until time.Time }{
		{since: minute(n - 10)}, {since: minute(n - 150)}, {since: minute(n - 1000)}, {since: minute(10)}, {since: minute(n + 100)},
		{until: minute(5)}, {until: minute(150)}, {until: minute(n / 2)},
		{minute(100), minute(130)}, {minute(0), minute(n)}, {minute(1000), minute(1150)}, {minute(1000), minute(n - 500)},
	}
	ways := map[bool]int{}
	for _, f := range filters {
		for _, w := range windows {
			for _, pg := range []struct {
				limit, offset int
				cursor        int64
			}{{100, 0, 0}, {1, 0, 0}, {10, 7, 0}, {100, 0, n / 2}, {5, 3, 250}} {
				name := fmt.Sprintf("%+v since %s until %s limit %d offset %d cursor %d", f.q, w.since.Format(time.DateTime),
					w.until.Format(time.DateTime), pg.limit, pg.offset, pg.cursor)
				q := f.q
				q.Since, q.Until, q.Limit, q.Offset = w.since, w.until, pg.limit, pg.offset
				if pg.cursor > 0 {
					q.Cursor = encodeCursor(pg.cursor)
				}
				want, total := plainPage(t, db, q, f.where, f.args, pg.cursor)

				bounded = bounded[:0]
				page, err := a.List(t.Context(), q)
				require.NoError(t, err, name)
				assert.Equal(t, want, entryIDs(page.Entries), name)
				assert.Equal(t, total, page.Total, name)
				require.Len(t, bounded, 1, name)
				ways[bounded[0]]++
			}
		}
	}
	assert.Positive(t, ways[true], "pages read within the window's ids")
	assert.Positive(t, ways[false], "pages of windows too wide to bound")
}

// plainPage is the page q asks for, and its total, as plain SQL gives
// them: the rows that where (with args) and q's time window match, newest
// first, below cursor where it is not 0 (a cursor page has no offset).
func plainPage(t *testing.T, db *sql.DB, q Query, where string, args []any, cursor int64) (ids []int64, total int64) {
	t.Helper()
	conds, args := []string{where}, slices.Clone(args)
	if !q.Since.IsZero() {
		conds, args = append(conds, "created_at >= ?"), append(args, q.Since.Format(sqliteTimeLayout))
	}
	if !q.Until.IsZero() {
		conds, args = append(conds, "created_at < ?"), append(args, q.Until.Format(sqliteTimeLayout))
	}
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE `+strings.Join(conds, " AND "), args...).Scan(&total))
	offset := q.Offset
	if cursor > 0 {
		conds, args, offset = append(conds, "id < ?"), append(args, cursor), 0
	}
	ids = queryIDs(t, db, `SELECT id FROM audit_log WHERE `+strings.Join(conds, " AND ")+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		append(args, q.Limit, offset)...)
	return ids, total
}

// queryIDs returns the ids q selects, in its order; none is an empty
// slice, as a page's entryIDs are.
func queryIDs(t testing.TB, db *sql.DB, q string, args ...any) []int64 {
	t.Helper()
	ids := []int64{}
	rows, err := db.Query(q, args...)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

// Rows written by hand or by another tool can hold values of any size,
// where the library stores at most 64 KiB of details: a page of them is
// listed with each value bounded (details as the truncation markers, text
// as its marked beginning), and read no larger into the host's memory.
func TestListBoundsValuesLargerThanTheLibraryStores(t *testing.T) {
	cfg := testConfig(t)
	a := openAuditor(t, cfg)
	require.NoError(t, a.Record(context.Background(), Event{Action: UserLogin}))

	const rows, size = 4, 16 << 20 // 64 MiB stored in all
	db := openPlainDB(t, cfg.DBPath)
	big := `{"x":"` + strings.Repeat("a", size) + `"}`
	long := strings.Repeat("r", size)
	for range rows {
		_, err := db.Exec(`INSERT INTO audit_log (action, resource, details, ip, actor_username) VALUES ('user.login', ?, ?, ?, ?)`,
			long, big, long, long)
		require.NoError(t, err)
	}
	fits := `{"x":"` + strings.Repeat("a", maxShownDetails-8) + `"}`
	_, err := db.Exec(`INSERT INTO audit_log (action, details) VALUES ('user.login', ?)`, fits)
	require.NoError(t, err)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := a.List(context.Background(), Query{Limit: rows + 2})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, p.Entries, rows+2)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated for one page")

	assert.JSONEq(t, fits, string(p.Entries[0].Details), "details the size the library stores are listed whole")
	for _, e := range p.Entries[1 : rows+1] {
		assert.JSONEq(t, fmt.Sprintf(`{"_truncated":true,"_original_size":%d}`, len(big)), string(e.Details))
		want := strings.Repeat("r", shownTextPrefix) + truncatedMark
		for _, got := range []*string{e.Resource, e.IP, e.Username} {
			require.NotNil(t, got)
			assert.Equal(t, want, *got)
		}
	}
	assert.Equal(t, UserLogin, p.Entries[rows+1].Action, "the library's own row, as it was")
}

// TestListSkipTotalLeavesLaterPagesUncounted: a walk through every page by
// cursor that counts on the first page only (Query.SkipTotal after it, as
// trek-audit's export, tail and list --all do) gets the same pages, read
// the same way (sorted or walked, see smallWindow), as one that counts on
// every page; the later pages say their total was not counted. A single
// page with SkipTotal, at an offset or a cursor outside the window, is the
// page the counted query gives. The admin API always counts.
func TestListSkipTotalLeavesLaterPagesUncounted(t *testing.T) {
	var walked []bool
	a, db := plannedAuditor(t, func(walk bool) { walked = append(walked, walk) })
	const n = 3 * smallWindow
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	minute := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	actions := []Action{UserLogin, TripUpdate, TripCreate, OAuthTokenRefresh, MCPToolCall}
	rows := make([]listRow, n)
	for i := range rows {
		at := minute(i)
		if i%37 == 0 {
			at = minute((i * 7919) % n) // out of id order
		}
		rows[i] = listRow{createdAt: at.Format(sqliteTimeLayout), action: string(actions[i%len(actions)]),
			userID: int64(1 + i%7), ip: fmt.Sprintf("203.0.113.%d", 1+i%3)}
	}
	insertListRows(t, db, rows...)

	// readAll reads every page by cursor, 500 at a time, with SkipTotal
	// from the second page on when skip is set; it returns the ids, the
	// totals and the plans of the pages.
	readAll := func(t *testing.T, q Query, skip bool) (ids, totals []int64, plans []bool) {
		q.Limit = MaxPageLimit
		walked = walked[:0]
		for {
			page, err := a.List(t.Context(), q)
			require.NoError(t, err)
			ids = append(ids, entryIDs(page.Entries)...)
			totals = append(totals, page.Total)
			if page.NextCursor == nil {
				return ids, totals, slices.Clone(walked)
			}
			q.Cursor, q.SkipTotal = *page.NextCursor, skip
		}
	}
	cases := []struct {
		name string
		q    Query
	}{
		{"no filter", Query{}},
		{"an action", Query{Action: string(UserLogin)}},
		{"a category", Query{Action: "Trips"}},
		{"a prefix", Query{Action: "trip."}},
		{"a user", Query{UserID: 3}},
		{"an IP", Query{IP: "203.0.113.1"}},
		{"a category since", Query{Action: "Trips", Since: minute(n / 3)}},
		{"since, a large window", Query{Since: minute(n / 3)}},
		{"since, a small window", Query{Since: minute(n - 1000)}},
		{"until, a large window", Query{Until: minute(2 * n / 3)}},
		{"until, a large window under more newer rows", Query{Until: minute(smallWindow + 100)}},
		{"since and until, a large window", Query{Since: minute(100), Until: minute(smallWindow + 1000)}},
	}
	ways := map[bool]bool{} // pages of a time window walked (true) and sorted
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantIDs, wantTotals, wantPlans := readAll(t, tc.q, false)
			for _, w := range wantPlans {
				ways[w] = true
			}
			ids, totals, plans := readAll(t, tc.q, true)
			require.Greater(t, len(totals), 1, "more than one page")
			assert.Equal(t, wantIDs, ids)
			assert.Equal(t, wantPlans, plans, "each page read the same way")
			assert.EqualValues(t, len(wantIDs), totals[0], "the first page counted")
			for i, total := range totals[1:] {
				assert.EqualValues(t, -1, total, "page %d not counted", i+2)
			}
			assert.Equal(t, wantTotals[0], totals[0])
		})
	}
	require.Len(t, ways, 2, "windows read both ways")

	singles := []struct {
		name string
		q    Query
	}{
		{"an offset deep in a large window", Query{Since: minute(n / 3), Offset: 7000, Limit: 500}},
		{"an offset at a large window's end", Query{Since: minute(n / 3), Offset: 8000, Limit: 500}},
		{"a cursor above the window", Query{Until: minute(smallWindow + 100), Cursor: encodeCursor(n)}},
		{"a cursor below the window", Query{Since: minute(n / 2), Cursor: encodeCursor(n / 3)}},
		{"an action and an offset", Query{Action: "Trips", Offset: 100, Limit: 20}},
	}
	for _, tc := range singles {
		t.Run(tc.name, func(t *testing.T) {
			want, err := a.List(t.Context(), tc.q)
			require.NoError(t, err)
			skip := tc.q
			skip.SkipTotal = true
			got, err := a.List(t.Context(), skip)
			require.NoError(t, err)
			assert.EqualValues(t, -1, got.Total)
			assert.Equal(t, entryIDs(want.Entries), entryIDs(got.Entries))
			assert.Equal(t, want.NextCursor, got.NextCursor)
		})
	}

	// The admin API has no way to skip the total: it is what the filters
	// match, as the panel expects.
	h := a.AdminHandler(allowAll)
	p := adminPage(t, adminGet(t, h, "since="+minute(n/3).Format(time.RFC3339)+"&SkipTotal=true&skip_total=1&cursor=9000"))
	var want int64
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE created_at >= ?`, minute(n/3).Format(sqliteTimeLayout)).Scan(&want))
	assert.Equal(t, want, p.Total)
}
