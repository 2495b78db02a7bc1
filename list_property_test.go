package audit

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The properties the admin list owes whoever reads it, checked against a
// model of the rows kept in Go, for any combination of its filters, on a
// table holding both events the library recorded and rows TREK's own server
// inserted (created_at as its CURRENT_TIMESTAMP writes it, addresses as
// Node gives them, IPv4 clients as ::ffff:a.b.c.d):
//
//  1. The first page holds the newest rows the filters match, as many as
//     the limit allows, newest first, and its total counts every row they
//     match (the README's "## The admin list": total "counts what the
//     filters match").
//  2. Following next_cursor from the first page reads every matching row
//     exactly once, in the same order, and next_cursor is null on the last
//     page only ("never repeating or skipping a row").
//  3. Paging by offset (0, limit, 2·limit, ...) reads the same rows; an
//     offset past the end is an empty page with the same total.
//  4. Every entry shows its row as stored: action, user_id, ip and
//     resource, and created_at as ISO 8601 UTC (YYYY-MM-DDTHH:MM:SSZ).
//  5. A query the list cannot use (an action that is neither a key, a
//     prefix ending in '.' nor a category; a negative user; a bound
//     outside the years 1 to 9999 in UTC; since not before until) is
//     refused with an error wrapping ErrBadQuery, never answered with some
//     other set of rows.
//
// What a filter matches is the README's table: action as an exact key, a
// prefix ending in '.', or a catalogue category in any case; user_id and
// resource exactly; ip, when it parses as an address, the rows holding it
// as typed, in canonical form or, for IPv4, as ::ffff:a.b.c.d, and other
// text exactly; since inclusive and until exclusive, compared as instants
// in whatever zone they are given. "Newest first" is by created_at, rows
// of the same second by id, newest first: the fixture's times never go
// down as ids go up, as TREK's and the library's do not, so that this is
// also the id order the cursor follows.

// listModelRow is one row of the fixture as the model knows it. Empty
// strings and user 0 are NULL.
type listModelRow struct {
	id       int64
	at       time.Time // created_at as an instant, whole seconds
	action   string
	userID   int64
	ip       string // as stored
	resource string
	trek     bool // inserted by TREK's own code, not recorded
}

// listModelFixture is one database and the model of its rows, in id order.
type listModelFixture struct {
	a        *Auditor
	rows     []listModelRow
	byID     map[int64]listModelRow
	instants []time.Time // the distinct created_at values, ascending
	recorded []time.Time // created_at of the first and last recorded event
}

// listModelTrekRow is a row TREK's code inserts; an empty at leaves
// created_at to CURRENT_TIMESTAMP.
type listModelTrekRow struct {
	at       string
	userID   int64
	action   string
	resource string
	ip       string
}

// listModelEvent is an event recorded through the library; storedIP is the
// canonical address the README says Record stores for ip.
type listModelEvent struct {
	action   Action
	userID   int64
	ip       string
	storedIP string
	resource string
}

