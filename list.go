package audit

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Paging limits of the admin list, as TREK's panel uses them.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 500
)

// ErrBadQuery means a filter or cursor of a Query is not usable. The message
// names the field; AdminHandler answers it with 400.
var ErrBadQuery = errors.New("audit: invalid query")

// queryError is an ErrBadQuery that knows the parameter at fault, so that
// AdminHandler names it without reading the message, which quotes what
// the client typed.
type queryError struct {
	param string
	msg   string
}

func (e *queryError) Error() string        { return ErrBadQuery.Error() + ": " + e.msg }
func (e *queryError) Is(target error) bool { return target == ErrBadQuery }

func badQuery(param, format string, args ...any) error {
	return &queryError{param: param, msg: fmt.Sprintf(format, args...)}
}

// Query selects one page of the admin list, newest first.
type Query struct {
	Limit  int // 0: 100; clamped to 1..500
	Offset int // negative: 0; ignored when Cursor is set
	// Cursor continues after the last entry of an earlier page
	// (Page.NextCursor). Unlike Offset it never repeats or skips an entry
	// when events arrive between two pages.
	Cursor string
	// Action filters by an exact key ("user.login_failed"), a key prefix
	// ending in '.' ("admin.") or a catalogue category ("OAuth", any case).
	Action   string
	UserID   int64  // 0: any user
	IP       string // exact client IP
	Resource string // exact resource
	// Since and Until bound created_at as TREK and the library write it
	// (UTC, "2006-01-02 15:04:05"), compared as text so that its index
	// serves them. A row written by hand in another form ("…T07:00:00Z",
	// an offset) is listed at its time but filtered by its text.
	Since time.Time // zero: no lower bound; inclusive
	Until time.Time // zero: no upper bound; exclusive
	// SkipTotal leaves Page.Total uncounted, as -1. Counting what a filter
	// matches reads every matching row, so a caller that reads all the
	// pages by cursor and counted on each would read the filter's rows
	// once a page: trek-audit's list --all sets it after the first page,
	// and its export and tail, which show no total, on every page. The
	// admin API never sets it: its total is always counted.
	SkipTotal bool
}

// Page is one page of the admin list, in the JSON TREK's panel reads.
type Page struct {
	Entries []Entry `json:"entries"`
	Total   int64   `json:"total"` // rows the filters match, all pages together; -1 with Query.SkipTotal
	Limit   int     `json:"limit"`
	Offset  int     `json:"offset"`
	// NextCursor continues after this page; null on the last page.
	NextCursor *string `json:"next_cursor"`
}

// Entry is one row of the admin list. Absent values are JSON null.
type Entry struct {
	ID        int64   `json:"id"`
	CreatedAt string  `json:"created_at"` // ISO 8601 UTC, e.g. 2026-04-20T08:11:53Z
	UserID    *int64  `json:"user_id"`
	Username  *string `json:"username"`   // from users, else the snapshot at record time
	UserEmail *string `json:"user_email"` // likewise
	Action    Action  `json:"action"`
	Resource  *string `json:"resource"`
	// Details is the stored JSON object, null when none,
	// {"_parse_error":true} when the stored text is not JSON, and
	// {"_truncated":true,"_original_size":n} when it is larger than the
	// 64 KiB the library stores (a row written by hand or by another tool).
	Details json.RawMessage `json:"details"`
	IP      *string         `json:"ip"`
}

var parseErrorDetails = json.RawMessage(`{"_parse_error":true}`)

// List returns one page of audit entries, newest first. Rows under keys
// outside the catalogue (written by a newer TREK) are listed like any other.
func (a *Auditor) List(ctx context.Context, q Query) (Page, error) {
	if err := a.closedFor("List"); err != nil {
		return Page{Entries: []Entry{}}, err
	}
	page, err := a.store.list(ctx, q.normalised())
	return page, safeError(a.whileClosing(err))
}

func (q Query) normalised() Query {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultPageLimit
	case q.Limit < 1:
		q.Limit = 1
	case q.Limit > MaxPageLimit:
		q.Limit = MaxPageLimit
	}
	if q.Offset < 0 || q.Cursor != "" {
		q.Offset = 0
	}
	// Past any table SQLite can hold, and far enough from the int range's
	// end that Offset+Limit+1 never wraps around to a negative LIMIT.
	q.Offset = min(q.Offset, maxOffset)
	return q
}

