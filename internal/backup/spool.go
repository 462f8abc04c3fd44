package backup

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Sizes of the restore's write-behind buffers: spoolChunk bytes per write
// to the temporary file, at most spoolDepth chunks queued.
const (
	spoolChunk = 512 << 10
	spoolDepth = 4
)

// spoolWriter hands what is written to it to w on a goroutine of its own,
// in chunks, so that whoever writes (decompression) runs while the
// previous chunks are copied into the file. Memory is bounded by
// (depth+1) chunks. A failed write to w is returned by a later Write and
// by Close; what follows it is dropped. Close must be called once.
type spoolWriter struct {
	w    io.Writer
	buf  []byte
	full chan []byte
	free chan []byte
	done chan struct{}

	mu  sync.Mutex
	err error
}

// newSpoolWriter starts the goroutine writing to w.
func newSpoolWriter(w io.Writer, chunk, depth int) *spoolWriter {
	s := &spoolWriter{w: w, full: make(chan []byte, depth), free: make(chan []byte, depth+1), done: make(chan struct{})}
	for range depth {
		s.free <- make([]byte, 0, chunk)
	}
	s.buf = make([]byte, 0, chunk)
	go s.run()
	return s
}

// run writes the queued chunks in order until Close, and after a failed
// write only recycles them.
func (s *spoolWriter) run() {
	defer close(s.done)
	for b := range s.full {
		if s.failed() == nil {
			if _, err := s.w.Write(b); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}
		s.free <- b[:0]
	}
}

// failed returns the first write error, or nil.
func (s *spoolWriter) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Write copies p into the current chunk, queueing every chunk it fills.
func (s *spoolWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := s.failed(); err != nil {
			return n, err
		}
		k := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf, p, n = s.buf[:len(s.buf)+k], p[k:], n+k
		if len(s.buf) == cap(s.buf) {
			s.full <- s.buf
			s.buf = <-s.free
		}
	}
	return n, s.failed()
}

// Close queues the last, partial chunk, waits until everything queued is
// written and returns the first write error.
func (s *spoolWriter) Close() error {
	if len(s.buf) > 0 {
		s.full <- s.buf
	}
	s.buf = nil
	close(s.full)
	<-s.done
	return s.failed()
}

// writeBehind writes to a file and starts at once the writeback of what
// each write wrote (sync_file_range, without waiting), so that the file
// is on disk soon after its last write: its writeback then neither
// delays pg_restore's start (one fdatasync with little left to write) nor
// competes with the server's writes during the restore.
type writeBehind struct {
	f   *os.File
	off int64
}

// Write writes p and starts its writeback; a failure to start it only
// leaves the work to the final fdatasync.
func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n > 0 {
		_ = unix.SyncFileRange(int(w.f.Fd()), w.off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
		w.off += int64(n)
	}
	return n, err
}
