package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// The tamper-evidence chain. Every row the library writes carries
// chain_seq (1, 2, 3, ... over the library's rows) and chain_mac:
//
//	mac(n) = HMAC-SHA256(key, mac(n-1) || canonical(row n))
//
// with mac(0) all zeros. Without the key, which is not in the database,
// nobody can write a row, change one or drop one and make the chain add up
// again. Rows TREK's own code inserts have no chain value; Verify counts
// them apart and never takes them for a link.

// chainKeyLen is the size of a generated key. A key from AUDIT_CHAIN_KEY
// must be at least minChainKeyLen bytes.
const (
	chainKeyLen    = 32
	minChainKeyLen = 16
)

// ErrChainKey means the chain key could not be read or created, or is too
// short.
var ErrChainKey = errors.New("audit: chain key")

// chainKeyFromText reads a key given as text (AUDIT_CHAIN_KEY): hex digits,
// as the key file holds them, decode to the key; any other text is the
// key's bytes as they are.
func chainKeyFromText(s string) []byte {
	if s == "" {
		return nil
	}
	if k, err := hex.DecodeString(strings.TrimSpace(s)); err == nil && len(k) > 0 {
		return k
	}
	return []byte(s)
}

// loadChainKey returns the configured key, or reads the key file. A
// missing key file is an error that matches fs.ErrNotExist: Open then
// creates one (settleChainKey), but only for a database with no chain yet.
func loadChainKey(key []byte, path string) ([]byte, error) {
	if len(key) > 0 {
		if len(key) < minChainKeyLen {
			return nil, fmt.Errorf("%w: the key (AUDIT_CHAIN_KEY) must be at least %d bytes: %d hex digits, or %d characters of other text",
				ErrChainKey, minChainKeyLen, 2*minChainKeyLen, minChainKeyLen)
		}
		return key, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrChainKey, path, err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < minChainKeyLen {
		return nil, fmt.Errorf("%w: %s does not hold a hex key of at least %d bytes", ErrChainKey, path, minChainKeyLen)
	}
	return k, nil
}

// createChainKey writes a new key to a temporary file and links it into
// place, so a process opening the same new data folder at the same moment
// finds either no key file or a whole one, never a half-written one.
func createChainKey(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w", ErrChainKey, dir, err)
	}
	k := make([]byte, chainKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChainKey, err)
	}
	f, err := os.CreateTemp(dir, ".audit_key-*")
	if err != nil {
		return nil, fmt.Errorf("%w: creating a key in %s: %w", ErrChainKey, dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.WriteString(hex.EncodeToString(k) + "\n")
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("%w: writing %s: %w", ErrChainKey, tmp, err)
	}
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return loadChainKey(nil, path) // another process was first: use its key
	} else if err != nil {
		return nil, fmt.Errorf("%w: creating %s: %w", ErrChainKey, path, err)
	}
	// The folder's entry for the file is durable only once the folder is
	// synced: without it, a power cut could keep rows chained under the
	// key (committed with a sync of their own) and lose the key file.
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("%w: syncing %s: %w", ErrChainKey, dir, err)
	}
	return k, nil
}

// syncDir syncs the folder dir, where the system allows it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems (network, FUSE) refuse to sync a folder (EINVAL);
	// Windows cannot open one for it.
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) && runtime.GOOS != "windows" {
		return err
	}
	return nil
}

// settleChainKey makes sure that the store chains new rows with the key
// that chained the rows before them. Chaining on under another key would
// leave every row unverifiable by either key, and a key made anew where
// one went missing would let whoever removed it start the chain over.
//
// key is nil when the key file is missing (and AUDIT_CHAIN_KEY unset): a
// key is created then only if audit_log holds no chained row, as on first
// start. Otherwise the key must verify the newest chained row that can be
// checked (see tailVerifies and olderRowVerifies), or have tagged one of the chain heads
// in trek.log (logPath) and its rotated files, an acknowledgement or a
// record of a pruning, which no one without the key can write: rows
// altered or forged at the end of the table then do not stop TREK from
// starting (Verify reports them) while trek.log holds a chain head, or
// the database such a record.
func (s *sqliteStore) settleChainKey(ctx context.Context, key []byte, fromFile bool, path, logPath string) ([]byte, error) {
	tail, err := s.chainedTail(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, describe("reading the newest chained rows", err))
	}
	if key == nil {
		if len(tail) == 0 {
			key, err = createChainKey(path)
		} else if key, err = loadChainKey(nil, path); errors.Is(err, fs.ErrNotExist) {
			// (Read again: another process opening the same new data
			// folder may have created it, and chained rows, meanwhile.)
			return nil, fmt.Errorf("%w: %s is missing, but audit_log holds rows chained under a key (the newest is row %d). "+
				"Restore the key file from a backup, or set AUDIT_CHAIN_KEY to the key; "+
				"a new key would leave every row before it unverifiable. If the key is lost for good, see the README (Tamper evidence)",
				ErrChainKey, path, tail[0].id)
		}
		if err != nil {
			return nil, err
		}
		s.chain = newChainer(key)
	}
	verified, checked := tailVerifies(s.chain, tail)
	if len(tail) == 0 {
		verified = true // no chain yet: nothing to check the key against
	} else if !checked {
		// No row of the tail can be checked (rows forged at the end with
		// positions that do not follow one another): look further back.
		if verified, err = s.olderRowVerifies(ctx, tail[len(tail)-1]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStore, describe("reading chained rows", err))
		}
	}
	if !verified && !anchorTagged(ctx, logPath, key) && !s.recordTagged(ctx, key) {
		from := "AUDIT_CHAIN_KEY (Config.ChainKey)"
		if fromFile {
			from = path
		}
		return nil, fmt.Errorf("%w: the key in %s is not the one that chained audit_log, or the newest rows were altered: "+
			"none of the newest chained rows (from row %d) verifies under it, it tagged none of the chain heads in %s and its rotated files, "+
			"and no acknowledgement or record of a pruning either. "+
			"Restore the key the rows were written with; trek-audit verify tells what is wrong",
			ErrChainKey, from, tail[0].id, logPath)
	}
	return key, nil
}

