package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/trek-go/audit"
)

// listFixture: sample events 0..24 (ids 1..25, recorded now) and TREK's
// own rows 26 and 27 (March 2025).
func listFixture(t *testing.T) *fixture {
	return newFixture(t, 25, trekRows...)
}

func pageIDs(p audit.Page) []int64 {
	ids := make([]int64, len(p.Entries))
	for i, e := range p.Entries {
		ids[i] = e.ID
	}
	return ids
}

func TestListFilters(t *testing.T) {
	f := listFixture(t)
	const n = 25
	every := idsWhere(n, func(int) bool { return true })
	cases := []struct {
		name string
		args []string
		want []int64
	}{
		{"no filter: every entry, newest first", nil, append([]int64{27, 26}, every...)},
		{"an action key", []string{"--action", "user.login"},
			append([]int64{27}, idsWhere(n, func(i int) bool { return i%5 == 0 })...)},
		{"an action prefix", []string{"--action", "admin."}, idsWhere(n, func(i int) bool { return i%5 == 4 })},
		{"a category", []string{"--action", "Authentication"},
			append([]int64{27}, idsWhere(n, func(i int) bool { return i%5 <= 1 })...)},
		{"a user", []string{"--user", "1"},
			append([]int64{27}, idsWhere(n, func(i int) bool { return i%5 == 0 || i%5 == 4 })...)},
		{"an IP", []string{"--ip", "198.51.100.7"}, idsWhere(n, func(i int) bool { return i%5 == 1 })},
		{"a resource", []string{"--resource", "get_trip"}, idsWhere(n, func(i int) bool { return i%5 == 3 })},
		{"a day", []string{"--since", "2025-03-02T00:00:00Z", "--until", "2025-03-03T00:00:00Z"}, []int64{27}},
		{"until, in another zone", []string{"--until", "2025-03-02T12:29:59+01:00"}, []int64{26}},
		{"filters combined", []string{"--action", "user.login", "--user", "1", "--since", "2025-03-02T11:30:00Z"},
			append([]int64{27}, idsWhere(n, func(i int) bool { return i%5 == 0 })...)},
		{"nothing matches", []string{"--ip", "192.0.2.1"}, []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, append([]string{"list", "--json", "--limit", "500"}, tc.args...)...)
			require.Equal(t, exitOK, code, stderr)
			var page audit.Page
			require.NoError(t, json.Unmarshal([]byte(stdout), &page))
			assert.Equal(t, tc.want, pageIDs(page))
			assert.EqualValues(t, len(tc.want), page.Total)
			assert.Equal(t, 500, page.Limit)
			assert.Nil(t, page.NextCursor)
		})
	}
}

func TestListPaging(t *testing.T) {
	f := listFixture(t)
	cases := []struct {
		name       string
		args       []string
		want       []int64
		nextCursor string // "": none
	}{
		{"the default page", nil, append([]int64{27, 26}, idsWhere(25, func(int) bool { return true })...), ""},
		{"a limit", []string{"--limit", "3"}, []int64{27, 26, 25}, "25"},
		{"an offset", []string{"--limit", "3", "--offset", "20"}, []int64{7, 6, 5}, "5"},
		{"a cursor", []string{"--limit", "3", "--cursor", "10"}, []int64{9, 8, 7}, "7"},
		{"the cursor wins over the offset", []string{"--limit", "2", "--cursor", "3", "--offset", "9"}, []int64{2, 1}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := f.run(t, append([]string{"list", "--json"}, tc.args...)...)
			require.Equal(t, exitOK, code, stderr)
			var page audit.Page
			require.NoError(t, json.Unmarshal([]byte(stdout), &page))
			assert.Equal(t, tc.want, pageIDs(page))
			assert.EqualValues(t, 27, page.Total)
			if tc.nextCursor == "" {
				assert.Nil(t, page.NextCursor)
			} else if assert.NotNil(t, page.NextCursor) {
				assert.Equal(t, tc.nextCursor, *page.NextCursor)
			}
		})
	}
}