const maxOffset = min(1<<53, math.MaxInt-MaxPageLimit-1)

// filter is a WHERE clause built from fixed fragments; input only ever
// reaches SQL as bound arguments.
type filter struct {
	where []string
	args  []any
}

func (f *filter) add(clause string, args ...any) {
	f.where = append(f.where, clause)
	f.args = append(f.args, args...)
}

func (f *filter) sql() string {
	if len(f.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.where, " AND ")
}

// with returns f and one more clause, leaving f as it is.
func (f filter) with(clause string, args ...any) filter {
	f.where = append(f.where[:len(f.where):len(f.where)], clause)
	f.args = append(f.args[:len(f.args):len(f.args)], args...)
	return f
}

// actionMatch is Query.Action: one key, the keys of a category, or a key
// prefix (ending in '.'). At most one of them is set.
type actionMatch struct {
	key    string
	keys   []any
	prefix string
}

// clause is the match as one condition.
func (m actionMatch) clause() (string, []any) {
	switch {
	case m.key != "":
		return "a.action = ?", []any{m.key}
	case m.prefix != "":
		// A range on the index rather than LIKE, whose wildcards ('_' is
		// one) would match more than the prefix. '/' follows '.'.
		return "a.action >= ? AND a.action < ?", []any{m.prefix, m.prefix[:len(m.prefix)-1] + "/"}
	case len(m.keys) > 0:
		return "a.action IN (?" + strings.Repeat(",?", len(m.keys)-1) + ")", m.keys
	}
	return "", nil
}

// buildFilter turns the query's filters into SQL, checking each. The
// action filter and the spellings of the IP filter are returned apart from
// the others: a page over several keys or spellings is read one by one (see
// sqliteStore.list).
func buildFilter(q Query, actions actionSet) (f filter, m actionMatch, ips []any, err error) {
	if q.Action != "" {
		a := q.Action
		switch {
		case strings.HasSuffix(a, "."):
			if err := validActionKey(Action(strings.TrimSuffix(a, "."))); err != nil {
				return f, m, nil, badQuery("action", "action prefix %s is not a key prefix", quoted(a))
			}
			m.prefix = a
		case strings.Contains(a, "."):
			if err := validActionKey(Action(a)); err != nil {
				return f, m, nil, badQuery("action", "action %s is not an action key", quoted(a))
			}
			m.key = a
		default:
			m.keys = actions.inCategory(a)
			if len(m.keys) == 0 {
				return f, m, nil, badQuery("action", "action %s is neither a key, a prefix ending in '.', nor a category", quoted(a))
			}
		}
	}
	if q.UserID < 0 {
		return f, m, nil, badQuery("user_id", "user_id %d is negative", q.UserID)
	}
	if q.UserID > 0 {
		f.add("a.user_id = ?", q.UserID)
	}
	if q.IP != "" {
		// The library stores addresses in canonical form; TREK's own rows
		// hold what TREK's server wrote, which for an IPv4 client on its
		// dual-stack socket is ::ffff:203.0.113.9. An address is looked
		// for in every spelling either writes (canonical, as typed, and an
		// IPv4 address as Node maps it), so that filtering by the address
		// one row shows finds the client's rows of both; other text only
		// as typed.
		ips = []any{q.IP}
		if addr, err := netip.ParseAddr(q.IP); err == nil {
			canon := addr.Unmap().WithZone("")
			spellings := []string{canon.String()}
			if canon.Is4() {
				spellings = append(spellings, "::ffff:"+canon.String())
			}
			for _, s := range spellings {
				if s != q.IP {
					ips = append(ips, s)
				}
			}
		}
	}
	if q.Resource != "" {
		f.add("a.resource = ?", q.Resource)
	}
	tw := timeWindow(q)
	f.where, f.args = append(f.where, tw.where...), append(f.args, tw.args...)
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"since", q.Since}, {"until", q.Until}} {
		if !b.t.IsZero() && !inTimeRange(b.t) {
			return f, m, nil, badQuery(b.name, "%s %s is outside the years 1 to 9999", b.name, b.t.Format(time.RFC3339))
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return f, m, nil, badQuery("since", "since must be before until")
	}
	return f, m, ips, nil
}

// timeWindow is q's since and until as a filter of their own.
func timeWindow(q Query) filter {
	var w filter
	if !q.Since.IsZero() {
		w.add("a.created_at >= ?", boundText(q.Since))
	}
	if !q.Until.IsZero() {
		w.add("a.created_at < ?", boundText(q.Until))
	}
	return w
}

