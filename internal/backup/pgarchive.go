package backup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// pgarchive.go reads what the restore needs of a pg_dump custom-format
// archive (pg_backup_archiver.c and pg_backup_custom.c in PostgreSQL): the
// table of contents, and the data blocks in the order they were written.
// Archive versions 1.12 to 1.15 (pg_dump 9.0 to 16) without compression
// are understood, which is what drguard's own backups are (pg_dump -Fc
// -Z0); for anything else readArchive returns an error and the restore
// leaves all of the work to pg_restore.

// Sections of a TOC entry (teSection).
const (
	sectionNone     = 1
	sectionPreData  = 2
	sectionData     = 3
	sectionPostData = 4
)

// Block types of the custom format's data part.
const (
	blockData  = 1
	blockBlobs = 3
)

// archiveVersion is MAKE_ARCHIVE_VERSION(major, minor, revision).
func archiveVersion(major, minor, rev int) int { return major<<16 | minor<<8 | rev }

// archiveEntry is one TOC entry, as much of it as the restore uses.
type archiveEntry struct {
	ID        int
	HasData   bool
	Tag       string
	Desc      string
	Section   int // as written; archive.phases gives the effective one
	Defn      string
	CopyStmt  string
	Namespace string
}

// archive is a parsed custom-format archive.
type archive struct {
	Version    int
	Entries    []archiveEntry
	DataStart  int64 // offset of the first data block
	intSize    int
	offSize    int
	compressed bool
}

// readArchive reads the header and the table of contents of the archive
// in path.
func readArchive(path string) (*archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	r := &archiveReader{r: bufio.NewReaderSize(f, 64<<10)}
	a, err := r.header()
	if err != nil {
		return nil, fmt.Errorf("pg_dump archive header: %w", err)
	}
	if err := r.toc(a); err != nil {
		return nil, fmt.Errorf("pg_dump archive table of contents: %w", err)
	}
	a.DataStart = r.pos
	return a, nil
}

// archiveReader decodes the archive's primitives: bytes, integers (a sign
// byte, then intSize bytes, least significant first), strings (a length,
// -1 for NULL, then the bytes) and offsets.
type archiveReader struct {
	r       *bufio.Reader
	pos     int64
	intSize int
}

// maxArchiveString bounds a string's length, against a corrupt length.
const maxArchiveString = 1 << 30

func (r *archiveReader) byte() (int, error) {
	b, err := r.r.ReadByte()
	if err != nil {
		return 0, unexpectedEOF(err)
	}
	r.pos++
	return int(b), nil
}

func (r *archiveReader) skip(n int) error {
	d, err := r.r.Discard(n)
	r.pos += int64(d)
	return unexpectedEOF(err)
}

func (r *archiveReader) int() (int, error) {
	sign, err := r.byte()
	if err != nil {
		return 0, err
	}
	v := 0
	for i := 0; i < r.intSize; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= b << (8 * i)
	}
	if sign != 0 {
		v = -v
	}
	return v, nil
}

// str returns the next string; ok is false for NULL.
func (r *archiveReader) str() (s string, ok bool, err error) {
	n, err := r.int()
	switch {
	case err != nil:
		return "", false, err
	case n < 0:
		return "", false, nil
	case n > maxArchiveString:
		return "", false, fmt.Errorf("string of %d bytes at offset %d", n, r.pos)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return "", false, unexpectedEOF(err)
	}
	r.pos += int64(n)
	return string(b), true, nil
}

// strs reads one string into each of dst, skipping it where dst is nil.
func (r *archiveReader) strs(dst ...*string) error {
	for _, d := range dst {
		s, _, err := r.str()
		if err != nil {
			return err
		}
		if d != nil {
			*d = s
		}
	}
	return nil
}

