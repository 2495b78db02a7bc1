// Command demo is a tiny TREK-like server that shows the audit library at
// work: a login, a trip endpoint and the admin panel's audit list.
//
//	go run ./examples/demo
//
// It keeps its files where TREK does: the SQLite database data/travel.db and
// the rotated log data/logs/trek.log, below the working directory. On start
// it prints its address, a fresh admin token and curl lines to try, then
// plays a short session against itself over HTTP and prints what the audit
// log recorded. It serves until Ctrl-C; with -once it exits after the
// session.
//
// The one account is alice@example.com with the password "correct horse".
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver of the server's own handle

	"github.com/trek-go/audit"
)

const (
	demoEmail    = "alice@example.com"
	demoPassword = "correct horse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	once := flag.Bool("once", false, "play the scripted session, print what it recorded and exit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *once, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run starts the server on addr, plays the scripted session and serves until
// ctx is done, or returns right after the session when once is set.
func run(ctx context.Context, addr string, once bool, out io.Writer) (err error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is already in use: stop what is listening there or pick another address with -addr", addr)
	}
	if err != nil {
		return err
	}
	defer ln.Close()

	// The zero Config, plus what the environment says (TRUST_PROXY, TZ,
	// LOG_LEVEL ...): data/travel.db and data/logs/trek.log.
	cfg := audit.ConfigFromEnv()
	dbPath := cmp.Or(cfg.DBPath, audit.DefaultDBPath)
	logPath := cmp.Or(cfg.LogPath, filepath.Join(filepath.Dir(dbPath), "logs", "trek.log")) // as the library lays it out

	// The server's own tables come first, as in TREK: the auditor reads
	// users to name the actor of an event recorded by user id.
	db, err := openAppDB(dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	auditor, err := audit.Open(cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, auditor.Close()) }() // Close waits for every accepted event

	s := &server{
		db:         db,
		auditor:    auditor,
		log:        slog.New(auditor.LogHandler(nil)), // the server's own lines go to trek.log too
		adminToken: rand.Text(),
		sessions:   map[string]audit.Actor{},
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, srv.Shutdown(shutdownCtx))
	}()

	base := "http://" + ln.Addr().String()
	s.log.Info("demo server listening", "addr", ln.Addr().String())
	printIntro(out, base, s.adminToken, dbPath, logPath)
	if err := playSession(ctx, out, base, s.adminToken, logPath, cfg.TrustProxy); err != nil {
		return err
	}
	if once {
		return nil
	}
	fmt.Fprintln(out, "Serving until Ctrl-C.")
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "Shutting down.")
		return nil
	case err := <-served:
		return err
	}
}

// openAppDB opens the server's own handle on the database and creates the
// demo's users and trips tables, with its one user.
func openAppDB(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	// SQLite would create the file readable by every local user; the
	// audit log shares it, so create it 0640 first, as the library does.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640); err != nil {
		return nil, err
	} else if err := f.Close(); err != nil {
		return nil, err
	}
	if err := notTheDemos(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on")
	if err != nil {
		return nil, err
	}
	_, err = db.Exec(`
		CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, username TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
		CREATE TABLE IF NOT EXISTS trips (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER REFERENCES users(id), title TEXT NOT NULL);
		INSERT OR IGNORE INTO users (id, username, email) VALUES (1, 'alice', ?)`, demoEmail)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("creating the demo's tables in %s: %w", path, err)
	}
	return db, nil
}