// newListModelFixture builds the table: TREK's rows with times from
// April to July 2026 (some in the same second), events recorded through
// Record, TREK's rows with its CURRENT_TIMESTAMP default among them, and
// the model of each.
func newListModelFixture(tb testing.TB) *listModelFixture {
	tb.Helper()
	cfg := testConfig(tb)
	db := createTrekDB(tb, cfg.DBPath, map[int64]string{1: "alice", 2: "bob", 3: "carol"})
	var want []listModelRow // in insertion order, ids and times read back
	var explicit []string   // the created_at written, "" for the default

	trekRows := func(rows ...listModelTrekRow) {
		lr := make([]listRow, len(rows))
		for i, r := range rows {
			lr[i] = listRow{action: r.action}
			if r.at != "" {
				lr[i].createdAt = r.at
			}
			if r.userID != 0 {
				lr[i].userID = r.userID
			}
			if r.resource != "" {
				lr[i].resource = r.resource
			}
			if r.ip != "" {
				lr[i].ip = r.ip
			}
			want = append(want, listModelRow{action: r.action, userID: r.userID, ip: r.ip, resource: r.resource, trek: true})
			explicit = append(explicit, r.at)
		}
		insertListRows(tb, db, lr...)
	}
	trekRows(
		listModelTrekRow{"2026-04-01 08:00:00", 1, "user.login", "", "::ffff:203.0.113.9"},
		listModelTrekRow{"2026-04-01 08:00:00", 0, "user.login_failed", "", "::ffff:198.51.100.7"},
		listModelTrekRow{"2026-04-01 08:00:00", 0, "user.login_failed", "", "::ffff:198.51.100.7"},
		listModelTrekRow{"2026-04-02 10:00:00", 2, "admin.user_update", "user:3", "2001:db8::1"},
		listModelTrekRow{"2026-04-03 11:00:00", 2, "admin.oauth_session.revoke", "", "203.0.113.20"},
		listModelTrekRow{"2026-04-05 08:00:00", 3, "oauth.token.issue", "client:7", "::ffff:198.51.100.7"},
		listModelTrekRow{"2026-04-05 08:00:01", 3, "oauth.token.refresh", "client:7", "::ffff:198.51.100.7"},
		listModelTrekRow{"2026-04-05 08:00:01", 3, "oauth.token.refresh", "client:7", "::1"},
		listModelTrekRow{"2026-04-08 14:00:00", 1, "trip.create", "trip:12", "::ffff:203.0.113.9"},
		listModelTrekRow{"2026-04-09 15:00:00", 2, "admin.new_thing", "", "::ffff:203.0.113.20"}, // a newer TREK's key
		listModelTrekRow{"2026-04-10 16:00:00", 2, "admin_tools.reset", "", ""},
		listModelTrekRow{"2026-04-10 16:00:00", 1, "photo.upload", "photo:9", "2001:db8::1"},
		listModelTrekRow{"2026-04-12 19:00:00", 0, "mcp.tool_call", "get_trip", "::ffff:127.0.0.1"},
		listModelTrekRow{"2026-06-30 23:59:59", 1, "settings.app_update", "", "::ffff:203.0.113.9"},
		listModelTrekRow{"2026-07-01 00:00:00", 2, "backup.create", "backup-1.zip", "::ffff:203.0.113.20"},
	)

	a := openAuditor(tb, cfg)
	infos := map[Action]ActionInfo{}
	for _, info := range Catalogue() {
		infos[info.Action] = info
	}
	record := func(events ...listModelEvent) {
		for _, e := range events {
			ev := validEvent(infos[e.action])
			ev.Actor, ev.IP, ev.Resource = Actor{UserID: e.userID}, e.ip, e.resource
			require.NoError(tb, a.Record(tb.Context(), ev), "%s", e.action)
			want = append(want, listModelRow{action: string(e.action), userID: e.userID, ip: e.storedIP, resource: e.resource})
			explicit = append(explicit, "")
		}
	}
	start := time.Now().UTC().Truncate(time.Second)
	firstRecorded := len(want)
	record(
		listModelEvent{UserLogin, 1, "::ffff:203.0.113.9", "203.0.113.9", ""},
		listModelEvent{UserLoginFailed, 0, "::FFFF:198.51.100.7", "198.51.100.7", ""},
		listModelEvent{UserLoginFailed, 0, "198.51.100.7", "198.51.100.7", ""},
		listModelEvent{TripCreate, 1, "203.0.113.9", "203.0.113.9", "trip:12"},
		listModelEvent{TripUpdate, 1, "2001:DB8:0:0:0:0:0:1", "2001:db8::1", "trip:12"},
		listModelEvent{TripDelete, 2, "2001:db8::2", "2001:db8::2", "trip:13"},
		listModelEvent{AdminUserUpdate, 2, "203.0.113.20", "203.0.113.20", "user:3"},
		listModelEvent{AdminOAuthSessionRevoke, 2, "::ffff:203.0.113.20", "203.0.113.20", ""},
		listModelEvent{SettingsAppUpdate, 2, "203.0.113.20", "203.0.113.20", ""},
		listModelEvent{OAuthClientCreate, 3, "fe80::1%eth0", "fe80::1", "client:7"},
		listModelEvent{OAuthTokenIssue, 3, "fe80::1", "fe80::1", "client:7"},
		listModelEvent{OAuthTokenRefresh, 3, "", "", "client:7"},
		listModelEvent{MCPToolCall, 1, "127.0.0.1", "127.0.0.1", "get_trip"},
		listModelEvent{BackupCreate, 2, "", "", "backup-1.zip"},
		listModelEvent{UserMFAEnable, 3, "2001:db8::2", "2001:db8::2", ""},
		listModelEvent{ImmichPrivateIPConfigured, 1, "::1", "::1", ""},
	)
	trekRows(
		listModelTrekRow{"", 1, "user.login", "", "::ffff:203.0.113.9"},
		listModelTrekRow{"", 0, "user.login_failed", "", "::ffff:198.51.100.7"},
		listModelTrekRow{"", 3, "oauth.token.refresh", "client:7", "::ffff:198.51.100.7"},
		listModelTrekRow{"", 0, "photo.upload", "photo:9", "2001:db8::1"},
		listModelTrekRow{"", 2, "admin.new_thing", "", "::1"},
	)
	record(
		listModelEvent{UserLogin, 2, "203.0.113.20", "203.0.113.20", ""},
		listModelEvent{UserLogin, 3, "2001:db8::1", "2001:db8::1", ""},
		listModelEvent{TripCopy, 1, "::ffff:203.0.113.9", "203.0.113.9", "trip:14"},
		listModelEvent{AdminUserDelete, 2, "203.0.113.20", "203.0.113.20", "user:4"},
		listModelEvent{OAuthTokenRevoke, 3, "198.51.100.7", "198.51.100.7", "client:7"},
		listModelEvent{BackupDelete, 0, "", "", "backup-1.zip"},
		listModelEvent{UserPasswordChange, 1, "203.0.113.9", "203.0.113.9", ""},
		listModelEvent{OAuthConsentGrant, 1, "2001:db8::1", "2001:db8::1", "client:7"},
	)
	lastRecorded := len(want) - 1
	trekRows(
		listModelTrekRow{"", 0, "user.login_failed", "", "::ffff:203.0.113.9"},
		listModelTrekRow{"", 1, "trip.delete", "trip:14", "::ffff:203.0.113.9"},
		listModelTrekRow{"", 3, "mcp.tool_call", "get_trip", ""},
	)
	end := time.Now().UTC()

	// Ids and times as stored; every other field must be what was written.
	stored := readRows(tb, db)
	require.Len(tb, stored, len(want))
	fx := &listModelFixture{a: a, byID: map[int64]listModelRow{}}
	seen := map[time.Time]bool{}
	for i, s := range stored {
		m := want[i]
		require.Equal(tb, m.action, s.Action, "row %d", s.ID)
		require.Equal(tb, m.userID, s.UserID.Int64, "row %d", s.ID)
		require.Equal(tb, m.ip, s.IP.String, "row %d", s.ID)
		require.Equal(tb, m.resource, s.Resource.String, "row %d", s.ID)
		at, err := time.Parse(sqliteTimeLayout, s.CreatedAt)
		require.NoError(tb, err, "row %d: created_at %q is not in TREK's form", s.ID, s.CreatedAt)
		if explicit[i] != "" {
			require.Equal(tb, explicit[i], s.CreatedAt, "row %d", s.ID)
		} else {
			require.False(tb, at.Before(start) || at.After(end), "row %d: created_at %s outside [%s, %s]", s.ID, at, start, end)
		}
		if i > 0 {
			require.False(tb, at.Before(fx.rows[i-1].at), "row %d: created_at goes down as ids go up", s.ID)
		}
		m.id, m.at = s.ID, at
		fx.rows = append(fx.rows, m)
		fx.byID[m.id] = m
		if !seen[at] {
			seen[at] = true
			fx.instants = append(fx.instants, at)
		}
	}
	fx.recorded = []time.Time{fx.rows[firstRecorded].at, fx.rows[lastRecorded].at}
	return fx
}