// boundText is since or until as created_at's text compares with it: in
// UTC, as TREK's CURRENT_TIMESTAMP writes it, with the fraction of a
// second if there is one (trailing zeros dropped). Cut to the second, a
// bound a fraction past it would take in or leave out the rows of that
// whole second: until 08:00:00.5 would leave out those stored at
// 08:00:00, which come before it, and since 08:00:00.5 take them in. With
// the fraction, text compares as time does, for whole seconds and for
// fractions stored in the same form ("2026-04-20 08:00:00.25").
func boundText(t time.Time) string {
	return t.UTC().Format(sqliteTimeLayout + ".999999999")
}

// inTimeRange reports whether t falls in the years 1 to 9999 in UTC, the
// years created_at's text can hold and compare in order.
func inTimeRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// inCategory lists the keys under a catalogue heading, matched in any case.
func (s actionSet) inCategory(category string) []any {
	var keys []string
	for k, info := range s {
		if strings.EqualFold(info.Category, category) {
			keys = append(keys, string(k))
		}
	}
	slices.Sort(keys) // the same SQL text for the same category
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

func encodeCursor(id int64) string { return strconv.FormatInt(id, 10) }

func decodeCursor(c string) (int64, error) {
	id, err := strconv.ParseInt(c, 10, 64)
	if err != nil || id < 1 {
		return 0, badQuery("cursor", "cursor %s is not one this list returned", quoted(c))
	}
	return id, nil
}

// maxMergedKeys bounds the keys a page is read from one by one.
const maxMergedKeys = 64

func (s *sqliteStore) list(ctx context.Context, q Query) (Page, error) {
	page := Page{Entries: []Entry{}, Limit: q.Limit, Offset: q.Offset}
	if s.listRefused != nil {
		return page, s.listRefused
	}
	// After a restore the pool's connections may still read the old file.
	if err := s.files.check(); err != nil {
		return page, fmt.Errorf("%w: %w", ErrStore, err)
	}
	// m: the action filter; ips: the IP filter's spellings; base: the
	// others; rest: all but the action filter.
	base, m, ips, err := buildFilter(q, s.actions)
	if err != nil {
		return page, err
	}
	rest := base
	if len(ips) > 0 {
		rest = base.with("a.ip IN (?"+strings.Repeat(",?", len(ips)-1)+")", ips...)
	}
	// One read transaction for the total and the page, so that both come
	// from the same snapshot while events keep arriving: the total is the
	// number of rows the page was cut from.
	db, err := s.db.Conn(ctx)
	if err != nil {
		return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
	}
	defer db.Close()
	// BEGIN written out, not db.BeginTx: a host's DSN may make BeginTx
	// take the write lock (_txlock=immediate), which a read must not.
	if _, err := db.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
	}
	defer endRead(db)
	var after int64
	if q.Cursor != "" {
		if after, err = decodeCursor(q.Cursor); err != nil {
			return page, err
		}
	}
	if !q.onlyTime() && (!q.Since.IsZero() || !q.Until.IsZero()) {
		// A time window beside another filter (an action, a user, an
		// address): SQLite reads that filter's rows off its index, every
		// one of them back to the table's first, and checks each one's
		// time, for the total and again for a page the window cannot fill:
		// 87 ms for a day of user.login on a million rows. Bounded by the
		// ids the window's rows lie between, it reads only those of its
		// rows that the window can hold.
		limit := cmp.Or(s.windowCap, boundedWindow)
		lo, hi, bounded, err := windowIDs(ctx, db, q, limit)
		if err != nil {
			return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
		}
		if s.bounded != nil {
			s.bounded(bounded)
		}
		if bounded {
			base = base.with("a.id BETWEEN ? AND ?", lo, hi)
			rest = rest.with("a.id BETWEEN ? AND ?", lo, hi)
		}
	}
	every := rest // every filter, the action too
	if c, args := m.clause(); c != "" {
		every = rest.with(c, args...)
	}
	window := every // a time filter's, when it is the only one
	switch c, args := m.clause(); {
	case q.SkipTotal:
		page.Total = -1
	case len(every.where) == 0:
		// COUNT(*) would read the whole table; the triggers keep this exact.
		err = db.QueryRowContext(ctx, rowCountQuery).Scan(&page.Total)
	case len(rest.where) == 0:
		// Only the action filter: the per-action counts, kept the same way.
		err = db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM audit_log_action_count a WHERE `+c,
			args...).Scan(&page.Total)
	default:
		err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log a`+every.sql(), every.args...).Scan(&page.Total)
	}
	if err != nil {
		return page, fmt.Errorf("%w: counting: %w", ErrStore, err)
	}
	if after > 0 {
		base = base.with("a.id < ?", after)
		rest = rest.with("a.id < ?", after)
		every = every.with("a.id < ?", after)
	}

	// Several keys (a category, a prefix) are read one by one: each key's
	// newest rows come off idx_audit_log_action_id already in id order,
	// and only those are merged. As one IN or range, SQLite would sort
	// every matching row of the table to find the newest hundred. So are
	// the several spellings of an address, each off idx_audit_log_ip_id:
	// a page is merged from one branch per key and spelling.
	keys := m.keys
	if m.key != "" {
		keys = []any{m.key}
	}
	if m.prefix != "" {
		if keys, err = keysWithPrefix(ctx, db, m.prefix); err != nil {
			return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
		}
		if len(keys) == 0 {
			return page, nil
		}
	}
	if len(keys) == 1 {
		every = rest.with("a.action = ?", keys[0])
	}
	var branches []filter
	if len(keys) <= maxMergedKeys && max(len(keys), 1)*max(len(ips), 1) > 1 {
		acts := []filter{base}
		if len(keys) > 0 {
			acts = acts[:0]
			for _, k := range keys {
				acts = append(acts, base.with("a.action = ?", k))
			}
		}
		for _, fa := range acts {
			if len(ips) == 0 {
				branches = append(branches, fa)
			}
			for _, ip := range ips {
				branches = append(branches, fa.with("a.ip = ?", ip))
			}
		}
	}
	var ids string // the ids of the page, as a subquery
	var idArgs []any
	if len(branches) > 0 {
		perBranch := make([]string, len(branches))
		for i, fb := range branches {
			perBranch[i] = `SELECT id FROM (SELECT a.id FROM audit_log a` + fb.sql() + ` ORDER BY a.id DESC LIMIT ?)`
			idArgs = append(append(idArgs, fb.args...), q.Offset+q.Limit+1)
		}
		ids = strings.Join(perBranch, " UNION ALL ")
	}

	var hasUsers bool
	if err := db.QueryRowContext(ctx, usersTableQuery).Scan(&hasUsers); err != nil {
		return page, fmt.Errorf("%w: %w", ErrStore, err)
	}
	// user_id as an integer or NULL: a value TREK's schema would not
	// hold (text written by hand) must not make the whole page fail.
	cols := entryColumns("a.actor_username", "a.actor_email")
	from, order := ` FROM audit_log a`, ` ORDER BY a.id DESC`
	if q.onlyTime() {
		// The plan needs the window's size only up to past smallWindow and
		// the page's end: uncounted, it is counted that far and no further.
		n, exact := page.Total, !q.SkipTotal
		if !exact {
			if n, err = countUpTo(ctx, db, window, int64(max(smallWindow, q.Offset+q.Limit))+1); err != nil {
				return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
			}
		}
		walk := n > smallWindow
		if walk {
			from += ` NOT INDEXED`
			if every, err = walkBounds(ctx, db, q, window, every, n, exact, after); err != nil {
				return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
			}
		} else {
			order = ` ORDER BY +a.id DESC`
		}
		if s.planned != nil {
			s.planned(walk)
		}
	}
	if hasUsers {
		cols = entryColumns("COALESCE(u.username, a.actor_username)", "COALESCE(u.email, a.actor_email)")
		from += ` LEFT JOIN users u ON u.id = a.user_id`
	}
	query, args := `SELECT `+cols+from+every.sql(), every.args
	if ids != "" {
		query, args = `SELECT `+cols+from+` WHERE a.id IN (`+ids+`)`, idArgs
	}
	args = append(args[:len(args):len(args)], q.Limit+1, q.Offset)
	rows, err := db.QueryContext(ctx, query+order+` LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return page, fmt.Errorf("%w: reading entry: %w", ErrStore, err)
		}
		page.Entries = append(page.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("%w: listing: %w", ErrStore, err)
	}
	if len(page.Entries) > q.Limit {
		page.Entries = page.Entries[:q.Limit]
		c := encodeCursor(page.Entries[q.Limit-1].ID)
		page.NextCursor = &c
	}
	return page, nil
}

// onlyTime reports whether q filters by since or until and by nothing else.
func (q Query) onlyTime() bool {
	return (!q.Since.IsZero() || !q.Until.IsZero()) && q.Action == "" && q.UserID == 0 && q.IP == "" && q.Resource == ""
}

// smallWindow is how many rows a page filtered by time alone may match and
// still be read by sorting them all: about a millisecond's work. A page is
// the newest matching rows by id, and SQLite, which keeps no statistics
// here, would read every window one way: walk the table down from the
// newest row, reading all the rows newer than the window and, when the
// window cannot fill the page, every older one too (56 ms on a million
// rows for since an hour ago, or until a day after the first row), or read
// the window off idx_audit_log_created and sort it whole (250 ms for a
// window over the whole table). So a small window is sorted (ORDER BY
// +a.id: no index gives that order, so SQLite reads the window off
// whatever index serves its range, or scans the table if none is left,
// never an error), and a larger one is walked (see walkBounds).
const smallWindow = 4096

// walkBounds returns every, the page's filter, with the ids a walk down the
// table needs to read bounded, where that saves more than it costs: below
// the largest id in window when the rows newer than it outnumber half its
// own (a walk reads every one of them first, where the bound is read off
// the index at about half the cost a row: 30 against 70 ns), and above the
// smallest when the window cannot fill the page (or the walk would read on
// to the table's first row). Both are exact: every row of the window lies
// between them, whatever its id. (MAX(+a.id), not MAX(a.id), which SQLite
// would find by the very walk down the table this is to spare.)
//
// total is the window's row count when exact, else a count stopped past
// smallWindow and the page's end (Query.SkipTotal), which tells the lower
// bound's case as well: the window holds at least that many. Compared
// with it, the rows newer than the window may seem to outnumber half of
// it when they do not; the upper bound then costs a read of the window,
// what counting it would have. A cursor whose own row lies in the window
// (as the one from the page before does) needs no upper bound: the walk
// starts below the cursor, which is at most the window's largest id.
func walkBounds(ctx context.Context, db *sql.Conn, q Query, window, every filter, total int64, exact bool, after int64) (filter, error) {
	cursorInWindow := false
	if after > 0 {
		w := window.with("a.id = ?", after)
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log a`+w.sql()+`)`, w.args...).Scan(&cursorInWindow); err != nil {
			return every, err
		}
	}
	if !q.Until.IsZero() && !cursorInWindow {
		var newer int64
		if q.Since.IsZero() && exact {
			// Until alone: the rest of the table is newer, or holds no
			// time to compare.
			var n int64
			if err := db.QueryRowContext(ctx, rowCountQuery).Scan(&n); err != nil {
				return every, err
			}
			newer = n - total
		} else {
			var err error // counted off the index, no further than needed
			newer, err = countUpTo(ctx, db, filter{where: []string{"a.created_at >= ?"},
				args: []any{boundText(q.Until)}}, total/2+1)
			if err != nil {
				return every, err
			}
		}
		if newer > total/2 {
			var hi int64
			if err := db.QueryRowContext(ctx, `SELECT MAX(+a.id) FROM audit_log a`+window.sql(), window.args...).Scan(&hi); err != nil {
				return every, err
			}
			every = every.with("a.id <= ?", hi)
		}
	}
	if total <= int64(q.Offset+q.Limit) {
		var lo int64
		if err := db.QueryRowContext(ctx, `SELECT MIN(+a.id) FROM audit_log a`+window.sql(), window.args...).Scan(&lo); err != nil {
			return every, err
		}
		every = every.with("a.id >= ?", lo)
	}
	return every, nil
}

