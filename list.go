package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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

// ErrBadQuery: a filter or cursor of a Query is not usable. The message
// names the field; AdminHandler answers it with 400.
var ErrBadQuery = errors.New("audit: invalid query")

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
	UserID   int64     // 0: any user
	IP       string    // exact client IP
	Resource string    // exact resource
	Since    time.Time // zero: no lower bound; inclusive
	Until    time.Time // zero: no upper bound; exclusive
}

// Page is one page of the admin list, in the JSON TREK's panel reads.
type Page struct {
	Entries []Entry `json:"entries"`
	Total   int64   `json:"total"` // rows the filters match, all pages together
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
	// Details is the stored JSON object, null when none, and
	// {"_parse_error":true} when the stored text is not JSON.
	Details json.RawMessage `json:"details"`
	IP      *string         `json:"ip"`
}

var parseErrorDetails = json.RawMessage(`{"_parse_error":true}`)

// List returns one page of audit entries, newest first. Rows under keys
// outside the catalogue (written by a newer TREK) are listed like any other.
func (a *Auditor) List(ctx context.Context, q Query) (Page, error) {
	q = q.normalised()
	return a.store.list(ctx, q)
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
	return q
}

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

// buildFilter turns the query's filters into SQL, checking each.
func buildFilter(q Query, actions actionSet) (filter, error) {
	var f filter
	if q.Action != "" {
		a := q.Action
		switch {
		case strings.HasSuffix(a, "."):
			if err := validActionKey(Action(strings.TrimSuffix(a, "."))); err != nil {
				return f, fmt.Errorf("%w: action prefix %q is not a key prefix", ErrBadQuery, a)
			}
			// A range on the index rather than LIKE, whose wildcards
			// ('_' is one) would match more than the prefix.
			f.add("a.action >= ? AND a.action < ?", a, a[:len(a)-1]+"/") // '/' follows '.'
		case strings.Contains(a, "."):
			if err := validActionKey(Action(a)); err != nil {
				return f, fmt.Errorf("%w: action %q is not an action key", ErrBadQuery, a)
			}
			f.add("a.action = ?", a)
		default:
			keys := actions.inCategory(a)
			if len(keys) == 0 {
				return f, fmt.Errorf("%w: action %q is neither a key, a prefix ending in '.', nor a category", ErrBadQuery, a)
			}
			f.add("a.action IN (?"+strings.Repeat(",?", len(keys)-1)+")", keys...)
		}
	}
	if q.UserID < 0 {
		return f, fmt.Errorf("%w: user_id %d is negative", ErrBadQuery, q.UserID)
	}
	if q.UserID > 0 {
		f.add("a.user_id = ?", q.UserID)
	}
	if q.IP != "" {
		f.add("a.ip = ?", q.IP)
	}
	if q.Resource != "" {
		f.add("a.resource = ?", q.Resource)
	}
	if !q.Since.IsZero() {
		f.add("a.created_at >= ?", q.Since.UTC().Format(sqliteTimeLayout))
	}
	if !q.Until.IsZero() {
		f.add("a.created_at < ?", q.Until.UTC().Format(sqliteTimeLayout))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return f, fmt.Errorf("%w: since must be before until", ErrBadQuery)
	}
	return f, nil
}

// inCategory lists the keys under a catalogue heading, matched in any case.
func (s actionSet) inCategory(category string) []any {
	var keys []any
	for k, info := range s {
		if strings.EqualFold(info.Category, category) {
			keys = append(keys, string(k))
		}
	}
	return keys
}

func encodeCursor(id int64) string { return strconv.FormatInt(id, 10) }

func decodeCursor(c string) (int64, error) {
	id, err := strconv.ParseInt(c, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("%w: cursor %q is not one this list returned", ErrBadQuery, c)
	}
	return id, nil
}

func (s *sqliteStore) list(ctx context.Context, q Query) (Page, error) {
	page := Page{Entries: []Entry{}, Limit: q.Limit, Offset: q.Offset}
	f, err := buildFilter(q, s.actions)
	if err != nil {
		return page, err
	}
	if len(f.where) == 0 {
		err = s.db.QueryRowContext(ctx, `SELECT n FROM audit_log_count WHERE id = 1`).Scan(&page.Total)
	} else {
		err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log a`+f.sql(), f.args...).Scan(&page.Total)
	}
	if err != nil {
		return page, fmt.Errorf("%w: counting: %w", ErrStore, err)
	}
	if q.Cursor != "" {
		after, err := decodeCursor(q.Cursor)
		if err != nil {
			return page, err
		}
		f.add("a.id < ?", after)
	}
	var hasUsers bool
	if err := s.db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users')`).Scan(&hasUsers); err != nil {
		return page, fmt.Errorf("%w: %w", ErrStore, err)
	}
	cols := `a.id, CAST(a.created_at AS TEXT), a.user_id, a.actor_username, a.actor_email, a.action, a.resource, a.details, a.ip`
	from := ` FROM audit_log a`
	if hasUsers {
		cols = `a.id, CAST(a.created_at AS TEXT), a.user_id, COALESCE(u.username, a.actor_username), COALESCE(u.email, a.actor_email),
			a.action, a.resource, a.details, a.ip`
		from += ` LEFT JOIN users u ON u.id = a.user_id`
	}
	args := append(f.args, q.Limit+1, q.Offset)
	rows, err := s.db.QueryContext(ctx, `SELECT `+cols+from+f.sql()+` ORDER BY a.id DESC LIMIT ? OFFSET ?`, args...)
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

func scanEntry(rows *sql.Rows) (Entry, error) {
	var (
		e                        Entry
		created                  sql.NullString
		userID                   sql.NullInt64
		username, email, res, ip sql.NullString
		details                  sql.NullString
		action                   string
	)
	if err := rows.Scan(&e.ID, &created, &userID, &username, &email, &action, &res, &details, &ip); err != nil {
		return e, err
	}
	e.Action = Action(action)
	e.CreatedAt = isoTime(created.String)
	if userID.Valid {
		e.UserID = &userID.Int64
	}
	e.Username = nullable(username)
	e.UserEmail = nullable(email)
	e.Resource = nullable(res)
	e.IP = nullable(ip)
	if details.Valid {
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

// isoTime turns SQLite's "YYYY-MM-DD HH:MM:SS" (UTC) into ISO 8601 with a
// trailing Z. Text in another form is passed through as stored.
func isoTime(s string) string {
	if t, err := time.Parse(sqliteTimeLayout, s); err == nil {
		return t.Format("2006-01-02T15:04:05Z")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return s
}