// recordTagged reports whether key tagged an acknowledgement or a record
// of a pruning, which no one without the key can make, as a chain head:
// read only where neither the newest rows nor trek.log confirm the key. A
// table that cannot be read, or is not the library's, says nothing.
func (s *sqliteStore) recordTagged(ctx context.Context, key []byte) bool {
	if p, err := readPrunings(ctx, s.conn, key); err == nil && len(p.list) > 0 {
		return true
	}
	acks, err := readAcks(ctx, s.conn, key)
	return err == nil && len(acks.list) > 0
}

// anchorTagged reports whether key tagged one of the chain heads in the
// trek.log at logPath or its rotated files, newest first. Read only where
// the newest rows do not confirm the key, it reads up to the 50 MB that
// rotation keeps; a file it cannot read (a copy left there by another
// user) is passed over, not taken to say anything.
func anchorTagged(ctx context.Context, logPath string, key []byte) bool {
	files, _ := logFiles(logPath)
	s := newAnchorSigner(key)
	for _, f := range files {
		var found anchors
		found.readFile(ctx, f, s) // what was read before an error counts
		if len(found.list) > 0 {
			return true
		}
	}
	return false
}

// chainTailLen is how many of the newest chained rows settleChainKey reads.
const chainTailLen = 4

// tailVerifies reports whether c's key verifies one of the rows of tail
// (the newest chained rows, newest first) that can be checked: those whose
// predecessor in the chain is in tail too, or that are the chain's first;
// checked says whether there was one.
func tailVerifies(c *chainer, tail []*chainRow) (verified, checked bool) {
	for i, r := range tail {
		prev := zeroMac
		switch {
		case i+1 < len(tail) && tail[i+1].seq == r.seq-1 && tail[i+1].mac != nil:
			prev = tail[i+1].mac
		case r.seq != 1:
			continue
		}
		checked = true
		if r.mac != nil && c.matches(prev, &r.chainFields, r.mac) {
			return true, true
		}
	}
	return false, checked
}

// olderRowsChecked bounds how far back olderRowVerifies reads.
const olderRowsChecked = 1 << 16

// olderRowVerifies walks the chained rows older than from, newest first,
// to the first that can be checked (its predecessor in the chain right
// before it, or the chain's first), and reports whether the store's key
// verifies it. Rows whose positions do not follow one another, as rows
// forged at the end may be made, are passed over; after olderRowsChecked
// rows without one it reports false, and only a chain head in trek.log
// can then vouch for the key.
func (s *sqliteStore) olderRowVerifies(ctx context.Context, from *chainRow) (bool, error) {
	rows, err := s.conn.QueryContext(ctx, `SELECT `+chainRowCols+` FROM audit_log
		WHERE chain_seq IS NOT NULL AND id < ? ORDER BY id DESC LIMIT ?`, from.id, olderRowsChecked)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	// Two rows to scan into in turn: each read stays as the newer one
	// while the next is read.
	newer, spare := from, [2]*chainRow{new(chainRow), new(chainRow)}
	for i := 0; rows.Next(); i++ {
		older := spare[i%2]
		if _, err := scanChainRow(rows, older); err != nil {
			return false, err
		}
		if newer.mac != nil && older.mac != nil && older.seq == newer.seq-1 {
			return s.chain.matches(older.mac, &newer.chainFields, newer.mac), nil
		}
		if older.seq == 1 {
			return older.mac != nil && s.chain.matches(zeroMac, &older.chainFields, older.mac), nil
		}
		newer = older
	}
	return false, rows.Err()
}