// notTheDemos refuses a database the demo did not make: run where TREK
// keeps its data, or with AUDIT_DB_PATH set to TREK's file, the demo would
// otherwise record its made-up events in TREK's audit log, whose rows are
// never deleted, and add its user and trip to TREK's tables. The demo's
// file holds its users and trips tables and the library's own. It looks
// read-only, so that a file it refuses is left exactly as it was.
func notTheDemos(path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT IN ('users', 'trips') AND name NOT LIKE 'audit\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		UNION ALL
		SELECT 'users (with ' || group_concat(name, ', ') || ')' FROM pragma_table_info('users')
		HAVING group_concat(name, ',') <> 'id,username,email'`)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer rows.Close()
	var others []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		others = append(others, fmt.Sprintf("%q", name))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(others) > 0 {
		return fmt.Errorf("%s is not the demo's database (it holds %s): the demo records made-up events, "+
			"so run it in a folder of its own, or set AUDIT_DB_PATH to a file of its own", path, strings.Join(others, ", "))
	}
	return nil
}

type server struct {
	db         *sql.DB
	auditor    *audit.Auditor
	log        *slog.Logger
	adminToken string

	mu       sync.Mutex
	sessions map[string]audit.Actor // login token -> user
}

// routes mounts the auditor's middleware outermost, so every request has
// its client IP resolved (honouring TRUST_PROXY) before authentication runs
// and before any handler records an event, a failed login included.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/login", s.login)
	mux.HandleFunc("POST /api/trips", s.createTrip)
	mux.Handle("/api/admin/audit-log", s.auditor.AdminHandler(s.isAdmin))
	return s.auditor.Middleware(s.authenticate(mux))
}

// authenticate is the server's own authentication. It tells the auditor who
// is acting, so handlers record events without naming the user each time.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		user, ok := s.sessions[bearer(r)]
		s.mu.Unlock()
		if ok {
			r = r.WithContext(audit.WithActor(r.Context(), user))
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) isAdmin(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(s.adminToken)) == 1
}

func bearer(r *http.Request) string {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return token
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req struct{ Email, Password string }
	if !decode(w, r, &req) {
		return
	}
	var user audit.Actor
	err := s.db.QueryRowContext(r.Context(), `SELECT id, username, email FROM users WHERE email = ?`, req.Email).
		Scan(&user.UserID, &user.Username, &user.Email)
	if err != nil || subtle.ConstantTimeCompare([]byte(req.Password), []byte(demoPassword)) != 1 {
		// No actor yet: the event is anonymous, with the client's IP.
		s.record(r, audit.Event{Action: audit.UserLoginFailed, Details: map[string]any{"email": req.Email}})
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong email or password"})
		return
	}
	token := rand.Text()
	s.mu.Lock()
	s.sessions[token] = user
	s.mu.Unlock()
	s.record(r, audit.Event{Action: audit.UserLogin, Actor: user})
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (s *server) createTrip(w http.ResponseWriter, r *http.Request) {
	user, ok := audit.ActorFrom(r.Context())
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in first, then send Authorization: Bearer <token>"})
		return
	}
	var req struct{ Title string }
	if !decode(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Title) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "title is required"})
		return
	}
	res, err := s.db.ExecContext(r.Context(), `INSERT INTO trips (user_id, title) VALUES (?, ?)`, user.UserID, req.Title)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the trip could not be saved"})
		return
	}
	id, _ := res.LastInsertId()
	// The actor comes from the context that authenticate set up.
	s.record(r, audit.Event{Action: audit.TripCreate, Resource: fmt.Sprintf("trip:%d", id),
		Details: map[string]any{"title": req.Title, "tripId": id}})
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "title": req.Title})
}

// record stores an event. Record returns once the event is committed; if it
// can't be, the request still succeeds and the failure goes to the log,
// where an operator (and the auditor's Stats) will see it.
func (s *server) record(r *http.Request, e audit.Event) {
	if err := s.auditor.Record(r.Context(), e); err != nil {
		s.log.Error("audit event not recorded", "action", string(e.Action), "err", err.Error())
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be a JSON object"})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func printIntro(out io.Writer, base, adminToken, dbPath, logPath string) {
	fmt.Fprintf(out, `TREK audit demo on %[1]s
  database     %[3]s
  log          %[4]s
  admin token  %[2]s  (new at every start)

Try it:
  curl -s -X POST %[1]s/api/auth/login -H 'Content-Type: application/json' -d '{"email":"%[5]s","password":"%[6]s"}'
  curl -s -X POST %[1]s/api/trips -H 'Authorization: Bearer <token from the login>' -H 'Content-Type: application/json' -d '{"title":"Lisbon"}'
  curl -s '%[1]s/api/admin/audit-log?limit=10' -H 'Authorization: Bearer %[2]s'
  curl -s '%[1]s/api/admin/audit-log?action=user.login_failed' -H 'Authorization: Bearer %[2]s'

`, base, adminToken, dbPath, logPath, demoEmail, demoPassword)
}

// playSession makes the requests a newcomer would try first, over real HTTP,
// then prints the admin list and the lines trek.log got meanwhile.
func playSession(ctx context.Context, out io.Writer, base, adminToken, logPath, trustProxy string) error {
	logStart := fileSize(logPath)
	c := &sessionClient{ctx: ctx, http: &http.Client{Timeout: 10 * time.Second}, base: base, out: out}
	creds := func(password string) string {
		return fmt.Sprintf(`{"email":%q,"password":%q}`, demoEmail, password)
	}

	fmt.Fprintln(out, "A short session against this server:")
	c.post("a wrong password", "/api/auth/login", creds("hunter2"), nil)
	token, _ := c.post("alice logs in", "/api/auth/login", creds(demoPassword), nil)["token"].(string)
	c.post("alice creates a trip", "/api/trips", `{"title":"Lisbon"}`,
		http.Header{"Authorization": {"Bearer " + token}})
	c.post("a guess claiming to be 203.0.113.66", "/api/auth/login", creds("guess"),
		http.Header{"X-Forwarded-For": {"203.0.113.66"}})
	list := c.get("/api/admin/audit-log?limit=4", http.Header{"Authorization": {"Bearer " + adminToken}})
	if c.err != nil {
		return c.err
	}

	fmt.Fprintf(out, "\nGET /api/admin/audit-log?limit=4, as the admin panel gets it (newest first):\n%s\n\n", list)
	// What the last request was recorded under says what TRUST_PROXY made
	// of its X-Forwarded-For.
	var page struct {
		Entries []struct {
			IP *string `json:"ip"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(list, &page); err != nil || len(page.Entries) == 0 || page.Entries[0].IP == nil {
		return fmt.Errorf("reading the list: %w", cmp.Or(err, errors.New("no entry")))
	}
	switch ip := *page.Entries[0].IP; {
	case ip == "203.0.113.66":
		fmt.Fprintf(out, "TRUST_PROXY is %q, which trusts the connection's address as a proxy: the last request\n", trustProxy)
		fmt.Fprintf(out, "was recorded under the client address its X-Forwarded-For gives (%s).\n", ip)
	case trustProxy == "":
		fmt.Fprintln(out, "The X-Forwarded-For of the last request was not believed: TRUST_PROXY is not set, so the")
		fmt.Fprintf(out, "address of the connection (%s) is recorded. Behind a reverse proxy, set TRUST_PROXY.\n", ip)
	default:
		fmt.Fprintf(out, "The X-Forwarded-For of the last request was not believed: TRUST_PROXY is %q, which does\n", trustProxy)
		fmt.Fprintf(out, "not trust the connection's address (%s) as a proxy, so that address is recorded.\n", ip)
	}

	lines, err := linesFrom(logPath, logStart)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s meanwhile:\n", logPath)
	for _, l := range lines {
		fmt.Fprintln(out, "  "+l)
	}
	fmt.Fprintln(out)
	return nil
}