func TestListJSONIsTheAdminAPIPage(t *testing.T) {
	f := listFixture(t)
	code, stdout, _ := f.run(t, "list", "--json", "--limit", "1", "--offset", "24")
	require.Equal(t, exitOK, code)
	// Sample event 2 (id 3): trip.create by bob.
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	entries := got["entries"].([]any)
	require.Len(t, entries, 1)
	e := entries[0].(map[string]any)
	assert.EqualValues(t, 3, e["id"])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, e["created_at"])
	assert.EqualValues(t, 2, e["user_id"])
	assert.Equal(t, "bob", e["username"])
	assert.Equal(t, "bob@example.com", e["user_email"])
	assert.Equal(t, "trip.create", e["action"])
	assert.Equal(t, "trip:2", e["resource"])
	assert.Equal(t, map[string]any{"title": "Trip 2", "tripId": 2.0}, e["details"])
	assert.Equal(t, "203.0.113.2", e["ip"])
	assert.EqualValues(t, 27, got["total"])
	assert.EqualValues(t, 1, got["limit"])
	assert.EqualValues(t, 24, got["offset"])
	assert.Equal(t, "3", got["next_cursor"])
}

func TestListTable(t *testing.T) {
	f := listFixture(t)
	// A row TREK's code wrote with hostile text in every free-text column.
	f.exec(t, `INSERT INTO audit_log (created_at, user_id, action, resource, details, ip, actor_username)
		VALUES ('2025-04-01 00:00:00', NULL, 'user.login', ?, ?, ?, ?)`,
		"trip:1\x1b]0;owned\x07", `{"note":"`+strings.Repeat("long ", 40)+`\u202e"}`, "10.0.0.9\tx", "eve\nINFO forged")

	code, stdout, stderr := f.run(t, "list", "--limit", "4")
	require.Equal(t, exitOK, code, stderr)
	rows := lines(stdout)
	require.Len(t, rows, 5)
	assert.Regexp(t, `^ID +TIME +USER +ACTION +RESOURCE +IP +DETAILS$`, rows[0])
	assert.Regexp(t, `^28 +2025-04-01T00:00:00Z +eve\\nINFO forged +user\.login +trip:1\\x1b\]0;owned\\x07 +10\.0\.0\.9\\tx +\{"note":"long long `, rows[1])
	assert.True(t, strings.HasSuffix(rows[1], "…"), "long details are cut: %q", rows[1])
	assert.Regexp(t, `^27 +2025-03-02T11:30:00Z +#1 +user\.login +- +10\.0\.0\.2 +\{"method":"oidc"\}$`, rows[2])
	assert.Regexp(t, `^26 +2025-03-01T10:00:00Z +- +user\.passkey_register +- +10\.0\.0\.1 +-$`, rows[3])
	assert.Regexp(t, `^25 +\S+Z +#1 alice +admin\.user_create +- +203\.0\.113\.1 +\{"role":"user","username":"new24"\}$`, rows[4])
	assert.NotContains(t, stdout, "\x1b")
	assert.NotContains(t, stdout, "\x07")
	assert.NotContains(t, stdout, "\t")
	assert.NotContains(t, stdout, "\u202e")
	assert.Equal(t, "4 entries shown, 28 match; next page: --cursor 25\n", stderr)

	code, stdout, _ = f.run(t, "list", "--limit", "1", "--max-details", "0")
	require.Equal(t, exitOK, code)
	assert.Contains(t, stdout, `\u202e"}`, "the whole details, escaped as JSON")

	code, stdout, stderr = f.run(t, "list", "--ip", "192.0.2.1")
	require.Equal(t, exitOK, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "no entries (0 match)\n", stderr)
}