// chainFields are the parts of a row the chain covers. The id is among
// them: a row given another id, or rows renumbered to make room for one
// the key did not chain, no longer verify. user_id is not: TREK's foreign
// key sets it to NULL when the user is deleted, which is not tampering.
// actor_id, the library's own copy, is covered instead, and Verify checks
// that user_id is either it or NULL (and counts the NULLs whose user still
// exists: VerifyReport.ClearedUserIDs).
type chainFields struct {
	seq       int64
	id        int64
	createdAt string
	actorID   int64 // 0: none (NULL); the library never stores 0
	action    string
	resource  nullStr
	details   nullStr
	ip        nullStr
	username  nullStr
	email     nullStr
}

type nullStr struct {
	s     string
	valid bool
}

func ns(s string) nullStr { return nullStr{s, s != ""} }

// chainer computes macs with one reusable HMAC state.
type chainer struct {
	key []byte
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newChainer(key []byte) *chainer {
	return &chainer{key: key, mac: hmac.New(sha256.New, key)}
}

// next returns mac(n) from mac(n-1) and row n.
func (c *chainer) next(prev []byte, f *chainFields) []byte {
	c.write(prev, f)
	return c.mac.Sum(nil)
}

// matches reports whether row f, chained after prev, has the chain value
// want. It allocates nothing, for Verify's walk over every row.
func (c *chainer) matches(prev []byte, f *chainFields, want []byte) bool {
	c.write(prev, f)
	return hmac.Equal(c.mac.Sum(c.sum[:0]), want)
}

// write feeds the HMAC with prev and row f's canonical encoding. The
// encoding is unambiguous: every field is tagged and length-prefixed, and
// NULL differs from the empty string and from 0.
func (c *chainer) write(prev []byte, f *chainFields) {
	b := c.buf[:0]
	b = append(b, chainEncoding)
	b = binary.AppendVarint(b, f.seq)
	b = binary.AppendVarint(b, f.id)
	b = appendChainStr(b, nullStr{f.createdAt, true})
	if f.actorID == 0 {
		b = append(b, 0)
	} else {
		b = binary.AppendVarint(append(b, 1), f.actorID)
	}
	b = appendChainStr(b, nullStr{f.action, true})
	for _, s := range [...]nullStr{f.resource, f.details, f.ip, f.username, f.email} {
		b = appendChainStr(b, s)
	}
	c.buf = b
	c.mac.Reset()
	c.mac.Write(prev)
	c.mac.Write(b)
}

// chainEncoding is the version of write's encoding. Version 2 added the
// row's id and tells a NULL actor_id from 0.
const chainEncoding = 2

func appendChainStr(b []byte, s nullStr) []byte {
	if !s.valid {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(s.s)))
	return append(b, s.s...)
}

// zeroMac is mac(0), the link before the first row.
var zeroMac = make([]byte, sha256.Size)

// anchorTagLen is the length of an anchor's tag in bytes (128 bits), written
// as hex.
const anchorTagLen = 16

// anchorSigner makes and checks the tags of the chain-head lines in
// trek.log. Verify trusts those lines to find rows cut off the end of the
// table, and trek.log also holds text users typed and lines the host wrote
// through LogWriter: the tag, an HMAC under a key derived from the chain
// key, is what no one without the key can put on a line. It is used by one
// goroutine at a time (the writer, or one Verify).
type anchorSigner struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newAnchorSigner(chainKey []byte) *anchorSigner {
	// A key of its own, so that no tag can ever equal a row's chain value.
	derive := hmac.New(sha256.New, chainKey)
	derive.Write([]byte("trek-audit chain anchor v1"))
	return &anchorSigner{mac: hmac.New(sha256.New, derive.Sum(nil))}
}

// tag computes the tag of the anchor for row id at chain position seq with
// chain value macHex, as the line spells it.
func (s *anchorSigner) tag(id, seq int64, macHex []byte) []byte {
	b := binary.AppendVarint(s.buf[:0], id)
	b = binary.AppendVarint(b, seq)
	b = append(b, macHex...)
	s.buf = b
	s.mac.Reset()
	s.mac.Write(b)
	return s.mac.Sum(s.sum[:0])[:anchorTagLen]
}

// appendTag appends the tag, in hex.
func (s *anchorSigner) appendTag(dst []byte, id, seq int64, macHex []byte) []byte {
	return hex.AppendEncode(dst, s.tag(id, seq, macHex))
}

// valid reports whether tagHex is the tag of that anchor.
func (s *anchorSigner) valid(id, seq int64, macHex, tagHex []byte) bool {
	var want [anchorTagLen]byte
	if len(tagHex) != 2*anchorTagLen {
		return false
	}
	if _, err := hex.Decode(want[:], tagHex); err != nil {
		return false
	}
	return hmac.Equal(s.tag(id, seq, macHex), want[:])
}
