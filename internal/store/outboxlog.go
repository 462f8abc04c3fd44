package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The outbox is an append-only log of segment files in OutboxDirName,
// each named by the sequence number of its first record. A record is a
// 16-byte header (payload length, CRC-32C of sequence and payload, the
// sequence) and the payload. Intake appends a whole group of records with
// one write on a file opened O_DSYNC, so a group commit costs one system
// call: at GOMAXPROCS=1 every return from a blocking call waits for the
// one P behind the request handlers, so the number of calls per commit
// decides intake latency. A crash can leave a torn group at the end of the
// last segment; it was never acknowledged and is cut off at open.

// OutboxDirName is the outbox's directory inside the storage directory.
const OutboxDirName = "outbox"

const (
	recordHeader = 16
	// maxRecord bounds one payload; larger lengths mean corruption.
	maxRecord = 64 << 20
	// defaultSegmentSize is the size after which intake starts a new
	// segment; whole segments are deleted once acknowledged.
	defaultSegmentSize = 32 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// segment is one log file and where each of its records starts.
type segment struct {
	first uint64  // sequence of the first record (the file's name)
	offs  []int64 // offs[i] is where record first+i starts
	size  int64   // bytes of valid records
	path  string
}

func (g *segment) last() uint64 { return g.first + uint64(len(g.offs)) - 1 }

// outboxLog is the log's state; appends come from the store's commit loop
// only, reads from the engine.
type outboxLog struct {
	dir         string
	segmentSize int64
	mu          sync.RWMutex // guards segs, next and the files' valid sizes
	segs        []*segment   // in sequence order; the last is appended to
	next        uint64       // sequence of the next record
	w           *os.File     // the last segment, O_APPEND|O_DSYNC
	wbuf        []byte       // append's buffer, reused
	// broken is set when a failed write could not be undone; every later
	// append fails with it.
	broken error
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d.log", first) }

// openOutboxLog opens the log in dir, checking every record, cutting a
// torn tail off the last segment and starting numbering after both the
// log's last record and acked, the journal's watermark.
func openOutboxLog(dir string, acked uint64) (*outboxLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create outbox directory: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	l := &outboxLog{dir: dir, segmentSize: defaultSegmentSize, next: acked + 1}
	for _, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), ".log"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("outbox: unexpected file %s", name)
		}
		l.segs = append(l.segs, &segment{first: first, path: name})
	}
	slices.SortFunc(l.segs, func(a, b *segment) int { return cmp.Compare(a.first, b.first) })
	for i, g := range l.segs {
		last := i == len(l.segs)-1
		if err := g.scan(last); err != nil {
			return nil, err
		}
		if i > 0 && g.first != l.segs[i-1].first+uint64(len(l.segs[i-1].offs)) {
			return nil, fmt.Errorf("outbox: segment %s does not follow %s", g.path, l.segs[i-1].path)
		}
		l.next = max(l.next, g.first+uint64(len(g.offs)))
	}
	if n := len(l.segs); n > 0 && l.segs[n-1].first+uint64(len(l.segs[n-1].offs)) < l.next {
		// Every record is at or below the journal's watermark: the log is
		// garbage, and new records must be numbered after the watermark.
		for _, g := range l.segs {
			if err := os.Remove(g.path); err != nil {
				return nil, fmt.Errorf("outbox: %w", err)
			}
		}
		l.segs = nil
	}
	if len(l.segs) == 0 {
		if err := l.newSegment(); err != nil {
			return nil, err
		}
	} else if err := l.openWriter(); err != nil {
		return nil, err
	}
	return l, nil
}

// scan reads a segment's records. In the last segment the first bad record
// ends the log (a write torn by a crash) and is cut off; elsewhere it is
// corruption, reported so that no alert is silently dropped.
func (g *segment) scan(last bool) error {
	f, err := os.Open(g.path)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("outbox: read %s: %w", g.path, err)
	}
	var off int64
	for off < int64(len(data)) {
		_, err := parseRecord(data[off:], g.first+uint64(len(g.offs)))
		if err != nil {
			if !last {
				return fmt.Errorf("outbox: %s is corrupt at offset %d: %v", g.path, off, err)
			}
			if err := os.Truncate(g.path, off); err != nil {
				return fmt.Errorf("outbox: cut torn tail of %s: %w", g.path, err)
			}
			break
		}
		g.offs = append(g.offs, off)
		off += recordHeader + int64(binary.BigEndian.Uint32(data[off:]))
	}
	g.size = off
	return nil
}

