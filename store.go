package audit

import (
	"context"
	"time"
)

// row is one audit_log row as the library writes it.
type row struct {
	id        int64 // set by the store on insert
	createdAt time.Time
	userID    int64 // 0: NULL
	userGone  bool  // userID names no row of users: store user_id NULL
	username  string
	email     string
	action    Action
	resource  string
	details   []byte // a JSON object, nil: NULL
	ip        string
	seq       int64  // chain_seq, set by the store on insert
	mac       string // chain_mac (hex), likewise
}

// store is where events are kept. SQLite is the one TREK ships; the
// interface is the seam for a PostgreSQL store for installations that run
// several TREK instances.
type store interface {
	// insert commits the rows of batch in one transaction, all or none,
	// and sets their ids. It may fill in missing actor snapshots. Unless
	// more is nil, the store calls it once it has written what it has, and
	// again after writing each slice it returns, until one is empty: those
	// rows join the same transaction, and share its outcome.
	insert(ctx context.Context, batch []*pending, more func() []*pending) error
	// list reads one page of the admin list.
	list(ctx context.Context, q Query) (Page, error)
	// close releases what the store opened; it never closes a host's
	// database handle.
	close() error
}