// listModelActionKind is what the README makes of an action filter.
type listModelActionKind int

const (
	listModelKey listModelActionKind = iota
	listModelPrefix
	listModelCategory
	listModelRefused // neither a key, a prefix ending in '.' nor a category
)

// listModelAction is an action filter and what the README makes of it.
type listModelAction struct {
	v    string
	kind listModelActionKind
}

// listModelActions are the action filters the fuzzer picks from.
var listModelActions = []listModelAction{
	{"user.login", listModelKey}, {"user.login_failed", listModelKey}, {"trip.create", listModelKey},
	{"oauth.token.refresh", listModelKey}, {"admin.new_thing", listModelKey}, {"photo.upload", listModelKey},
	{"admin.user_delete", listModelKey}, {"user.register", listModelKey}, {"mcp.tool_call", listModelKey},
	{"admin.", listModelPrefix}, {"trip.", listModelPrefix}, {"oauth.token.", listModelPrefix}, {"user.", listModelPrefix},
	{"backup.", listModelPrefix}, {"admin.oauth_session.", listModelPrefix}, {"integrations.", listModelPrefix},
	{"immich.", listModelPrefix}, {"admin_tools.", listModelPrefix},
	{"OAuth", listModelCategory}, {"oauth", listModelCategory}, {"tRIPS", listModelCategory}, {"ADMIN ACTIONS", listModelCategory},
	{"authentication", listModelCategory}, {"mfa", listModelCategory}, {"Backups", listModelCategory},
	{"integrations", listModelCategory}, {"MCP", listModelCategory}, {"oAuTh", listModelCategory},
	{"Admin.", listModelRefused}, {"User.Login", listModelRefused}, {"trip", listModelRefused}, {"no such category", listModelRefused},
	{"admin", listModelRefused}, {".", listModelRefused}, {"user.login ", listModelRefused}, {"Admin actions.", listModelRefused}, {"%", listModelRefused},
}