// boundedWindow is how many rows a time window beside another filter may
// hold for windowIDs to bound the ids a page reads: read off the
// created_at index, at about 30 ns a row, twice, no more than 4 ms.
const boundedWindow = 1 << 16

// windowIDs returns the smallest and the largest id of the rows q's time
// window holds, read off the created_at index, where it holds at most
// limit, boundedWindow but in tests (bounded; an empty window gives lo >
// hi). Every row the
// window holds lies between them, whatever its id, so a filter that adds
// "a.id BETWEEN lo AND hi" matches the same rows.
//
// Whether to count the window at all is told first from the ids of its
// oldest and newest rows, two seeks of the index: ids follow time, so
// the rows between them are about as many as the window holds, and a
// window far wider than limit (a year of a busy instance) is not counted
// to no end. Where ids do not follow time (rows written by hand),
// that guess may be wrong, never the bounds.
func windowIDs(ctx context.Context, db *sql.Conn, q Query, limit int64) (lo, hi int64, bounded bool, err error) {
	w := timeWindow(q)
	var oldest, newest sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT +a.id FROM audit_log a`+w.sql()+` ORDER BY a.created_at LIMIT 1),
		(SELECT +a.id FROM audit_log a`+w.sql()+` ORDER BY a.created_at DESC LIMIT 1)`,
		append(w.args[:len(w.args):len(w.args)], w.args...)...).Scan(&oldest, &newest)
	if err != nil || oldest.Valid && newest.Valid && max(oldest.Int64, newest.Int64)-min(oldest.Int64, newest.Int64) > 2*limit {
		return 0, 0, false, err
	}
	n, err := countUpTo(ctx, db, w, limit+1)
	if err != nil || n > limit {
		return 0, 0, false, err
	}
	if n == 0 {
		return 1, 0, true, nil
	}
	err = db.QueryRowContext(ctx, `SELECT MIN(+a.id), MAX(+a.id) FROM audit_log a`+w.sql(), w.args...).Scan(&lo, &hi)
	return lo, hi, err == nil, err
}

// countUpTo counts the rows f matches, stopping at limit: as many as a
// plan needs to know, read no further.
func countUpTo(ctx context.Context, db *sql.Conn, f filter, limit int64) (int64, error) {
	var n int64
	args := append(f.args[:len(f.args):len(f.args)], limit)
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM audit_log a`+f.sql()+` LIMIT ?)`, args...).Scan(&n)
	return n, err
}

