// Package audit records who did what on a TREK instance: logins and failed
// logins, changes to trips, settings, OAuth clients and backups. Every event
// is checked against a closed catalogue of action keys, stored in TREK's own
// audit_log table in data/travel.db and written as one line to the rotated
// data/logs/trek.log.
//
// Record returns nil only once the event is committed to the database.
// Concurrent callers share a transaction (group commit), so auditing costs
// little on the request path, and an event that cannot be stored is an
// error to its caller, never dropped in silence.
package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The errors the library returns wrap one of these (or ErrUnknownAction,
// ErrMissingDetail, ErrBadAction, ErrBadTrustProxy, ErrBadQuery,
// ErrChainKey, ErrVerify, each beside what it is about), so callers can
// tell them apart with errors.Is. Two exceptions: a Record that waited for
// room in a full queue until its context ended wraps the context's error,
// and Close returns what closing the files returned.
var (
	// ErrClosed: Record, List, Verify, Unacknowledged, Acknowledge, or a
	// write to LogWriter, once Close has begun: nothing was written or
	// read, on the library's own database file and on the host's handle
	// alike. A read that Close overtook, its connections closed under it,
	// answers ErrClosed too, beside what failed, so that a host shutting
	// down (the admin panel's list during a graceful stop) does not take it
	// for a database error worth retrying.
	ErrClosed = errors.New("audit: auditor is closed")
	// ErrReadOnly: Record, or a write to LogWriter, on an Auditor opened
	// with Config.ReadOnly. Nothing was written.
	ErrReadOnly = errors.New("audit: auditor is read-only")
	// ErrInvalidEvent: the event itself is malformed (an IP that is not an
	// IP address, details that cannot be encoded as JSON). Nothing is
	// written.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrBadConfig: Open was given a setting it cannot use; the message
	// names the setting and the value.
	ErrBadConfig = errors.New("audit: invalid configuration")
	// ErrStore: the database failed. From Record: it refused the event
	// (locked past the busy timeout, read-only, full); the event is not
	// stored, and it is safe to retry, unless the error is also
	// ErrReplaced. From Open and List: it could not be opened or read.
	ErrStore = errors.New("audit: database error")
	// ErrLogWrite: trek.log could not be written. From Record: the event is
	// committed to the database but its line is missing; do not retry, that
	// would store it twice. From LogWriter and LogHandler: the host's line
	// was not written. From Open: trek.log's folder could not be made.
	ErrLogWrite = errors.New("audit: writing trek.log failed")
	// ErrReplaced: travel.db, or its -wal, was replaced on disk while the
	// Auditor had it open, as a restore from a backup does with the
	// server running. It comes with ErrStore (errors.Is matches both),
	// from Record, List, Verify, Unacknowledged, Acknowledge, Close and
	// Open, but unlike ErrStore's other causes it lasts: this Auditor
	// writes and reads nothing more, so retrying is pointless. Close the
	// Auditor and Open it again; when that Open fails with ErrReplaced too
	// (a backup was copied over the open file, see the README), only
	// restarting the process will do.
	ErrReplaced = errors.New("audit: travel.db was replaced on disk")
)

// Defaults, as TREK lays out its data folder.
const (
	DefaultDBPath      = "data/travel.db"
	DefaultLogPath     = "data/logs/trek.log"
	DefaultBusyTimeout = 5 * time.Second
	DefaultQueueSize   = 4096
	DefaultMaxBatch    = 512
)

// Config says where the audit log lives and how it behaves. The zero value is
// TREK's layout: data/travel.db and data/logs/trek.log below the working
// directory, X-Forwarded-For ignored, info-level lines in UTC.
type Config struct {
	// DBPath is the SQLite file; it and its folder are created if missing.
	// Default "data/travel.db". Ignored when DB is set. Close the Auditor
	// before a restore replaces the file, and open it again after: SQLite
	// writes to the file it opened, so Record refuses (ErrReplaced, with
	// ErrStore) once another file is at this path, rather than lose events
	// in the old one.
	DBPath string
	// DB is the host's own handle on TREK's database, used instead of
	// DBPath. The library takes one connection of its pool for writing,
	// holds it until Close, and never closes the handle. After a fault (a
	// full disk, an I/O error) it gives that connection back and takes
	// another for the next batch, waiting for one no longer than
	// BusyTimeout: a pool the host holds whole then fails that batch
	// (ErrStore) rather than hold its callers. A pool limited to one
	// connection (SetMaxOpenConns(1)) is refused: every other query on
	// it, TREK's and the admin list's, would wait for that one forever.
	DB *sql.DB
	// LogPath is the rotated text log; its folder is created if missing.
	// Default logs/trek.log beside DBPath, as TREK keeps it
	// ("data/logs/trek.log"); with DB, "data/logs/trek.log".
	LogPath string
	// TrustProxy says which X-Forwarded-For entries to believe, in the
	// syntax of TREK's TRUST_PROXY (see ParseTrustProxy). Default: none.
	TrustProxy string
	// LogLevel is "info" (default) or "debug"; debug adds a [DEBUG] line
	// with the event's details after each [INFO] line.
	LogLevel string
	// TZ is the IANA zone of the times in trek.log, e.g. "Europe/Berlin".
	// Default UTC. The database always stores UTC.
	TZ string
	// ExtraActions registers keys newer TREK servers record that the
	// catalogue lacks. They may not redefine a catalogue key, and events
	// under them are checked the same way.
	ExtraActions []ActionInfo
	// BusyTimeout is how long a write waits for another writer (TREK's own
	// server) to release the database before failing. Default 5s.
	BusyTimeout time.Duration
	// Synchronous is the SQLite synchronous setting of the audit
	// connection: "FULL" (default; a committed event survives power loss)
	// or "NORMAL" (faster; in WAL mode the last commits can be lost on
	// power loss, never on a process crash).
	Synchronous string
	// QueueSize bounds the events waiting for the writer; when it is full,
	// Record waits (honouring its context). Default 4096.
	QueueSize int
	// MaxBatch bounds the events committed in one transaction. Default 512.
	MaxBatch int
	// LogMaxSizeMB and LogMaxBackups set trek.log's rotation: rotated when it
	// would pass LogMaxSizeMB megabytes, LogMaxBackups rotated files kept.
	// Defaults 10 and 4, as TREK documents. trek.log has one owner in the
	// process: while an Auditor opened with other limits writes the same
	// file, its limits apply, and these from when the last such Auditor
	// closes (a host that reloads its settings opens the new Auditor, then
	// closes the old).
	LogMaxSizeMB  int
	LogMaxBackups int
	// ChainKey is the key of the tamper-evidence chain (see Verify), as
	// bytes, at least 16. Keep it out of the database's reach: whoever
	// holds it can rewrite the chain. Default: the key in ChainKeyFile.
	ChainKey []byte
	// ChainKeyFile holds the chain key when ChainKey is empty; created with
	// a random key (mode 0600) on first start, and never for a database
	// whose rows were chained already: Open then fails with ErrChainKey,
	// since a new key would leave them unverifiable. Default ".audit_key" beside
	// the database ("data/.audit_key"); with DB set, where the library
	// cannot see the file, "data/.audit_key" below the working directory.
	ChainKeyFile string
	// SecretKeys adds to DefaultSecretKeys: detail keys containing one of
	// them (ignoring case, '_' and '-') are stored as "[REDACTED]".
	SecretKeys []string
	// ReadOnly opens an existing audit log to read it (List, Verify) and
	// changes nothing in it: SQLite opens the database read-only, which
	// must exist with the library's schema in place; no folder, key file or
	// trek.log is created; Record answers ErrReadOnly. A missing
	// ChainKeyFile is an error rather than a new key. It is what an
	// operator's tool wants, above all on a copy kept as evidence. (To read
	// a WAL-mode database SQLite creates its -shm index and an empty -wal
	// file beside it if they are missing; they hold no data.)
	ReadOnly bool
}

// ConfigFromEnv reads the variables TREK's server already uses, TRUST_PROXY,
// LOG_LEVEL and TZ, plus the library's own AUDIT_DB_PATH, AUDIT_LOG_PATH and
// AUDIT_CHAIN_KEY. AUDIT_CHAIN_KEY is read as the key file is: hex digits
// are decoded, so the file's content moves into the variable as it is; any
// other text is the key's bytes.
// Values are not checked here; Open checks them and names a bad one.
func ConfigFromEnv() Config {
	return Config{
		DBPath:     os.Getenv("AUDIT_DB_PATH"),
		LogPath:    os.Getenv("AUDIT_LOG_PATH"),
		TrustProxy: os.Getenv("TRUST_PROXY"),
		LogLevel:   os.Getenv("LOG_LEVEL"),
		TZ:         os.Getenv("TZ"),
		ChainKey:   chainKeyFromText(os.Getenv("AUDIT_CHAIN_KEY")),
	}
}

// Actor is who did it. The username and email are a snapshot kept with the
// event, so an entry still names its actor after the user is deleted.
// Either one left empty is taken from TREK's users table by UserID, where
// the database has one, when the event is stored.
type Actor struct {
	UserID   int64  // 0: anonymous
	Username string // snapshot at the time of the event, optional
	Email    string // snapshot at the time of the event, optional
}

func (a Actor) isZero() bool { return a == Actor{} }

type actorKey struct{}

// WithActor returns a context that carries the acting user, for events that
// name none. An authentication middleware calls it once per request, so
// handlers need not pass the user to every Record.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor put in ctx, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// Event is one thing that happened. Only Action is always required; the
// catalogue says what else an action needs (ActionInfo).
type Event struct {
	Action   Action         // must be in the catalogue
	Actor    Actor          // zero: the actor in ctx (WithActor), else anonymous
	Resource string         // filename, trip ID, tool name ... where applicable
	Details  map[string]any // stored as a JSON object; empty or nil: NULL
	IP       string         // empty: the client IP that Middleware put in ctx
}

// Auditor records events. It is safe for concurrent use; open one per
// process and share it.
type Auditor struct {
	actions actionSet
	trust   TrustProxy
	store   store
	log     *fileLog
	logPath string
	loc     *time.Location
	debug   bool
	redact  redactor
	// now is the clock events are stamped with and Prune checks its time
	// against: time.Now, but in tests that need events of other days.
	now func() time.Time

	maxBatch int
	queue    chan *pending
	// abandonedQueued counts the queued events no writer will write (see
	// pending.abandoned), which Stats leaves out of the queue's depth.
	abandonedQueued atomic.Int64
	// writing is held (a value sent into it) by the one caller that is
	// writing a batch; batch is that caller's scratch slice.
	writing chan struct{}
	batch   []*pending
	// The last batch written, read and set by the writer only: how many
	// events it held, how long its commit took and when that ended.
	lastBatch  int
	lastCommit time.Duration
	lastEnd    time.Time

	readOnly bool // Config.ReadOnly: Record refuses every event

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	// closing is set as Close begins: Record looks at it before preparing
	// an event, without the lock, which a host's MarshalJSON that never
	// returns would otherwise hold against Close.
	closing atomic.Bool

	closeOnce sync.Once
	closeErr  error

	stats counters

	// queued, when set (by tests, before the first Record), is called
	// each time an event enters the queue, so that a test can wait for
	// exactly the callers it started instead of polling.
	queued func()
}

// Open checks cfg, opens (or creates) the database and the log file, and
// applies the library's schema changes. Recording needs no goroutine of its
// own: callers take turns writing (see Record).
func Open(cfg Config) (_ *Auditor, err error) {
	defer func() { err = safeError(err) }()
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// The folders this Open makes are removed should it fail, while they
	// are empty: a refused setting leaves no trace. (A database file it
	// made stays: another process may have opened it meanwhile.)
	var made []string
	defer func() {
		if err != nil {
			for _, dir := range slices.Backward(made) {
				os.Remove(dir)
			}
		}
	}()
	made = missingFolders(filepath.Dir(cfg.LogPath))
	if cfg.DB == nil && !cfg.ReadOnly {
		made = append(made, missingFolders(filepath.Dir(cfg.DBPath))...)
	}
	actions, err := newActionSet(cfg.ExtraActions)
	if err != nil {
		return nil, err
	}
	trust, err := ParseTrustProxy(cfg.TrustProxy)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	loc, err := loadTZ(cfg.TZ)
	if err != nil {
		return nil, fmt.Errorf("%w: TZ %s: %w", ErrBadConfig, quoted(cfg.TZ), err)
	}
	// The key before any file is made: a key refused leaves nothing
	// behind.
	key, err := loadChainKey(cfg.ChainKey, cfg.ChainKeyFile)
	if err != nil && (cfg.ReadOnly || !errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	flog, err := openFileLog(cfg.LogPath, cfg.LogMaxSizeMB, cfg.LogMaxBackups, cfg.ReadOnly)
	if err != nil {
		return nil, err
	}
	st, err := openSQLite(cfg, actions, key)
	if err != nil {
		flog.Close()
		return nil, err
	}
	if !cfg.ReadOnly {
		// A missing key file is created here, for a database without a
		// chain; a key that did not chain the rows there is refused.
		if key, err = st.settleChainKey(context.Background(), key, len(cfg.ChainKey) == 0, cfg.ChainKeyFile, cfg.LogPath); err != nil {
			st.close()
			flog.Close()
			return nil, err
		}
	}
	flog.anchors = newAnchorSigner(key)
	a := &Auditor{
		actions:  actions,
		trust:    trust,
		store:    st,
		log:      flog,
		logPath:  cfg.LogPath,
		loc:      loc,
		debug:    cfg.LogLevel == "debug",
		redact:   newRedactor(cfg.SecretKeys),
		now:      time.Now,
		readOnly: cfg.ReadOnly,
		maxBatch: cfg.MaxBatch,
		queue:    make(chan *pending, cfg.QueueSize),
	}
	a.writing = make(chan struct{}, 1)
	a.batch = make([]*pending, 0, a.maxBatch)
	return a, nil
}

// missingFolders lists dir and those of its parents that do not exist,
// outermost first: what os.MkdirAll(dir) would make.
func missingFolders(dir string) []string {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	return missing
}

// maxQueueSize bounds QueueSize and MaxBatch, whose room is made at Open.
const maxQueueSize = 1 << 20

// loadTZ is the zone TZ names, UTC when it is empty. As the C library and
// Go's own runtime read TZ, a leading ':' is dropped, and what follows may
// be a zone's name or the path of a zone file (":/etc/localtime").
func loadTZ(tz string) (*time.Location, error) {
	tz = strings.TrimPrefix(tz, ":")
	switch {
	case tz == "":
		return time.UTC, nil
	case filepath.IsAbs(tz):
		b, err := os.ReadFile(tz)
		if err != nil {
			return nil, err
		}
		return time.LoadLocationFromTZData(filepath.Base(tz), b)
	}
	return time.LoadLocation(tz)
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.DB == nil && cfg.DBPath == "" {
		cfg.DBPath = DefaultDBPath
	}
	if cfg.LogPath == "" {
		// Where TREK keeps it: logs/trek.log beside travel.db, wherever
		// that is (trek-audit looks for it there too).
		cfg.LogPath = DefaultLogPath
		if cfg.DB == nil {
			cfg.LogPath = filepath.Join(filepath.Dir(cfg.DBPath), "logs", "trek.log")
		}
	}
	if cfg.ChainKeyFile == "" {
		dir := filepath.Dir(DefaultDBPath)
		if cfg.DB == nil {
			dir = filepath.Dir(cfg.DBPath)
		}
		cfg.ChainKeyFile = filepath.Join(dir, ".audit_key")
	}
	switch lvl := strings.ToLower(strings.TrimSpace(cfg.LogLevel)); lvl {
	case "", "info":
		cfg.LogLevel = "info"
	case "debug":
		cfg.LogLevel = "debug"
	default:
		return cfg, fmt.Errorf("%w: LOG_LEVEL %q: want info or debug", ErrBadConfig, cfg.LogLevel)
	}
	switch s := strings.ToUpper(strings.TrimSpace(cfg.Synchronous)); s {
	case "":
		cfg.Synchronous = "FULL"
	case "FULL", "NORMAL", "EXTRA":
		cfg.Synchronous = s
	default:
		return cfg, fmt.Errorf("%w: synchronous %q: want FULL, EXTRA or NORMAL", ErrBadConfig, cfg.Synchronous)
	}
	if cfg.BusyTimeout == 0 {
		cfg.BusyTimeout = DefaultBusyTimeout
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.LogMaxSizeMB == 0 {
		cfg.LogMaxSizeMB = 10
	}
	if cfg.LogMaxBackups == 0 {
		cfg.LogMaxBackups = 4
	}
	// Upper bounds: what the queue and a batch allocate up front, what
	// lumberjack counts in bytes (MaxSize<<20 in an int64), how many
	// files a folder can sensibly hold.
	for _, s := range []struct {
		name   string
		v, max int
	}{
		{"QueueSize", cfg.QueueSize, maxQueueSize}, {"MaxBatch", cfg.MaxBatch, maxQueueSize},
		{"LogMaxSizeMB", cfg.LogMaxSizeMB, 1 << 20}, {"LogMaxBackups", cfg.LogMaxBackups, 1 << 16},
	} {
		if s.v < 1 || s.v > s.max {
			return cfg, fmt.Errorf("%w: %s must be 1 to %d, got %d", ErrBadConfig, s.name, s.max, s.v)
		}
	}
	// SQLite counts the busy timeout in whole milliseconds, in an int: a
	// larger one it would read as no waiting at all.
	if cfg.BusyTimeout < time.Millisecond || cfg.BusyTimeout > math.MaxInt32*time.Millisecond {
		return cfg, fmt.Errorf("%w: BusyTimeout must be 1ms to %v, got %v", ErrBadConfig, math.MaxInt32*time.Millisecond, cfg.BusyTimeout)
	}
	if cfg.DB != nil && cfg.DB.Stats().MaxOpenConnections == 1 {
		return cfg, fmt.Errorf("%w: DB allows one open connection (SetMaxOpenConns(1)), which the library would hold for writing "+
			"while every other query on it waited: allow at least 2", ErrBadConfig)
	}
	return cfg, nil
}

// pending is an event on its way through the writer. Its done channel gets
// exactly one value: nil once the event is committed, or why it is not.
type pending struct {
	row
	label   string
	subject string
	done    chan error
	// abandoned: its caller, writing another batch, panicked; no one
	// waits for it, and it is never written (see writeBatch). Read and
	// written only by whoever holds a.writing.
	abandoned bool
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Record validates e, completes it from ctx (actor, client IP), stores it and
// writes its log line. It returns nil only once the event is committed to the
// database. A bad event (ErrUnknownAction, ErrMissingDetail,
// ErrInvalidEvent) writes nothing anywhere. If the queue to the writer is
// full, Record waits for room until ctx is done. Once the event is queued,
// Record waits for its commit whatever ctx says, so a cancelled request does
// not leave its caller unsure whether the event was stored.
//
// Callers waiting at the same time share one transaction: whichever finds
// no batch being written writes everything queued, up to MaxBatch events,
// and the others are released by its commit.
func (a *Auditor) Record(ctx context.Context, e Event) error {
	p, err := a.enqueue(ctx, &e)
	if err != nil {
		// A host's Marshaler may put anything in its error or panic:
		// escaped, as every error the library returns is.
		return safeError(err)
	}
	err = a.await(p)
	pendingPool.Put(p)
	return err
}

// enqueue is Record up to the wait: it checks and prepares e and queues
// it. From then on the event is accepted: it will be committed, by its
// own caller or another, or by Close.
func (a *Auditor) enqueue(ctx context.Context, e *Event) (*pending, error) {
	// Closed first: a host that stops on ErrClosed learns it whatever
	// the event, and a closed Auditor counts nothing more.
	if a.closing.Load() {
		return nil, ErrClosed
	}
	if a.readOnly {
		err := fmt.Errorf("%w: %s not recorded", ErrReadOnly, quoted(string(e.Action)))
		a.stats.rejected(err)
		return nil, err
	}
	p, err := a.prepare(ctx, e)
	if err != nil {
		a.stats.rejected(err)
		return nil, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		pendingPool.Put(p)
		return nil, ErrClosed
	}
	select {
	case a.queue <- p:
	default:
		// The queue is full: wait for room, but not past ctx.
		select {
		case a.queue <- p:
		case <-ctx.Done():
			pendingPool.Put(p)
			a.stats.rejected(ctx.Err())
			return nil, fmt.Errorf("audit: %s not recorded, queue full: %w", e.Action, ctx.Err())
		}
	}
	if a.queued != nil {
		a.queued()
	}
	return p, nil
}

// await waits for p's commit. Whenever no one is writing, the waiting
// caller becomes the writer and commits one batch of what is queued: a lone
// caller writes its own event at once, with no hand-off to another
// goroutine, and callers that wait together share a transaction.
func (a *Auditor) await(p *pending) error {
	for {
		select {
		case err := <-p.done:
			return err
		default:
		}
		select {
		case err := <-p.done:
			return err
		case a.writing <- struct{}{}:
			a.writeBatch(p)
			<-a.writing
		}
	}
}

// What the callers of a batch get if writing it panicked (the panic goes on
// up the writing caller's stack): before the commit, the transaction is
// rolled back and nothing is stored; after it, the events are stored and
// only their log lines may be missing, so retrying would store them twice.
// The writing caller's own event, when the batch did not hold it, is
// never stored: its caller's answer is the panic.
var (
	errWriterPanic       = fmt.Errorf("%w: writing the batch panicked", ErrStore)
	errWriterPanicStored = fmt.Errorf("%w (the event is stored in the database): the batch panicked after its commit", ErrLogWrite)
)

// queueGrowthWait is how long a writer under load waits for the queue to
// grow before it commits: a few times what a caller takes to prepare and
// queue an event.
const queueGrowthWait = 20 * time.Microsecond

// underLoad reports whether a writer starting at now should wait for
// company: only when the last commit was shared and has just ended. A lone
// caller, or one that comes after a pause, never waits.
func (a *Auditor) underLoad(now time.Time) bool {
	return a.lastBatch > 1 && now.Sub(a.lastEnd) < a.lastCommit
}

// writeBatch commits what is queued, up to MaxBatch events, in one
// transaction, and reports whether there was anything. The caller holds
// a.writing; own is its event, nil for Close.
func (a *Auditor) writeBatch(own *pending) bool {
	batch := a.batch[:0]
	// take moves what is queued into the batch, up to MaxBatch events,
	// leaving out those whose callers panicked.
	take := func() {
		for len(batch) < a.maxBatch {
			select {
			case q := <-a.queue:
				if q.abandoned {
					a.abandonedQueued.Add(-1)
				} else {
					batch = append(batch, q)
				}
			default:
				return
			}
		}
	}
	take()
	if len(batch) > 0 {
		// The writer is a caller's goroutine, whose panic a host may
		// recover (net/http does): give the batch its answer and the
		// writer's place back rather than leave both held.
		committed := false
		defer func() {
			if r := recover(); r != nil {
				perr := errWriterPanic
				if committed {
					perr = errWriterPanicStored
				}
				for _, p := range batch {
					select {
					case p.done <- perr:
					default: // answered before the panic
					}
				}
				// The writer's own event, still queued, would be written
				// by the next writer with no one told: the panic is its
				// caller's answer, and it is never written. (Unanswered
				// and not in this batch, it is still queued: every batch
				// before was answered whole.)
				if own != nil && len(own.done) == 0 && !slices.Contains(batch, own) {
					own.abandoned = true
					a.abandonedQueued.Add(1)
				}
				clear(batch)
				a.batch = batch[:0]
				<-a.writing
				panic(r)
			}
		}()
		began := time.Now()
		var more func() []*pending
		if a.underLoad(began) {
			// Right after a shared commit, the callers it released are
			// queueing their next events. The store asks for them while it
			// writes this batch's rows, so they share this commit rather
			// than wait through it for the next, and preparing them
			// overlaps with the writing: events the queue holds at once;
			// else, yielding, what it gains within queueGrowthWait; nothing
			// once it stops growing, or after a quarter of the last
			// commit's time (which bounds how much longer the write lock
			// is held, and so how long TREK's own writer can wait for
			// it). About 61 of 64 busy callers share each commit, against
			// 57 when the writer waited idle before it began, and Record
			// under load is 6 to 22% faster (two sets of interleaved
			// runs).
			more = func() []*pending {
				have, grew := len(batch), time.Now()
				for {
					take()
					if len(batch) > have || len(batch) == a.maxBatch {
						return batch[have:]
					}
					if now := time.Now(); now.Sub(grew) > queueGrowthWait || now.Sub(began) > a.lastCommit/4 {
						return nil
					}
					runtime.Gosched()
				}
			}
		}
		err := a.store.insert(context.Background(), batch, more)
		committed = err == nil
		a.settle(batch, err)
		a.lastEnd = time.Now()
		a.lastCommit = a.lastEnd.Sub(began)
		clear(batch)
	}
	a.batch = batch
	a.lastBatch = len(batch)
	return len(batch) > 0
}

// prepare turns an event into a row, or says why it can't.
func (a *Auditor) prepare(ctx context.Context, e *Event) (*pending, error) {
	info, ok := a.actions[e.Action]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not in the catalogue", ErrUnknownAction, quoted(string(e.Action)))
	}
	if err := info.check(e); err != nil {
		return nil, err
	}
	actor := e.Actor
	if actor.isZero() {
		actor, _ = ActorFrom(ctx)
	}
	// The IP is stored and logged only as a canonical address, whether the
	// event names it or WithClientIP put it in ctx: a host that passes a
	// header it read itself learns at once that it is not an address.
	ip, from := e.IP, "IP"
	if ip == "" {
		ip, from = ClientIPFrom(ctx), "client IP from the context (WithClientIP)"
	}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			if _, perr := netip.ParseAddrPort(ip); perr == nil {
				// r.RemoteAddr passed as it is: say so.
				return nil, fmt.Errorf("%w: %s: %s %s is an address with a port; give the address alone",
					ErrInvalidEvent, e.Action, from, quoted(ip))
			}
			return nil, fmt.Errorf("%w: %s: %s %s is not an IP address", ErrInvalidEvent, e.Action, from, quoted(ip))
		}
		ip = addr.Unmap().WithZone("").String()
	}
	details, err := a.redact.encode(e.Details, info.RequiredDetails...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEvent, e.Action, err)
	}
	p := pendingPool.Get().(*pending)
	p.abandoned = false
	p.row = row{
		createdAt: a.now().UTC().Truncate(time.Second),
		userID:    actor.UserID,
		username:  cleanText(actor.Username, maxActorLen),
		email:     cleanText(actor.Email, maxActorLen),
		action:    e.Action,
		resource:  cleanText(e.Resource, maxResourceLen),
		details:   details,
		ip:        ip,
	}
	p.label = info.label()
	p.subject = cleanText(subjectOf(e, &a.redact), maxResourceLen) // brief, like the stored resource
	return p, nil
}