var listModelUsers = []int64{1, 2, 3, 4, -1}

// listModelIPs are the stored addresses and other spellings of them.
var listModelIPs = []string{
	"203.0.113.9", "::ffff:203.0.113.9", "::FFFF:203.0.113.9", "::ffff:cb00:7109", "203.000.113.009",
	"198.51.100.7", "::ffff:198.51.100.7", "203.0.113.20", "::ffff:203.0.113.20",
	"2001:db8::1", "2001:DB8::1", "2001:0db8:0000::0001", "2001:db8::2", "fe80::1", "fe80::1%eth0",
	"::1", "0:0:0:0:0:0:0:1", "127.0.0.1", "::ffff:127.0.0.1", "::ffff:7f00:1",
	"::203.0.113.9", "203.0.113.99", "unknown",
}

var listModelResources = []string{
	"user:3", "client:7", "trip:12", "trip:13", "trip:14", "photo:9", "get_trip", "backup-1.zip", "user:4",
	"Client:7", "client:7 ", "nothing",
}

var listModelDeltas = []time.Duration{0, -time.Second, time.Second, -time.Second / 2, time.Second / 2,
	time.Hour, -24 * time.Hour, time.Nanosecond}

var listModelZones = []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -(7*3600 + 1800)),
	time.FixedZone("", 14*3600), time.FixedZone("", -12*3600)}

// listModelEdges are bounds at the ends of the years the list takes, on
// both sides.
var listModelEdges = []time.Time{
	time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -3600)), // 10000 in UTC
	time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
	time.Date(1, 1, 1, 0, 30, 0, 0, time.FixedZone("", 3600)), // year 0 in UTC
	time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC),
	time.Date(2026, 4, 5, 10, 0, 1, 0, time.FixedZone("", 2*3600)), // a stored second, elsewhere
}

// instant picks a bound: a stored created_at moved by a delta and shown in
// a zone, or one of the edges.
func (fx *listModelFixture) instant(a, b byte) time.Time {
	if a >= 0xf0 {
		return listModelEdges[int(b)%len(listModelEdges)]
	}
	base := fx.instants[int(a)%len(fx.instants)]
	return base.Add(listModelDeltas[int(b)%len(listModelDeltas)]).In(listModelZones[int(b>>3)%len(listModelZones)])
}

