// Command trek-audit is the operator's tool for TREK's audit log: it checks
// the tamper-evidence chain, lists, follows and exports the entries, and
// counts them, working on the same data/travel.db and data/logs/trek.log
// as TREK's server, while the server runs.
//
// Usage:
//
//	trek-audit [--db PATH] [--log PATH] [--key-file PATH] <command> [flags]
//
// Commands: verify, acknowledge, prune, list, tail, export, actions, stats. Run
// "trek-audit <command> -h" for each one's flags and an example.
//
// Exit status: 0 on success (verify: the chain is intact), 1 only from
// verify when the log was tampered with, 2 when the command could not do
// its job (bad flags, a database that is missing or unreadable, no chain
// key).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	_ "time/tzdata" // TZ names resolve where the system has no zone files (a scratch image)
	"unicode/utf8"

	"github.com/trek-go/audit"
)

// Exit statuses.
const (
	exitOK       = 0
	exitTampered = 1 // verify only
	exitError    = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand and its help.
type command struct {
	name     string
	synopsis string // the usage line after "trek-audit"
	summary  string // one line for the command list
	about    string // the paragraph -h prints
	example  string
	// run registers its flags on fs, which has the global ones, and
	// parses args with c.parse.
	run func(ctx context.Context, c *cli, fs *flag.FlagSet, args []string) int
}

// commands in the order the help lists them.
var commands []*command

func init() {
	commands = []*command{verifyCmd, acknowledgeCmd, pruneCmd, listCmd, tailCmd, exportCmd, actionsCmd, statsCmd}
}

func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// cli is what every command shares: the output streams and the global
// flags, which are accepted before the command name and after it.
type cli struct {
	stdout, stderr io.Writer
	db             string // --db
	log            string // --log; empty: logs/trek.log beside the database
	keyFile        string // --key-file; empty: .audit_key beside the database
	// noLog: trek.log is not read at all (verify --no-anchors), so that a
	// log the operator may not read does not stop a check of the chain.
	noLog bool
}

// run is the whole program; main only adds the signals and the exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{
		stdout: stdout,
		stderr: stderr,
		db:     envOr("AUDIT_DB_PATH", audit.DefaultDBPath),
		log:    os.Getenv("AUDIT_LOG_PATH"),
	}
	top := flag.NewFlagSet("trek-audit", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	c.globalFlags(top)
	switch err := top.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		c.usage(stdout, top)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "trek-audit: %s\n\n", errorText(err))
		c.usage(stderr, top)
		return exitError
	case top.NArg() == 0:
		c.usage(stderr, top)
		return exitError
	}
	name, rest := top.Arg(0), top.Args()[1:]
	if name == "help" {
		if len(rest) == 0 {
			c.usage(stdout, top)
			return exitOK
		}
		name, rest = rest[0], []string{"-h"}
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "trek-audit: unknown command %q\n\n", name)
		c.usage(stderr, top)
		return exitError
	}
	return cmd.run(ctx, c, c.flags(cmd), rest)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (c *cli) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.db, "db", c.db, "TREK's SQLite database (env AUDIT_DB_PATH)")
	fs.StringVar(&c.log, "log", c.log, "trek.log, where the chain heads are recorded; its rotated files are read too (env AUDIT_LOG_PATH; default logs/trek.log beside the database)")
	fs.StringVar(&c.keyFile, "key-file", c.keyFile, "the chain key file, when AUDIT_CHAIN_KEY is not set (default .audit_key beside the database)")
}

func (c *cli) usage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprint(w, `trek-audit checks and reads TREK's audit log: the audit_log table in TREK's
SQLite database and the chain heads recorded in trek.log. It is safe to run
while TREK's server is running.

Usage:
  trek-audit [global flags] <command> [flags]

Commands:
`)
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Run "trek-audit <command> -h" for a command's flags and an example.

Exit status: 0 success (verify: intact), 1 verify found tampering,
2 the command could not do its job (bad flags, missing or unreadable
database, no chain key).