// subjectOf picks what the log line names after the label: a trip's title
// where the event has one, else the resource. It reads the details before
// r redacts them, so it passes over a key r holds secret (a host may list
// "title" in Config.SecretKeys), as it passes over one that is absent:
// otherwise the text kept out of the database would be written to trek.log.
func subjectOf(e *Event, r *redactor) string {
	for _, k := range [...]string{"title", "trip"} {
		if s, ok := e.Details[k].(string); ok && s != "" && !r.isSecret(k) {
			return s
		}
	}
	return e.Resource
}

// settle finishes a batch the store has committed (err nil) or refused:
// it writes the batch's log lines, then releases its callers.
func (a *Auditor) settle(batch []*pending, err error) {
	if err != nil {
		err = safeError(err)
		a.stats.storeError(err)
		err = fmt.Errorf("%w: %w", ErrStore, err)
	} else {
		if lerr := safeError(a.log.writeEvents(batch, a.loc, a.debug)); lerr != nil {
			a.stats.logError(lerr)
			err = fmt.Errorf("%w (the event is stored in the database): %w", ErrLogWrite, lerr)
		}
		a.stats.recorded.Add(uint64(len(batch)))
	}
	for _, p := range batch {
		p.done <- err
	}
}

// Close stops accepting events, waits until every accepted event is committed
// and logged, then closes the database (unless it is the host's) and the log
// file. Calling it again returns the first call's result.
func (a *Auditor) Close() error {
	a.closeOnce.Do(func() {
		a.closing.Store(true)
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		// Nothing is queued from now on. Take the writer's place for good
		// and commit what is left. A batch that panics has been answered
		// and has handed the writer's place on (see writeBatch): take it
		// back, go on with the rest, close the files, and only then pass
		// the panic on, since no later call will try again.
		a.writing <- struct{}{}
		var panicked any
		for {
			more, r := a.writeBatchRecovered()
			if r != nil {
				if panicked == nil {
					panicked = r
				}
				a.writing <- struct{}{}
				continue
			}
			if !more {
				break
			}
		}
		a.closeErr = safeError(errors.Join(a.store.close(), a.log.Close()))
		if panicked != nil {
			panic(panicked)
		}
	})
	return a.closeErr
}