var listModelOffsets = []int{0, 1, 2, 3, 5, 8, 13, 40, 47, 48, 1 << 40, -3}

// decodeListQuery reads in as a small program: a byte of flags (which
// filters are set), the limit, then one or two bytes for each filter
// set, each picking a value from the lists above; missing bytes read as 0.
func (fx *listModelFixture) decodeListQuery(in []byte) (q Query, offset int, hasOffset bool) {
	next := (&tamperBytes{in}).next // missing bytes read as 0
	flags := next()
	q.Limit = 1 + int(next())%7
	if flags&1 != 0 {
		q.Action = listModelActions[int(next())%len(listModelActions)].v
	}
	if flags&2 != 0 {
		q.UserID = listModelUsers[int(next())%len(listModelUsers)]
	}
	if flags&4 != 0 {
		q.IP = listModelIPs[int(next())%len(listModelIPs)]
	}
	if flags&8 != 0 {
		q.Resource = listModelResources[int(next())%len(listModelResources)]
	}
	if flags&16 != 0 {
		q.Since = fx.instant(next(), next())
	}
	if flags&32 != 0 {
		q.Until = fx.instant(next(), next())
	}
	if flags&64 != 0 {
		offset, hasOffset = listModelOffsets[int(next())%len(listModelOffsets)], true
	}
	return q, offset, hasOffset
}

// listModelIPMatches is the README's ip filter: an address in any spelling
// finds the rows holding it as typed, in canonical form, and for IPv4 as
// Node maps it; other text only as typed.
func listModelIPMatches(filter, stored string) bool {
	if stored == "" {
		return false
	}
	if stored == filter {
		return true
	}
	addr, err := netip.ParseAddr(filter)
	if err != nil {
		return false
	}
	canon := addr.Unmap().WithZone("")
	return stored == canon.String() || canon.Is4() && stored == "::ffff:"+canon.String()
}

// listModelBad reports whether the README and list.go say q must be
// refused.
func listModelBad(q Query) bool {
	if q.Action != "" {
		i := slices.IndexFunc(listModelActions, func(a listModelAction) bool { return a.v == q.Action })
		if i < 0 || listModelActions[i].kind == listModelRefused {
			return true
		}
	}
	outside := func(t time.Time) bool {
		y := t.UTC().Year()
		return !t.IsZero() && (y < 1 || y > 9999)
	}
	return q.UserID < 0 || outside(q.Since) || outside(q.Until) ||
		!q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until)
}

// match returns the ids of the rows q matches, newest first: by created_at,
// then by id.
func (fx *listModelFixture) match(q Query) []int64 {
	kind := listModelKey
	for _, a := range listModelActions {
		if a.v == q.Action {
			kind = a.kind
		}
	}
	category := map[string]bool{}
	if kind == listModelCategory {
		for _, info := range Catalogue() {
			if strings.EqualFold(info.Category, q.Action) {
				category[string(info.Action)] = true
			}
		}
	}
	var hit []listModelRow
	for _, r := range fx.rows {
		switch {
		case q.Action != "" && kind == listModelKey && r.action != q.Action,
			q.Action != "" && kind == listModelPrefix && !strings.HasPrefix(r.action, q.Action),
			q.Action != "" && kind == listModelCategory && !category[r.action],
			q.UserID != 0 && r.userID != q.UserID,
			q.IP != "" && !listModelIPMatches(q.IP, r.ip),
			q.Resource != "" && r.resource != q.Resource,
			!q.Since.IsZero() && r.at.Before(q.Since),
			!q.Until.IsZero() && !r.at.Before(q.Until):
			continue
		}
		hit = append(hit, r)
	}
	slices.SortFunc(hit, func(x, y listModelRow) int {
		if c := y.at.Compare(x.at); c != 0 {
			return c
		}
		return int(y.id - x.id)
	})
	ids := []int64{}
	for _, r := range hit {
		ids = append(ids, r.id)
	}
	return ids
}