// sessionClient makes the session's requests and prints each. The first
// error sticks and ends the session.
type sessionClient struct {
	ctx  context.Context
	http *http.Client
	base string
	out  io.Writer
	err  error
}

// post sends body as JSON and returns the decoded answer.
func (c *sessionClient) post(say, path, body string, header http.Header) map[string]any {
	var answer map[string]any
	status, raw := c.do(http.MethodPost, path, body, header)
	if c.err == nil {
		json.Unmarshal(raw, &answer)
		fmt.Fprintf(c.out, "  POST %-16s %-36s -> %d\n", path, say, status)
	}
	return answer
}

// get returns the answer, indented, and insists on 200 OK.
func (c *sessionClient) get(path string, header http.Header) []byte {
	status, raw := c.do(http.MethodGet, path, "", header)
	if c.err == nil && status != http.StatusOK {
		c.err = fmt.Errorf("GET %s: %d %s", path, status, raw)
	}
	var pretty bytes.Buffer
	if c.err == nil {
		c.err = json.Indent(&pretty, bytes.TrimSpace(raw), "", "  ")
	}
	return pretty.Bytes()
}

func (c *sessionClient) do(method, path, body string, header http.Header) (int, []byte) {
	if c.err != nil {
		return 0, nil
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.err = err
		return 0, nil
	}
	req.Header = header
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		c.err = err
		return 0, nil
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	c.err = err
	return res.StatusCode, raw
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// linesFrom returns the lines of the file at path from byte offset on, or
// all of them if the file has been rotated since (it is shorter now).
func linesFrom(path string, offset int64) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() >= offset {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return nil, err
		}
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}