// closedFor answers ErrClosed, naming call, once Close has begun, and nil
// before: what every read of the database asks first.
func (a *Auditor) closedFor(call string) error {
	if a.closing.Load() {
		return fmt.Errorf("%w: %s after Close", ErrClosed, call)
	}
	return nil
}

// whileClosing adds ErrClosed to err, a read's failure, where Close began
// meanwhile: the connections closed under the read are then the likely
// cause, and a caller must know that trying again will not help.
func (a *Auditor) whileClosing(err error) error {
	if err != nil && a.closing.Load() && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// writeBatchRecovered is writeBatch for Close, with its panic returned
// rather than raised.
func (a *Auditor) writeBatchRecovered() (more bool, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	return a.writeBatch(nil), nil
}

// counters are the Auditor's health figures, updated without locks.
type counters struct {
	recorded   atomic.Uint64
	rejectedN  atomic.Uint64
	storeErrs  atomic.Uint64
	logErrs    atomic.Uint64
	lastErrMu  sync.Mutex
	lastErr    string
	lastErrAt  time.Time
	rejectedBy sync.Map // reason -> *atomic.Uint64
}

func (c *counters) rejected(err error) {
	c.rejectedN.Add(1)
	reason := "other"
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrUnknownAction, "unknown_action"}, {ErrMissingDetail, "missing_detail"},
		{ErrInvalidEvent, "invalid_event"}, {context.DeadlineExceeded, "queue_timeout"},
		{context.Canceled, "queue_cancelled"}, {ErrReadOnly, "read_only"},
	} {
		if errors.Is(err, r.err) {
			reason = r.name
			break
		}
	}
	n, _ := c.rejectedBy.LoadOrStore(reason, new(atomic.Uint64))
	n.(*atomic.Uint64).Add(1)
}