// checkListModel runs q (its Offset aside) through the list and checks
// properties 1 to 5 against the model; offset, when given, is also read as
// one page on its own and set on every page of the cursor walk, where the
// list ignores it.
func checkListModel(t *testing.T, fx *listModelFixture, q Query, offset int, hasOffset bool) {
	t.Helper()
	q.Offset, q.Cursor = 0, ""
	first, err := fx.a.List(t.Context(), q)
	if listModelBad(q) {
		assert.ErrorIs(t, err, ErrBadQuery, "%+v must be refused", q)
		return
	}
	require.NoError(t, err, "%+v", q)
	want := fx.match(q)
	n, limit := len(want), q.Limit
	desc := fmt.Sprintf("query %+v, model %v", q, want)

	// 1. The first page.
	assert.Equal(t, want[:min(limit, n)], entryIDs(first.Entries), "first page: %s", desc)
	assert.EqualValues(t, n, first.Total, "total: %s", desc)
	assert.Equal(t, limit, first.Limit, desc)
	assert.Equal(t, n > limit, first.NextCursor != nil, "next_cursor on the first page: %s", desc)
	fx.assertEntries(t, first.Entries)

	// 2. Every page by cursor.
	walked := []int64{}
	page, pages := first, 1
	for {
		walked = append(walked, entryIDs(page.Entries)...)
		assert.EqualValues(t, n, page.Total, "total on page %d: %s", pages, desc)
		if page.NextCursor == nil {
			break
		}
		assert.Len(t, page.Entries, limit, "a page with a next cursor is full: %s", desc)
		if !assert.LessOrEqual(t, pages, n, "the walk does not end: %s", desc) {
			break
		}
		cq := q
		cq.Cursor, cq.Offset = *page.NextCursor, offset
		page, err = fx.a.List(t.Context(), cq)
		require.NoError(t, err, "cursor %s: %s", cq.Cursor, desc)
		assert.NotEmpty(t, page.Entries, "a next cursor leads to a page with entries: %s", desc)
		assert.Equal(t, 0, page.Offset, "offset is ignored with a cursor: %s", desc)
		fx.assertEntries(t, page.Entries)
		pages++
	}
	assert.Equal(t, want, walked, "cursor walk: %s", desc)

	// 3. Every page by offset, and one past the end.
	byOffset := []int64{}
	for off := 0; ; off += limit {
		oq := q
		oq.Offset = off
		page, err := fx.a.List(t.Context(), oq)
		require.NoError(t, err, "offset %d: %s", off, desc)
		assert.EqualValues(t, n, page.Total, "total at offset %d: %s", off, desc)
		assert.Equal(t, off+limit < n, page.NextCursor != nil, "next_cursor at offset %d: %s", off, desc)
		fx.assertEntries(t, page.Entries)
		if off >= n {
			assert.Empty(t, page.Entries, "offset %d past the end: %s", off, desc)
			break
		}
		byOffset = append(byOffset, entryIDs(page.Entries)...)
	}
	assert.Equal(t, want, byOffset, "offset walk: %s", desc)
	if hasOffset {
		oq := q
		oq.Offset = offset
		page, err := fx.a.List(t.Context(), oq)
		require.NoError(t, err, "offset %d: %s", offset, desc)
		from := min(max(offset, 0), n)
		assert.Equal(t, want[from:min(from+limit, n)], entryIDs(page.Entries), "offset %d: %s", offset, desc)
		assert.Equal(t, max(offset, 0), page.Offset, desc)
		assert.EqualValues(t, n, page.Total, "total at offset %d: %s", offset, desc)
		fx.assertEntries(t, page.Entries)
	}
}

