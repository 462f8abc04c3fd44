package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// copyPieceSize is about how many bytes of rows one piece carries: the
// unit that the connections of loadTables share.
const copyPieceSize = 1 << 20

// copySessionSQL sets up a connection of loadTables as pg_restore sets up
// its own (_doSetFixedOutputState), $1 being the dump's
// standard_conforming_strings. The client encoding is UTF-8 already (pgx).
const copySessionSQL = `SELECT pg_catalog.set_config(name, value, false) FROM (VALUES
	('statement_timeout', '0'), ('lock_timeout', '0'), ('idle_in_transaction_session_timeout', '0'),
	('standard_conforming_strings', $1), ('search_path', ''), ('check_function_bodies', 'false'),
	('xmloption', 'content'), ('client_min_messages', 'warning'), ('row_security', 'off')) AS s(name, value)`

// copyPiece is whole rows of one table, in COPY text format.
type copyPiece struct {
	id int // the TABLE DATA entry's dump ID
	b  []byte
}

// loadTables loads the rows of p.tables from the dump in path into conn
// over streams connections. One goroutine reads the data blocks in file
// order and cuts them into pieces of whole rows; each connection takes the
// next piece and adds it to its COPY into that piece's table, ending the
// COPY when the next piece is another table's. A large table's rows are
// thus loaded over every connection, and small tables run side by side as
// with pg_restore -j. Rows are cut at newlines, which in COPY text format
// (the only one pg_dump writes) end a row and appear nowhere else.
func (s *Service) loadTables(ctx context.Context, p *splitRestore, path string, conn conninfo, streams int) error {
	start := s.now()
	conns := make([]*pgx.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			closeConn(c)
		}
	}()
	for range streams {
		c, err := connect(ctx, conn)
		if err != nil {
			return fmt.Errorf("connect to load the tables' rows: %v", err)
		}
		conns = append(conns, c)
		if _, err := c.Exec(ctx, copySessionSQL, p.stdStrings); err != nil {
			return fmt.Errorf("set up the session to load the tables' rows: %v", conn.redactErr(err))
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	pieces := make(chan copyPiece, streams)
	free := make(chan []byte, 2*streams+2)
	var loaded atomic.Int64
	g.Go(func() error {
		defer close(pieces)
		return p.arch.walkData(path, func(id int, data io.Reader) error {
			if _, ok := p.tables[id]; !ok {
				return nil
			}
			return cutRows(ctx, data, func(b []byte) error {
				loaded.Add(int64(len(b)))
				select {
				case pieces <- copyPiece{id, b}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, free)
		})
	})
	for _, c := range conns {
		g.Go(func() error {
			src := &copySource{ctx: ctx, pieces: pieces, free: free}
			for {
				piece, ok, err := src.take()
				if err != nil || !ok {
					return err
				}
				src.start(piece)
				e := p.tables[piece.id]
				if _, err := c.PgConn().CopyFrom(ctx, src, e.CopyStmt); err != nil {
					return fmt.Errorf("load the rows of %s.%s: %v", e.Namespace, e.Tag, conn.redactErr(err))
				}
			}
		})
	}
	err := g.Wait()
	s.log.Info("restore loaded the tables' rows", "tables", len(p.tables), "connections", streams,
		"bytes", loaded.Load(), "duration", s.now().Sub(start), "err", err)
	return err
}

// cutRows reads a table's rows in COPY text format from r and hands them
// to emit in pieces of about copyPieceSize bytes, each ending at the end
// of a row (a newline), in order. It leaves out pg_dump's end-of-data
// marker (a line "\." and blank lines) at the end. Buffers come from free
// when it has one; emit's receiver may return them there.
func cutRows(ctx context.Context, r io.Reader, emit func([]byte) error, free chan []byte) error {
	get := func() []byte {
		select {
		case b := <-free:
			return b[:0]
		default:
			return make([]byte, 0, copyPieceSize+64<<10)
		}
	}
	buf := get()
	var pending []byte // the last full piece, held until the next is cut
	for {
		if len(buf) == cap(buf) { // a row longer than the buffer
			buf = slices.Grow(buf, cap(buf))
		}
		old := len(buf)
		n, err := r.Read(buf[old:cap(buf)])
		buf = buf[:old+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(buf) < copyPieceSize {
			continue
		}
		from := 0
		if old >= copyPieceSize { // buf[:old] has no newline: searched before
			from = old
		}
		i := bytes.LastIndexByte(buf[from:], '\n')
		if i < 0 {
			continue
		}
		i += from
		next := append(get(), buf[i+1:]...)
		if pending != nil {
			if err := emit(pending); err != nil {
				return err
			}
		}
		pending, buf = buf[:i+1], next
	}
	// The marker is at the very end: within the last few bytes, which are
	// all in buf unless buf is short.
	if len(buf) < 64 {
		pending, buf = trimEndMarker(append(pending, buf...)), nil
	} else {
		buf = trimEndMarker(buf)
	}
	for _, b := range [][]byte{pending, buf} {
		if len(b) > 0 {
			if err := emit(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// trimEndMarker removes a final line "\." and the blank lines after it.
func trimEndMarker(b []byte) []byte {
	t := bytes.TrimRight(b, "\n")
	if bytes.HasSuffix(t, []byte(`\.`)) && (len(t) == 2 || t[len(t)-3] == '\n') {
		return t[:len(t)-2]
	}
	return b
}

// copySource is the reader behind one connection's COPY: the pieces of
// one table taken from the shared channel, up to the first piece of
// another table, which it holds back for the next COPY.
type copySource struct {
	ctx    context.Context
	pieces <-chan copyPiece
	free   chan<- []byte
	id     int
	buf    []byte // the piece being read, whole
	cur    []byte // what is left of it
	held   *copyPiece
}

// take returns the piece held back, else the next one; ok is false when
// there are no more.
func (s *copySource) take() (p copyPiece, ok bool, err error) {
	if s.held != nil {
		p, s.held = *s.held, nil
		return p, true, nil
	}
	select {
	case p, ok = <-s.pieces:
		return p, ok, nil
	case <-s.ctx.Done():
		return p, false, s.ctx.Err()
	}
}

// start makes p the first piece of the next COPY.
func (s *copySource) start(p copyPiece) { s.id, s.buf, s.cur = p.id, p.b, p.b }

// Read returns the current piece's rows, then the next piece's if it is of
// the same table, else io.EOF. An error (the load being cancelled) makes
// the COPY fail, so that none of its rows is kept.
func (s *copySource) Read(b []byte) (int, error) {
	for len(s.cur) == 0 {
		p, ok, err := s.take()
		switch {
		case err != nil:
			return 0, err
		case !ok:
			return 0, io.EOF
		case p.id != s.id:
			s.held = &p
			return 0, io.EOF
		}
		s.buf, s.cur = p.b, p.b
	}
	n := copy(b, s.cur)
	if s.cur = s.cur[n:]; len(s.cur) == 0 {
		select { // done with it: the reader may reuse it
		case s.free <- s.buf[:0]:
		default:
		}
	}
	return n, nil
}