func (c *counters) storeError(err error) { c.storeErrs.Add(1); c.setLast(err) }
func (c *counters) logError(err error)   { c.logErrs.Add(1); c.setLast(err) }

func (c *counters) setLast(err error) {
	c.lastErrMu.Lock()
	c.lastErr = err.Error()
	c.lastErrAt = time.Now().UTC()
	c.lastErrMu.Unlock()
}

// Stats are the Auditor's health figures since Open, for a host to expose on
// its metrics or health endpoint. A rising StoreErrors or LogErrors means
// events are failing; LastError says why.
type Stats struct {
	Recorded    uint64            `json:"recorded"`               // events committed
	Rejected    uint64            `json:"rejected"`               // events refused before the queue
	RejectedBy  map[string]uint64 `json:"rejected_by"`            // ... by reason
	StoreErrors uint64            `json:"store_errors"`           // batches the database refused
	LogErrors   uint64            `json:"log_errors"`             // batches trek.log refused
	QueueDepth  int               `json:"queue_depth"`            // events waiting for the writer now
	LastError   string            `json:"last_error,omitempty"`   // the latest store or log error
	LastErrorAt time.Time         `json:"last_error_at,omitzero"` // when it happened, UTC
}

// Stats returns the current figures.
func (a *Auditor) Stats() Stats {
	s := Stats{
		Recorded:    a.stats.recorded.Load(),
		Rejected:    a.stats.rejectedN.Load(),
		RejectedBy:  map[string]uint64{},
		StoreErrors: a.stats.storeErrs.Load(),
		LogErrors:   a.stats.logErrs.Load(),
		QueueDepth:  len(a.queue) - int(a.abandonedQueued.Load()),
	}
	a.stats.rejectedBy.Range(func(k, v any) bool {
		s.RejectedBy[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	a.stats.lastErrMu.Lock()
	s.LastError, s.LastErrorAt = a.stats.lastErr, a.stats.lastErrAt
	a.stats.lastErrMu.Unlock()
	return s
}