// assertEntries checks property 4: each entry shows its row as stored.
func (fx *listModelFixture) assertEntries(t *testing.T, entries []Entry) {
	t.Helper()
	for _, e := range entries {
		r, ok := fx.byID[e.ID]
		if !assert.True(t, ok, "entry %d is no row of the table", e.ID) {
			continue
		}
		assert.Equal(t, r.action, string(e.Action), "entry %d: action", e.ID)
		assert.Equal(t, r.at.UTC().Format("2006-01-02T15:04:05Z"), e.CreatedAt, "entry %d: created_at", e.ID)
		assert.Equal(t, listModelOptional(r.userID != 0, r.userID), e.UserID, "entry %d: user_id", e.ID)
		assert.Equal(t, listModelOptional(r.ip != "", r.ip), e.IP, "entry %d: ip", e.ID)
		assert.Equal(t, listModelOptional(r.resource != "", r.resource), e.Resource, "entry %d: resource", e.ID)
	}
}

func listModelOptional[T any](set bool, v T) *T {
	if !set {
		return nil
	}
	return &v
}

func FuzzListModel(f *testing.F) {
	seeds := [][]byte{
		{0, 0},               // no filter, limit 1
		{0, 6},               // no filter, limit 7
		{1, 2, 9},            // prefix admin.
		{1, 3, 20},           // category tRIPS
		{1, 4, 28},           // Admin.: refused
		{2, 1, 2},            // user 3
		{2, 0, 4},            // user -1: refused
		{4, 2, 1},            // ::ffff:203.0.113.9
		{4, 2, 0},            // 203.0.113.9
		{4, 1, 11},           // 2001:0db8:0000::0001
		{4, 1, 4},            // zero-padded: text
		{8, 3, 1},            // client:7
		{16, 2, 5, 0},        // since a stored second
		{32, 2, 5, 0},        // until a stored second
		{48, 1, 3, 8, 9, 17}, // since and until in other zones
		{48, 1, 5, 0, 5, 0},  // since == until: refused
		{16, 1, 0xf0, 1},     // since in the year 10000 in UTC
		{32, 1, 0xf0, 4},     // until in the year 0 in UTC
		{64, 2, 3},           // offset 3
		{64, 4, 10},          // offset 2^40
		{0x7f, 6, 19, 2, 0, 1, 1, 0, 0xf0, 0, 5},
		{21, 3, 1, 5, 20, 2}, // user.login_failed from 198.51.100.7 since
		{13, 0, 18, 6, 1},    // OAuth from ::ffff:198.51.100.7 on client:7
	}
	for _, s := range seeds {
		f.Add(s)
	}
	fx := newListModelFixture(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		q, offset, hasOffset := fx.decodeListQuery(in)
		checkListModel(t, fx, q, offset, hasOffset)
	})
}