// parseRecord checks the record at the start of b, which must carry
// sequence seq, and returns its payload.
func parseRecord(b []byte, seq uint64) ([]byte, error) {
	if len(b) < recordHeader {
		return nil, errors.New("short header")
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxRecord || int64(len(b)) < recordHeader+int64(n) {
		return nil, errors.New("short record")
	}
	if got := binary.BigEndian.Uint64(b[8:]); got != seq {
		return nil, fmt.Errorf("sequence %d, want %d", got, seq)
	}
	payload := b[recordHeader : recordHeader+n]
	if crc32.Update(crc32.Checksum(b[8:16], crcTable), crcTable, payload) != binary.BigEndian.Uint32(b[4:]) {
		return nil, errors.New("checksum mismatch")
	}
	return payload, nil
}

// appendRecord appends payload as record seq to buf.
func appendRecord(buf []byte, seq uint64, payload []byte) []byte {
	var h [recordHeader]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(payload)))
	binary.BigEndian.PutUint64(h[8:], seq)
	binary.BigEndian.PutUint32(h[4:], crc32.Update(crc32.Checksum(h[8:16], crcTable), crcTable, payload))
	return append(append(buf, h[:]...), payload...)
}

func (l *outboxLog) openWriter() error {
	g := l.segs[len(l.segs)-1]
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_APPEND|syscall.O_DSYNC, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	l.w = f
	return nil
}

// newSegment starts a segment at next and makes its name durable.
func (l *outboxLog) newSegment() error {
	g := &segment{first: l.next, path: filepath.Join(l.dir, segmentName(l.next))}
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close(), syncDir(l.dir)); err != nil {
		return fmt.Errorf("outbox: create %s: %w", g.path, err)
	}
	if l.w != nil {
		_ = l.w.Close()
		l.w = nil
	}
	l.segs = append(l.segs, g)
	return l.openWriter()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// append writes payloads as the next records with one durable write and
// returns the first sequence used. A failed write is cut back off so that
// the log never holds records whose callers were told they failed; if that
// is impossible the log refuses every later append.
func (l *outboxLog) append(payloads [][]byte) (uint64, error) {
	l.mu.RLock()
	first, g, broken := l.next, l.segs[len(l.segs)-1], l.broken
	l.mu.RUnlock()
	if broken != nil {
		return 0, broken
	}
	buf := l.wbuf[:0]
	offs := make([]int64, len(payloads))
	for i, p := range payloads {
		offs[i] = g.size + int64(len(buf))
		buf = appendRecord(buf, first+uint64(i), p)
	}
	l.wbuf = buf
	if _, err := l.w.Write(buf); err != nil {
		if terr := l.w.Truncate(g.size); terr != nil {
			l.mu.Lock()
			l.broken = fmt.Errorf("outbox write failed (%v) and could not be undone: %v; restart drguard", err, terr)
			l.mu.Unlock()
		}
		return 0, fmt.Errorf("outbox write: %w", err)
	}
	l.mu.Lock()
	g.offs = append(g.offs, offs...)
	g.size += int64(len(buf))
	l.next = first + uint64(len(payloads))
	l.mu.Unlock()
	if g.size >= l.segmentSize {
		l.mu.Lock()
		if err := l.newSegment(); err != nil {
			l.broken = err
		}
		l.mu.Unlock()
	}
	return first, nil
}

// read returns up to limit (0: all) payloads from sequence from on, copied
// out of the files, and the sequence of the first.
func (l *outboxLog) read(from uint64, limit int) ([][]byte, uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out [][]byte
	var first uint64
	for _, g := range l.segs {
		if len(g.offs) == 0 || g.last() < from {
			continue
		}
		i := 0
		if from > g.first {
			i = int(from - g.first)
		}
		j := len(g.offs)
		if limit > 0 {
			j = min(j, i+limit-len(out))
		}
		end := g.size
		if j < len(g.offs) {
			end = g.offs[j]
		}
		data, err := readRange(g.path, g.offs[i], end)
		if err != nil {
			return nil, 0, err
		}
		if out == nil {
			first = g.first + uint64(i)
		}
		for k := i; k < j; k++ {
			p, err := parseRecord(data[g.offs[k]-g.offs[i]:], g.first+uint64(k))
			if err != nil {
				return nil, 0, fmt.Errorf("outbox: record %d in %s: %v", g.first+uint64(k), g.path, err)
			}
			out = append(out, p)
		}
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, first, nil
}

func readRange(path string, from, to int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	data := make([]byte, to-from)
	if _, err := f.ReadAt(data, from); err != nil {
		return nil, fmt.Errorf("outbox: read %s: %w", path, err)
	}
	return data, nil
}

// trim deletes the segments whose every record is at or below acked,
// never the one being appended to.
func (l *outboxLog) trim(acked uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].first <= acked+1 {
		if err := os.Remove(l.segs[n].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.segs = l.segs[n:]
			return fmt.Errorf("outbox: %w", err)
		}
		n++
	}
	l.segs = l.segs[n:]
	return nil
}

// health returns why appends fail, or nil.
func (l *outboxLog) health() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.broken
}

func (l *outboxLog) close() error {
	if l.w == nil {
		return nil
	}
	return l.w.Close()
}
