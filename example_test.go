package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/trek-go/audit"
)

// openExample opens an Auditor on a database and trek.log in a folder of
// their own, as TREK's data folder would be, and returns it with a
// function that closes it and removes the folder.
func openExample() (*audit.Auditor, func()) {
	dir, err := os.MkdirTemp("", "trek-audit-example")
	if err != nil {
		log.Fatal(err)
	}
	a, err := audit.Open(audit.Config{
		DBPath:  filepath.Join(dir, "data", "travel.db"),
		LogPath: filepath.Join(dir, "data", "logs", "trek.log"),
	})
	if err != nil {
		log.Fatal(err)
	}
	return a, func() {
		a.Close()
		os.RemoveAll(dir)
	}
}

// A handler records what happened; the actor and the client IP come from
// the request's context, where TREK's authentication and the audit
// middleware put them.
func ExampleAuditor_Record() {
	a, done := openExample()
	defer done()

	ctx := audit.WithActor(context.Background(), audit.Actor{UserID: 7, Username: "alice", Email: "alice@example.com"})
	ctx = audit.WithClientIP(ctx, "203.0.113.9")
	err := a.Record(ctx, audit.Event{
		Action:   audit.TripCreate,
		Resource: "trip:12",
		Details:  map[string]any{"title": "Lisbon", "tripId": 12},
	})
	if err != nil {
		log.Fatal(err)
	}

	page, err := a.List(context.Background(), audit.Query{})
	if err != nil {
		log.Fatal(err)
	}
	e := page.Entries[0]
	fmt.Println(page.Total, e.Action, *e.Resource, *e.UserEmail, *e.IP, string(e.Details))
	// Output: 1 trip.create trip:12 alice@example.com 203.0.113.9 {"title":"Lisbon","tripId":12}
}

// An event the catalogue does not know, or one without the details the
// wiki says it includes, is refused before anything is written.
func ExampleAuditor_Record_refused() {
	a, done := openExample()
	defer done()

	err := a.Record(context.Background(), audit.Event{Action: "trip.teleport"})
	fmt.Println(errors.Is(err, audit.ErrUnknownAction))
	err = a.Record(context.Background(), audit.Event{Action: audit.TripCreate})
	fmt.Println(errors.Is(err, audit.ErrMissingDetail))
	// Output:
	// true
	// true
}

// TRUST_PROXY=1: one reverse proxy in front of TREK, whose
// X-Forwarded-For names the client. Without it, the header is ignored and
// the socket's peer is the client: a forged header changes nothing.
func ExampleTrustProxy_ClientIP() {
	r := httptest.NewRequest(http.MethodPost, "/api/auth/login", nil)
	r.RemoteAddr = "10.0.0.2:51234" // the proxy
	r.Header.Set("X-Forwarded-For", "198.51.100.23")

	for _, setting := range []string{"", "1"} {
		trust, err := audit.ParseTrustProxy(setting)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("TRUST_PROXY=%q: %s\n", setting, trust.ClientIP(r))
	}
	// Output:
	// TRUST_PROXY="": 10.0.0.2
	// TRUST_PROXY="1": 198.51.100.23
}

// The admin panel's list, behind TREK's own admin check: anyone it
// refuses gets 403, whatever they ask.
func ExampleAuditor_AdminHandler() {
	a, done := openExample()
	defer done()
	if err := a.Record(context.Background(), audit.Event{Action: audit.UserLoginFailed, Details: map[string]any{"email": "bob@example.com"}}); err != nil {
		log.Fatal(err)
	}
	isAdmin := func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer admin-token" }
	h := a.AdminHandler(isAdmin)

	for _, token := range []string{"Bearer admin-token", "Bearer someone-else"} {
		r := httptest.NewRequest(http.MethodGet, "/api/admin/audit-log?action=user.login_failed", nil)
		r.Header.Set("Authorization", token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 200
	// 403
}

// Verify walks the keyed chain and checks it against the chain heads in
// trek.log: a row changed, inserted or deleted behind the library's back
// is found and named.
func ExampleAuditor_Verify() {
	a, done := openExample()
	defer done()
	for range 3 {
		if err := a.Record(context.Background(), audit.Event{Action: audit.UserLogin}); err != nil {
			log.Fatal(err)
		}
	}
	rep, err := a.Verify(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.Intact, rep.Checked, rep.Anchors)
	// Output: true 3 3
}