// keysWithPrefix returns the distinct keys under prefix that occur in
// audit_log, known or not, with one index seek per key rather than a scan
// of their rows.
func keysWithPrefix(ctx context.Context, db *sql.Conn, prefix string) ([]any, error) {
	end := prefix[:len(prefix)-1] + "/"
	found, err := queryStrings(ctx, db, `WITH RECURSIVE k(action) AS (
			SELECT (SELECT MIN(action) FROM audit_log WHERE action >= ?1 AND action < ?2)
			UNION ALL
			SELECT (SELECT MIN(action) FROM audit_log WHERE action > k.action AND action < ?2)
			FROM k WHERE k.action IS NOT NULL
		) SELECT action FROM k WHERE action IS NOT NULL LIMIT ?3`, prefix, end, maxMergedKeys+1)
	keys := make([]any, len(found))
	for i, k := range found {
		keys[i] = k
	}
	return keys, err
}

// The most of a stored value a listed entry carries. The library stores
// at most maxDetailsLen bytes of details and far less of any other column,
// and TREK's own server no more, but a row written by hand or by another
// tool can hold anything up to SQLite's gigabyte: read whole, a page of
// such rows would take the host's memory with it. Details past
// maxShownDetails are listed as {"_truncated":true,"_original_size":n},
// the markers of details the library cut when it stored them; any other
// text past maxShownText as its first shownTextPrefix characters and
// truncatedMark. Nothing larger is copied out of SQLite.
const (
	maxShownDetails = maxDetailsLen
	maxShownText    = 4 << 10
	shownTextPrefix = 1 << 10
)

