package audit

import (
	"context"
	"net/http"
)

type clientIPKey struct{}

// WithClientIP returns a context carrying the client IP for events that name
// none. Middleware does this for every request; call it yourself only where
// events are recorded outside an HTTP request (a job acting for a client).
// ip must be an IP address: Record answers ErrInvalidEvent for anything
// else, as it does for Event.IP, rather than store a header's text.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIPFrom returns the client IP that Middleware (or WithClientIP) put in
// ctx, or "" if there is none.
func ClientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// Middleware resolves the client IP of each request once, honouring
// TRUST_PROXY, and puts it in the request's context, where Record finds it.
// Mount it outside the authentication middleware that calls WithActor, so
// that a failed login is recorded with the client's real address:
//
//	handler := auditor.Middleware(auth(mux))
//
// It is a plain http.Handler wrapper and works with any router built on
// net/http.
func (a *Auditor) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := a.trust.ClientIP(r)
		next.ServeHTTP(w, r.WithContext(WithClientIP(r.Context(), ip)))
	})
}