Global flags (also accepted after the command):
`)
	printFlags(w, top)
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// flags returns the flag set of cmd, with the global flags on it.
func (c *cli) flags(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are printed by parse
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: trek-audit %s\n\n%s\n\nExample:\n  %s\n\nFlags:\n",
			cmd.synopsis, strings.TrimSpace(cmd.about), cmd.example)
		fs.PrintDefaults()
	}
	c.globalFlags(fs)
	return fs
}

// parse parses args into fs. When it returns ok false, the command is done
// and code is its exit status: 0 after -h, 2 after a bad flag.
func (c *cli) parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(c.stdout)
		fs.Usage()
		return exitOK, false
	case err != nil:
		fmt.Fprintf(c.stderr, "trek-audit %s: %s\n\n", fs.Name(), errorText(err))
		fs.SetOutput(c.stderr)
		fs.Usage()
		return exitError, false
	}
	return 0, true
}

// fail prints err for the command and returns exitError. The error's text
// is escaped as stored values are: it can quote names and messages from
// the database, which whoever can write to travel.db chooses.
func (c *cli) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "trek-audit %s: %s\n", cmd, errorText(err))
	return exitError
}

// logPath is trek.log: --log, else where TREK keeps it, data/logs/trek.log
// for data/travel.db.
func (c *cli) logPath() string {
	if c.log != "" {
		return c.log
	}
	return filepath.Join(filepath.Dir(c.db), "logs", "trek.log")
}

// keyPath is where the chain key file is looked for.
func (c *cli) keyPath() string {
	if c.keyFile != "" {
		return c.keyFile
	}
	return filepath.Join(filepath.Dir(c.db), ".audit_key")
}

// checkDB makes sure the database exists before anything opens it:
// audit.Open and SQLite itself would create an empty one.
func (c *cli) checkDB() error {
	st, err := os.Stat(c.db)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no database at %s (set --db or AUDIT_DB_PATH)", c.db)
	case err != nil:
		return fmt.Errorf("database %s: %w", c.db, err)
	case st.IsDir():
		return fmt.Errorf("database %s is a folder, not TREK's SQLite file", c.db)
	}
	return nil
}

// open opens the Auditor read-only: the operator's commands, acknowledge
// and prune aside (openAs), never change
// the database, the key file or trek.log, so they are safe on a copy kept
// as evidence. The database must have been opened by TREK's server (or
// the library) at least once, so that the library's schema is in place.
//
// withKey: the command needs the chain key (verify). It comes from
// AUDIT_CHAIN_KEY or the key file, which must exist: a new key verifies
// nothing. The other commands read no chain value, so they get a throwaway
// key and need no key file.
func (c *cli) open(withKey bool) (*audit.Auditor, error) {
	return c.openAs(withKey, true)
}

// openAs is open, read-only or not. Only acknowledge and prune --reason
// write: acknowledge a row of its own to the database, never to
// audit_log, the key file or trek.log; prune the rows it deletes from
// audit_log and a row of its own.
func (c *cli) openAs(withKey, readOnly bool) (*audit.Auditor, error) {
	if err := c.checkDB(); err != nil {
		return nil, err
	}
	cfg := audit.Config{DBPath: c.db, LogPath: c.logPath(), ChainKeyFile: c.keyPath(), ReadOnly: readOnly}
	if c.noLog && readOnly {
		// A path that is nowhere: a folder made and removed at once. A
		// read-only Auditor creates nothing there, and finds no log.
		dir, err := os.MkdirTemp("", "trek-audit-no-log-")
		if err != nil {
			return nil, err
		}
		if err := os.Remove(dir); err != nil {
			return nil, err
		}
		cfg.LogPath = filepath.Join(dir, "trek.log")
	}
	if withKey {
		if k := audit.ConfigFromEnv().ChainKey; len(k) > 0 {
			cfg.ChainKey = k
		} else if _, err := os.Stat(cfg.ChainKeyFile); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("no chain key: AUDIT_CHAIN_KEY is not set and there is no key file at %s (set --key-file or AUDIT_CHAIN_KEY to the key TREK's server uses)", cfg.ChainKeyFile)
			}
			return nil, fmt.Errorf("chain key file %s: %w", cfg.ChainKeyFile, err)
		}
	} else {
		cfg.ChainKey = make([]byte, 32)
		rand.Read(cfg.ChainKey)
	}
	return audit.Open(cfg)
}

// keySource names where verify's key came from, for its summary.
func (c *cli) keySource() string {
	if os.Getenv("AUDIT_CHAIN_KEY") != "" {
		return "AUDIT_CHAIN_KEY"
	}
	return c.keyPath()
}

// errorText is err's text for the terminal: as it is when every character
// is printable (the library's own errors are; see escape for why a stored
// value's backslashes are doubled, which would only clutter the quoted
// names of an error), escaped otherwise.
func errorText(err error) string {
	s := err.Error()
	for _, r := range s {
		if r == utf8.RuneError || !visibleRune(r) {
			return escape(s)
		}
	}
	return s
}