// entryColumns is the select list scanEntry reads, with username and
// email from the expressions given: a.id, created_at as text, user_id
// where it is an integer (a value TREK's schema would not hold, text
// written by hand, must not make the whole page fail), the text columns
// bounded by shownText, details when it fits and its size in bytes.
func entryColumns(username, email string) string {
	return `a.id, ` + shownText(`CAST(a.created_at AS TEXT)`) +
		`, CASE WHEN typeof(a.user_id) = 'integer' THEN a.user_id END, ` +
		shownText(username) + `, ` + shownText(email) + `, ` + shownText(`a.action`) + `, ` + shownText(`a.resource`) +
		`, CASE WHEN octet_length(a.details) <= ` + strconv.Itoa(maxShownDetails) + ` THEN a.details END, octet_length(a.details), ` +
		shownText(`a.ip`)
}

// shownText is the SQL for the value of expr, cut to its first
// shownTextPrefix characters, and to maxShownText bytes, and marked when it
// is longer than maxShownText bytes. octet_length of a column reads the
// value's size from the row's header, without reading the value.
//
// The cut in bytes matters for invalid UTF-8 alone: SQLite counts a byte
// of 0xc0 or more and every continuation byte after it as one character,
// so a lead byte followed by a megabyte of continuation bytes is one
// character to substr, which would copy all of it out. Cut as a blob, the
// last character may lose bytes, which read as invalid UTF-8 and are
// replaced like any other (encoding/json writes U+FFFD for each).
func shownText(expr string) string {
	return `CASE WHEN octet_length(` + expr + `) <= ` + strconv.Itoa(maxShownText) + ` THEN ` + expr +
		` ELSE substr(CAST(substr(` + expr + `, 1, ` + strconv.Itoa(shownTextPrefix) + `) AS BLOB), 1, ` +
		strconv.Itoa(maxShownText) + `) || '` + truncatedMark + `' END`
}