// header reads the archive header (WriteHead).
func (r *archiveReader) header() (*archive, error) {
	magic := make([]byte, 5)
	if _, err := io.ReadFull(r.r, magic); err != nil || string(magic) != "PGDMP" {
		return nil, errors.New("not a pg_dump custom-format archive")
	}
	r.pos = 5
	var v [6]int
	for i := range v {
		b, err := r.byte()
		if err != nil {
			return nil, err
		}
		v[i] = b
	}
	a := &archive{Version: archiveVersion(v[0], v[1], v[2]), intSize: v[3], offSize: v[4]}
	r.intSize = a.intSize
	switch {
	case a.Version < archiveVersion(1, 12, 0) || a.Version > archiveVersion(1, 15, 0):
		return nil, fmt.Errorf("archive version %d.%d.%d is not supported", v[0], v[1], v[2])
	case a.intSize < 1 || a.intSize > 8 || a.offSize < 1 || a.offSize > 8:
		return nil, fmt.Errorf("integer size %d, offset size %d", a.intSize, a.offSize)
	case v[5] != 1:
		return nil, fmt.Errorf("archive format %d is not the custom format", v[5])
	}
	if a.Version >= archiveVersion(1, 15, 0) {
		algorithm, err := r.byte()
		if err != nil {
			return nil, err
		}
		a.compressed = algorithm != 0
	} else {
		level, err := r.int()
		if err != nil {
			return nil, err
		}
		a.compressed = level != 0
	}
	for range 7 { // creation time
		if _, err := r.int(); err != nil {
			return nil, err
		}
	}
	return a, r.strs(nil, nil, nil) // database, server and pg_dump versions
}

// toc reads the table of contents (WriteToc) into a.
func (r *archiveReader) toc(a *archive) error {
	n, err := r.int()
	if err != nil {
		return err
	}
	if n < 0 || n > 1<<24 {
		return fmt.Errorf("%d entries", n)
	}
	a.Entries = make([]archiveEntry, 0, n)
	for range n {
		var e archiveEntry
		if e.ID, err = r.int(); err != nil {
			return err
		}
		hadDumper, err := r.int()
		if err != nil {
			return err
		}
		e.HasData = hadDumper != 0
		if err := r.strs(nil, nil, &e.Tag, &e.Desc); err != nil { // table OID, OID, tag, desc
			return err
		}
		if e.Section, err = r.int(); err != nil {
			return err
		}
		// defn, drop statement, COPY statement, schema, tablespace.
		if err := r.strs(&e.Defn, nil, &e.CopyStmt, &e.Namespace, nil); err != nil {
			return err
		}
		if a.Version >= archiveVersion(1, 14, 0) {
			if err := r.strs(nil); err != nil { // table access method
				return err
			}
		}
		if err := r.strs(nil, nil); err != nil { // owner, "with OIDs"
			return err
		}
		for { // dependencies, up to a NULL
			_, ok, err := r.str()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
		}
		if _, err := r.byte(); err != nil { // data offset: its state, then its value
			return err
		}
		if err := r.skip(a.offSize); err != nil {
			return err
		}
		a.Entries = append(a.Entries, e)
	}
	return nil
}

// phases returns each entry's effective section, as pg_restore --section
// sees it: an entry of no section belongs to the section of the entry
// before it (pre-data at the start).
func (a *archive) phases() []int {
	out := make([]int, len(a.Entries))
	cur := sectionPreData
	for i, e := range a.Entries {
		if e.Section != sectionNone {
			cur = e.Section
		}
		out[i] = cur
	}
	return out
}

// walkData calls visit with every data block of the archive in path, in
// file order, its ID and a reader of its content (the payload of its
// chunks). Whatever visit leaves unread is skipped. Blocks of large
// objects are skipped without a call.
func (a *archive) walkData(path string, visit func(id int, data io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(a.DataStart, io.SeekStart); err != nil {
		return err
	}
	r := &archiveReader{r: bufio.NewReaderSize(f, 1<<20), pos: a.DataStart, intSize: a.intSize}
	for {
		typ, err := r.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r.pos++
		id, err := r.int()
		if err != nil {
			return err
		}
		switch typ {
		case blockData:
			c := &chunkReader{r: r}
			if err := visit(id, c); err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, c); err != nil {
				return err
			}
		case blockBlobs: // each large object: its OID and its chunks, up to an OID of zero
			for {
				oid, err := r.int()
				if err != nil {
					return err
				}
				if oid == 0 {
					break
				}
				if _, err := io.Copy(io.Discard, &chunkReader{r: r}); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("pg_dump archive: unknown data block type %d at offset %d", typ, r.pos-1)
		}
	}
}

// chunkReader reads the chunks of one data block: each a length and as
// many bytes, up to a length of zero.
type chunkReader struct {
	r    *archiveReader
	left int
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		n, err := c.r.int()
		switch {
		case err != nil:
			return 0, err
		case n < 0:
			return 0, fmt.Errorf("pg_dump archive: chunk of %d bytes at offset %d", n, c.r.pos)
		case n == 0:
			c.done = true
		}
		c.left = n
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.r.Read(p)
	c.r.pos += int64(n)
	c.left -= n
	return n, unexpectedEOF(err)
}

// unexpectedEOF turns io.EOF, which inside an archive means truncation,
// into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