func TestListAllFollowsTheCursor(t *testing.T) {
	f := listFixture(t)
	want := append([]int64{27, 26}, idsWhere(25, func(int) bool { return true })...)

	code, stdout, stderr := f.run(t, "list", "--all", "--json", "--limit", "4")
	require.Equal(t, exitOK, code, stderr)
	dec := json.NewDecoder(strings.NewReader(stdout))
	var got []int64
	pages := 0
	for {
		var page audit.Page
		err := dec.Decode(&page)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		pages++
		got = append(got, pageIDs(page)...)
		assert.Equal(t, len(got) < len(want), page.NextCursor != nil, "every page but the last has a cursor")
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 7, pages)
	assert.Len(t, lines(stdout), 7, "one page per line")

	code, stdout, stderr = f.run(t, "list", "--all", "--limit", "4", "--action", "user.login_failed")
	require.Equal(t, exitOK, code, stderr)
	rows := lines(stdout)
	assert.Len(t, rows, 1+5, "the header once, then every match")
	assert.Equal(t, 1, strings.Count(stdout, "ACTION"))
	assert.Equal(t, "5 entries shown, 5 match\n", stderr)
}

// list --all counts the total on the first page only: counting on every
// page would read the filter's rows once a page. Later pages say so with
// a total of -1, and the footer gives the first page's.
func TestListAllCountsOnTheFirstPageOnly(t *testing.T) {
	f := listFixture(t)
	code, stdout, stderr := f.run(t, "list", "--all", "--json", "--limit", "10", "--since", "2025-03-02T00:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	var totals []int64
	for _, l := range lines(stdout) {
		var page audit.Page
		require.NoError(t, json.Unmarshal([]byte(l), &page), l)
		totals = append(totals, page.Total)
	}
	assert.Equal(t, []int64{26, -1, -1}, totals)

	code, _, stderr = f.run(t, "list", "--all", "--limit", "10", "--since", "2025-03-02T00:00:00Z")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "26 entries shown, 26 match\n", stderr)
}

func TestEscape(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain text is kept", "alice@example.com", "alice@example.com"},
		{"non-ASCII letters are kept", "Zoë in Lisboa ✈", "Zoë in Lisboa ✈"},
		{"a terminal escape", "\x1b[31mred", `\x1b[31mred`},
		{"line breaks cannot forge a line", "a\nb\rc", `a\nb\rc`},
		{"a tab cannot shift a column", "a\tb", `a\tb`},
		{"DEL", "a\x7f", `a\x7f`},
		{"a bidi override", "abc\u202edef", `abc\u202edef`},
		{"a C1 control", "a\u0085b", `a\u0085b`},
		{"an unprintable astral rune", "a\U000e0001b", `a\U000e0001b`},
		{"invalid UTF-8", "a\xffb", `a\xffb`},
		{"a backslash is doubled, so it cannot pass for an escape", `a\x1b`, `a\\x1b`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, escape(tc.in))
		})
	}
}