func scanEntry(rows *sql.Rows) (Entry, error) {
	var (
		e                        Entry
		created                  sql.NullString
		userID                   sql.NullInt64
		username, email, res, ip sql.NullString
		details                  sql.NullString
		detailsSize              sql.NullInt64
		action                   sql.NullString // NOT NULL in TREK's table, not in one made by hand
	)
	if err := rows.Scan(&e.ID, &created, &userID, &username, &email, &action, &res, &details, &detailsSize, &ip); err != nil {
		return e, err
	}
	e.Action = Action(action.String)
	e.CreatedAt = isoTime(created.String)
	if userID.Valid {
		e.UserID = &userID.Int64
	}
	e.Username = nullable(username)
	e.UserEmail = nullable(email)
	e.Resource = nullable(res)
	e.IP = nullable(ip)
	switch {
	case !details.Valid && detailsSize.Valid:
		e.Details = fmt.Appendf(nil, `{"_truncated":true,"_original_size":%d}`, detailsSize.Int64)
	case details.Valid:
		if json.Valid([]byte(details.String)) && utf8.ValidString(details.String) {
			e.Details = json.RawMessage(details.String)
		} else {
			e.Details = parseErrorDetails
		}
	}
	return e, nil
}

func nullable(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

// isoTime turns a stored created_at into ISO 8601 UTC with a trailing Z.
// Besides SQLite's own "YYYY-MM-DD HH:MM:SS" it reads the other forms of a
// time a row written by hand or by another tool commonly holds, each of
// which SQLite's date functions read as the same instant: a fraction of a
// second, a T, no seconds, a date alone (all UTC, as SQLite takes them),
// or a zone. Anything else (a number, other text, spaces SQLite would
// skip) is passed through as stored, and NULL is empty: an odd row is
// shown as it is, not hidden or made up.
func isoTime(s string) string {
	if !sqliteTimeShape(s) {
		return s
	}
	for _, layout := range sqliteTimeForms {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return s
}

// sqliteTimeShape reports whether s is laid out as SQLite's time text is:
// YYYY-MM-DD, then optionally HH:MM, :SS, a fraction, a zone (Z or
// ±HH:MM), each field its exact number of digits. time.Parse alone takes
// one-digit hours, which SQLite does not read as a time.
func sqliteTimeShape(s string) bool {
	digits := func(i, n int) bool {
		if i+n > len(s) {
			return false
		}
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	if !digits(0, 4) || len(s) < 10 || s[4] != '-' || !digits(5, 2) || s[7] != '-' || !digits(8, 2) {
		return false
	}
	if len(s) == 10 {
		return true
	}
	if (s[10] != ' ' && s[10] != 'T') || !digits(11, 2) || len(s) < 16 || s[13] != ':' || !digits(14, 2) {
		return false
	}
	i := 16
	if i < len(s) && s[i] == ':' {
		if !digits(i+1, 2) {
			return false
		}
		i += 3
		if i < len(s) && s[i] == '.' {
			if !digits(i+1, 1) {
				return false
			}
			for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			}
		}
	}
	switch rest := s[i:]; {
	case rest == "" || rest == "Z":
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		return digits(i+1, 2) && digits(i+4, 2)
	}
	return false
}

// sqliteTimeForms are the text forms of a time SQLite reads, as layouts;
// time.Parse reads a time without a zone as UTC, as SQLite does.
var sqliteTimeForms = [...]string{
	"2006-01-02 15:04:05.999999999", // SQLite's own, with or without a fraction
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02 15:04Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02",
}