// TestListModelCases runs hand-picked queries through the same check, and
// checks that the model itself finds what each case is about.
func TestListModelCases(t *testing.T) {
	fx := newListModelFixture(t)
	at := func(s string) time.Time { return mustTime(s) }
	cases := []struct {
		name string
		q    func() Query
		none bool // the model must find nothing
		both bool // the model must find rows of TREK's and of the library's
	}{
		{name: "no filters", q: func() Query { return Query{Limit: 7} }, both: true},
		{name: "action key", q: func() Query { return Query{Action: "user.login", Limit: 2} }, both: true},
		{name: "action key outside the catalogue", q: func() Query { return Query{Action: "admin.new_thing", Limit: 1} }},
		{name: "prefix admin. takes no admin_tools.", q: func() Query { return Query{Action: "admin.", Limit: 3} }, both: true},
		{name: "prefix trip.", q: func() Query { return Query{Action: "trip.", Limit: 2} }, both: true},
		{name: "category in odd case", q: func() Query { return Query{Action: "oAuTh", Limit: 4} }, both: true},
		{name: "category Admin actions in capitals", q: func() Query { return Query{Action: "ADMIN ACTIONS", Limit: 5} }, both: true},
		{name: "user alone", q: func() Query { return Query{UserID: 3, Limit: 3} }, both: true},
		{name: "user with no rows", q: func() Query { return Query{UserID: 4, Limit: 3} }, none: true},
		{name: "ip in TREK's ::ffff: spelling finds both", q: func() Query { return Query{IP: "::ffff:203.0.113.9", Limit: 2} }, both: true},
		{name: "ip canonical finds both", q: func() Query { return Query{IP: "203.0.113.9", Limit: 3} }, both: true},
		{name: "ip in upper-case ::FFFF: finds both", q: func() Query { return Query{IP: "::FFFF:198.51.100.7", Limit: 4} }, both: true},
		{name: "ip IPv6 in capitals and written out", q: func() Query { return Query{IP: "2001:0DB8:0:0:0:0:0:1", Limit: 2} }, both: true},
		{name: "ip zero-padded is other text", q: func() Query { return Query{IP: "203.000.113.009", Limit: 2} }, none: true},
		{name: "resource alone", q: func() Query { return Query{Resource: "client:7", Limit: 3} }, both: true},
		{name: "since a stored second is inclusive", q: func() Query { return Query{Since: at("2026-04-05T08:00:01Z"), Limit: 5} }, both: true},
		{name: "until a stored second is exclusive", q: func() Query { return Query{Until: at("2026-04-05T08:00:01Z"), Limit: 2} }},
		{name: "since half a second past a stored second leaves it out", q: func() Query { return Query{Since: at("2026-04-05T08:00:01.5Z"), Limit: 5} }},
		{name: "until half a second past a stored second takes it in", q: func() Query { return Query{Until: at("2026-04-05T08:00:01.5Z"), Limit: 2} }},
		{name: "since the first recorded second", q: func() Query { return Query{Since: fx.recorded[0], Limit: 6} }, both: true},
		{name: "until the second after the last recorded event", q: func() Query {
			return Query{Until: fx.recorded[1].Add(time.Second), Limit: 6}
		}, both: true},
		{name: "since and until in other zones", q: func() Query {
			return Query{Since: at("2026-04-05T10:00:01+02:00"), Until: at("2026-04-10T08:30:00-07:30"), Limit: 1}
		}},
		{name: "category, ip and until combined", q: func() Query {
			return Query{Action: "OAuth", IP: "198.51.100.7", Until: fx.recorded[1].Add(time.Second), Limit: 2}
		}, both: true},
		{name: "prefix, user and since combined", q: func() Query {
			return Query{Action: "admin.", UserID: 2, Since: at("2026-04-03T11:00:00Z"), Limit: 2}
		}, both: true},
		{name: "user and resource matching nothing", q: func() Query { return Query{UserID: 2, Resource: "client:7", Limit: 1} }, none: true},
		{name: "prefix with no rows", q: func() Query { return Query{Action: "integrations.", Limit: 1} }, none: true},
		{name: "key with no rows", q: func() Query { return Query{Action: "user.register", Limit: 1} }, none: true},
		{name: "bad action", q: func() Query { return Query{Action: "Admin.", Limit: 1} }},
		{name: "negative user", q: func() Query { return Query{UserID: -1, Limit: 1} }},
		{name: "since equal to until", q: func() Query {
			return Query{Since: at("2026-04-05T08:00:01Z"), Until: at("2026-04-05T10:00:01+02:00"), Limit: 1}
		}},
		{name: "since after until", q: func() Query {
			return Query{Since: at("2026-04-06T00:00:00Z"), Until: at("2026-04-05T00:00:00Z"), Limit: 1}
		}},
		{name: "since in the year 10000 in UTC", q: func() Query { return Query{Since: at("9999-12-31T23:30:00-01:00"), Limit: 1} }},
		{name: "until in the year 0 in UTC", q: func() Query { return Query{Until: at("0001-01-01T00:30:00+01:00"), Limit: 1} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.q()
			if !listModelBad(q) {
				ids := fx.match(q)
				assert.Equal(t, c.none, len(ids) == 0, "the model finds %v", ids)
				if c.both {
					kinds := map[bool]bool{}
					for _, id := range ids {
						kinds[fx.byID[id].trek] = true
					}
					assert.Len(t, kinds, 2, "the model finds rows of TREK's and of the library's: %v", ids)
				}
			}
			checkListModel(t, fx, q, 0, false)
		})
	}
}