func TestDetailsText(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"none", "", "-"},
		{"null", "null", "-"},
		{"compacted", "{ \"a\" : [1, 2] }", `{"a":[1,2]}`},
		{"JSON escapes are kept as they are", `{"e":"x\u001by\\n"}`, `{"e":"x\u001by\\n"}`},
		{"unprintable runes become JSON escapes", "{\"e\":\"x\u202ey\u2028\"}", `{"e":"x\u202ey\u2028"}`},
		{"an astral one as a surrogate pair", "{\"e\":\"\U000e0001\"}", `{"e":"\udb40\udc01"}`},
		{"two spaces together cannot set off a column", `{"e":"a  b   c d"}`, `{"e":"a\u0020\u0020b\u0020\u0020\u0020c d"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := detailsText(json.RawMessage(tc.in))
			assert.Equal(t, tc.want, got)
			if tc.want != "-" {
				assert.JSONEq(t, tc.in, got, "still the same JSON")
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"ééééé", 3, "éé…"},
		{"anything", 0, "anything"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, truncate(tc.in, tc.max), "%q to %d", tc.in, tc.max)
	}
}

// A user picks their own name, and a deleted user's remembered one is
// printed alone: a name that could be read as the USER column's own words
// ("-" for anonymous, "#1" for a user id, a quoted name) is quoted, and
// escaped inside the quotes, in list and tail alike; other names as they
// are.
func TestUserCellCannotPassForTheCommandsOwnWords(t *testing.T) {
	id := func(n int64) *int64 { return &n }
	str := func(s string) *string { return &s }
	cases := []struct {
		name string
		e    audit.Entry
		want string
	}{
		{"anonymous", audit.Entry{}, "-"},
		{"a user id alone", audit.Entry{UserID: id(1)}, "#1"},
		{"a user and their name", audit.Entry{UserID: id(1), Username: str("alice")}, "#1 alice"},
		{"a deleted user's name", audit.Entry{Username: str("alice")}, "alice"},
		{"the email when there is no name", audit.Entry{UserEmail: str("alice@example.com")}, "alice@example.com"},
		{"one space inside a name is kept", audit.Entry{Username: str("Alice Martin")}, "Alice Martin"},
		{"a quote inside a name is kept", audit.Entry{Username: str(`o"brien`)}, `o"brien`},
		{"a dash cannot pass for anonymous", audit.Entry{Username: str("-")}, `"-"`},
		{"a user id and name cannot pass for that user", audit.Entry{Username: str("#1 alice")}, `"#1 alice"`},
		{"a bare user id", audit.Entry{Username: str("#1")}, `"#1"`},
		{"an email that looks like a user id", audit.Entry{UserEmail: str("#2")}, `"#2"`},
		{"a quoted name cannot pass for a quoted one", audit.Entry{Username: str(`"-"`)}, `"\"-\""`},
		{"a space before a dash", audit.Entry{Username: str(" -")}, `" -"`},
		{"a space after the name", audit.Entry{Username: str("alice ")}, `"alice "`},
		{"two spaces cannot make a column", audit.Entry{Username: str("bob  user.login")}, `"bob\x20\x20user.login"`},
		{"escaped inside the quotes", audit.Entry{Username: str("#1\x1b[2J")}, `"#1\x1b[2J"`},
		{"a backslash cannot end the quotes", audit.Entry{Username: str(`#\"`)}, `"#\\\""`},
		{"after a user id too", audit.Entry{UserID: id(7), Username: str("-")}, `#7 "-"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, userCell(tc.e))
		})
	}

	// Deleted users (user_id cleared) whose names were "#1 alice" and "-",
	// beside the real user 1 and an anonymous event.
	f := newFixture(t, 2) // #1 alice's login, then an anonymous failed login
	f.exec(t, `INSERT INTO audit_log (created_at, user_id, action, ip, actor_username) VALUES
		('2025-04-01 00:00:00', NULL, 'user.login', '10.0.0.9', '#1 alice'),
		('2025-04-01 00:00:01', NULL, 'user.login', '10.0.0.9', '-')`)
	code, stdout, stderr := f.run(t, "list")
	require.Equal(t, exitOK, code, stderr)
	rows := lines(stdout)
	require.Len(t, rows, 5)
	assert.Regexp(t, `^4 +\S+ +"-" +user\.login `, rows[1])
	assert.Regexp(t, `^3 +\S+ +"#1 alice" +user\.login `, rows[2])
	assert.Regexp(t, `^2 +\S+ +- +user\.login_failed `, rows[3])
	assert.Regexp(t, `^1 +\S+ +#1 alice +user\.login `, rows[4])

	code, stdout, stderr = f.run(t, "tail")
	require.Equal(t, exitOK, code, stderr)
	rows = lines(stdout)
	require.Len(t, rows, 4)
	assert.Regexp(t, `^\S+  1  #1 alice  user\.login  `, rows[0])
	assert.Regexp(t, `^\S+  2  -  user\.login_failed  `, rows[1])
	assert.Regexp(t, `^\S+  3  "#1 alice"  user\.login  `, rows[2])
	assert.Regexp(t, `^\S+  4  "-"  user\.login  `, rows[3])
}

// A name drawn with characters that look like the USER column's own
// words (a minus sign or a dash for "-", a full-width or small number sign
// for "#", curly quotes for a quoted name) is quoted as those words are:
// any name that does not begin with a letter or a digit. Names in other
// scripts are printed as they are.
func TestUserCellQuotesLookAlikes(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct{ name, username, want string }{
		{"a minus sign for anonymous", "\u2212", "\"\u2212\""},
		{"a hyphen for anonymous", "\u2010", "\"\u2010\""},
		{"an en dash for anonymous", "\u2013", "\"\u2013\""},
		{"a full-width hyphen-minus for anonymous", "\uff0d", "\"\uff0d\""},
		{"a full-width number sign for a user id", "\uff031 alice", "\"\uff031 alice\""},
		{"a small number sign for a user id", "\ufe5f1 alice", "\"\ufe5f1 alice\""},
		{"curly quotes for a quoted name", "\u201c-\u201d", "\"\u201c-\u201d\""},
		{"any other mark first", "_bob", `"_bob"`},
		{"an unprintable first rune, escaped inside the quotes", "\u202e-", `"\u202e-"`},
		{"a letter with a diaeresis", "Zoë", "Zoë"},
		{"Chinese", "李雷", "李雷"},
		{"a letter with a stroke", "Ørjan", "Ørjan"},
		{"a digit first", "7of9", "7of9"},
		{"a dash after a letter", "anne-marie", "anne-marie"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, userCell(audit.Entry{Username: str(tc.username)}))
		})
	}
}

