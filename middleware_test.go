package audit

import (
	"context"
	"database/sql"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMiddlewareEndToEnd runs a real server with the middleware and an
// authentication middleware inside it, the order the README shows, and reads
// the recorded IP back from the audit_log row.
func TestMiddlewareEndToEnd(t *testing.T) {
	cases := []struct {
		name       string
		trustProxy string
		xff        []string // X-Forwarded-For header lines the server receives
		want       string
	}{
		{"direct client, no proxy trusted", "", nil, "127.0.0.1"},
		{"header ignored when no proxy is trusted", "", []string{"6.6.6.6"}, "127.0.0.1"},
		{"one trusted proxy appends the client", "1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed entry before the proxy's is not believed", "1", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"TRUST_PROXY=true is one hop", "true", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"two hops over two header lines", "2", []string{"6.6.6.6, 203.0.113.9", "10.0.0.2"}, "203.0.113.9"},
		{"trusted ranges walk to the first untrusted", "loopback, 10.0.0.0/8", []string{"6.6.6.6, 203.0.113.9, 10.0.0.2"}, "203.0.113.9"},
		{"IPv4-mapped client stored as IPv4", "1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"malformed entry never becomes the address", "1", []string{"<script>"}, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "trek.log"), TrustProxy: tc.trustProxy})
			require.NoError(t, err)
			t.Cleanup(func() { a.Close() })

			// The authentication middleware sets the actor when the
			// credentials are good; the login handler records a failure
			// from the request's context alone.
			auth := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") == "Bearer good" {
						r = r.WithContext(WithActor(r.Context(), Actor{UserID: 1, Email: "alice@example.com"}))
					}
					next.ServeHTTP(w, r)
				})
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
				action := UserLoginFailed
				if _, ok := ActorFrom(r.Context()); ok {
					action = UserLogin
				}
				if err := a.Record(r.Context(), Event{Action: action}); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			srv := httptest.NewServer(a.Middleware(auth(mux)))
			t.Cleanup(srv.Close)

			for _, token := range []string{"bad", "good"} {
				req, err := http.NewRequest(http.MethodPost, srv.URL+"/login", nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+token)
				for _, line := range tc.xff {
					req.Header.Add("X-Forwarded-For", line)
				}
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusNoContent, resp.StatusCode)
			}

			db, err := sql.Open("sqlite3", filepath.Join(dir, "travel.db"))
			require.NoError(t, err)
			defer db.Close()
			rows, err := db.Query(`SELECT action, COALESCE(user_id, 0), ip FROM audit_log ORDER BY id`)
			require.NoError(t, err)
			defer rows.Close()
			type rec struct {
				action string
				user   int64
				ip     string
			}
			var got []rec
			for rows.Next() {
				var r rec
				require.NoError(t, rows.Scan(&r.action, &r.user, &r.ip))
				got = append(got, r)
			}
			require.NoError(t, rows.Err())
			assert.Equal(t, []rec{
				{string(UserLoginFailed), 0, tc.want},
				{string(UserLogin), 1, tc.want},
			}, got)
		})
	}
}

func TestMiddlewareWorksWithAnyHandler(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "trek.log"), TrustProxy: "1"})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })

	var seen string
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = ClientIPFrom(r.Context()) }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = net.JoinHostPort("10.0.0.1", "5555")
	req.Header.Set("X-Forwarded-For", "198.51.100.20")
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Equal(t, "198.51.100.20", seen)

	// Event.IP given by the handler wins over the context's.
	ctx := WithClientIP(context.Background(), "198.51.100.20")
	require.NoError(t, a.Record(ctx, Event{Action: UserLogin, IP: "2001:db8::1"}))
	page, err := a.List(context.Background(), Query{})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.NotNil(t, page.Entries[0].IP)
	assert.Equal(t, "2001:db8::1", *page.Entries[0].IP)
}

func TestOpenRejectsBadTrustProxy(t *testing.T) {
	for _, bad := range []string{"yes", "-1", "10.0.0.0/33", "lo0pback"} {
		t.Run(bad, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Open(Config{DBPath: filepath.Join(dir, "travel.db"), LogPath: filepath.Join(dir, "trek.log"), TrustProxy: bad})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadConfig)
			assert.ErrorIs(t, err, ErrBadTrustProxy)
			assert.Contains(t, err.Error(), bad)
		})
	}
}

func TestConfigFromEnvReadsTrustProxy(t *testing.T) {
	t.Setenv("TRUST_PROXY", "loopback")
	assert.Equal(t, "loopback", ConfigFromEnv().TrustProxy)
}