// Stored text in the TIME, ACTION, RESOURCE and IP columns, which clients
// choose (an MCP tool name, a file name) and TREK's own rows may fill with
// anything, is quoted where it could pass for the columns' own words ("-"
// for none, a quoted value) or move a column; resources as TREK writes
// them print as they are.
func TestCellCannotPassForTheCommandsOwnWords(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"none", "", "-"},
		{"a trip", "trip:12", "trip:12"},
		{"an OAuth client", "client:7", "client:7"},
		{"an API path", "/api/trips", "/api/trips"},
		{"a number sign: these columns print no user id", "#42", "#42"},
		{"a tool name", "get_trip", "get_trip"},
		{"an IPv6 address", "::1", "::1"},
		{"a file name in another script", "Zoë's plan.pdf", "Zoë's plan.pdf"},
		{"one space", "Lisbon trip", "Lisbon trip"},
		{"a dash cannot pass for none", "-", `"-"`},
		{"a minus sign cannot pass for none", "\u2212", "\"\u2212\""},
		{"a full-width hyphen-minus", "\uff0d", "\"\uff0d\""},
		{"anything beginning with a dash", "-x", `"-x"`},
		{"a quoted value cannot pass for a quoted one", `"-"`, `"\"-\""`},
		{"nor one in curly quotes", "\u201c-\u201d", "\"\u201c-\u201d\""},
		{"two spaces cannot make a column", `get_trip  10.9.9.9  {"ok":true}`, `"get_trip\x20\x2010.9.9.9\x20\x20{\"ok\":true}"`},
		{"a space before", " trip:1", `" trip:1"`},
		{"a space after", "trip:1 ", `"trip:1 "`},
		{"an unprintable first rune, escaped inside the quotes", "\u00a0-", `"\u00a0-"`},
		{"escaped without quotes", "trip:1\x1b[2J", `trip:1\x1b[2J`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, orDash(&tc.in))
		})
	}
	assert.Equal(t, "-", orDash(nil))
}
