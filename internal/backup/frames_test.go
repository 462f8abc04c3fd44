package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// dumpLike returns n bytes that compress like dump rows: repeated text
// with varying numbers in it.
func dumpLike(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%d\torder %d for customer %d\t%x\n", b.Len(), r.IntN(1e6), r.IntN(99991), r.Uint64())
	}
	return b.Bytes()[:n]
}

// decompress decodes consecutive zstd frames as restore does.
func decompress(t *testing.T, b []byte) []byte {
	t.Helper()
	var out memFile
	n, err := decodeFrames(&out, &shortReader{r: bytes.NewReader(b), max: 4096}, 2)
	if err != nil {
		t.Fatalf("decompress: %v", err)
	}
	if n != int64(len(out.b)) {
		t.Fatalf("decodeFrames says it wrote %d bytes; %d were written", n, len(out.b))
	}
	return out.b
}

// discardAt is io.Discard as an io.WriterAt.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// memFile is an io.WriterAt in memory, like a file that grows.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func TestCompressFramesRoundTrip(t *testing.T) {
	const chunk = 64 << 10
	input := dumpLike(7*chunk + 123)
	for _, tc := range []struct {
		name    string
		size    int
		workers int
	}{
		{"empty input", 0, 2},
		{"one byte", 1, 2},
		{"just under one chunk", chunk - 1, 2},
		{"exactly one chunk", chunk, 2},
		{"one chunk and a byte", chunk + 1, 2},
		{"many chunks, one worker", len(input), 1},
		{"many chunks, two workers", len(input), 2},
		{"many chunks, more workers than chunks", 3*chunk + 5, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			// A reader that returns short reads, as a pipe does.
			src := &shortReader{r: bytes.NewReader(input[:tc.size]), max: 4096}
			if err := compressFrames(&out, src, tc.workers, chunk); err != nil {
				t.Fatal(err)
			}
			if tc.size > chunk && out.Len() >= tc.size {
				t.Errorf("%d bytes compressed to %d: not compressed", tc.size, out.Len())
			}
			if got := decompress(t, out.Bytes()); !bytes.Equal(got, input[:tc.size]) {
				t.Fatalf("round trip of %d bytes gave %d different bytes", tc.size, len(got))
			}
		})
	}
}

func TestCompressFramesReturnsReadErrorAfterWritingWhatWasRead(t *testing.T) {
	const chunk = 32 << 10
	input := dumpLike(5*chunk + 100)
	broken := errors.New("pipe broke")
	var out bytes.Buffer
	src := io.MultiReader(bytes.NewReader(input), &failingReader{err: broken})
	err := compressFrames(&out, src, 2, chunk)
	if !errors.Is(err, broken) {
		t.Fatalf("error = %v, want %v", err, broken)
	}
	// io.ReadFull stops a chunk at the error: the whole chunks before it
	// and the partial one are written.
	if got := decompress(t, out.Bytes()); !bytes.Equal(got, input) {
		t.Fatalf("wrote %d bytes of the %d read before the error", len(got), len(input))
	}
}

func TestCompressFramesStopsReadingWhenWritesFail(t *testing.T) {
	const chunk, workers = 16 << 10, 2
	full := errors.New("upload aborted")
	for _, okWrites := range []int{0, 1, 5} {
		t.Run(fmt.Sprintf("after %d good writes", okWrites), func(t *testing.T) {
			src := &endlessReader{data: dumpLike(chunk)}
			dst := newFailingWriter(okWrites, full)
			err := compressFrames(dst, src, workers, chunk)
			if !errors.Is(err, full) {
				t.Fatalf("error = %v, want %v", err, full)
			}
			// Reading stops once the writer fails: the frames written,
			// the one that failed, those in flight and one more read
			// that raced with the failure.
			limit := int64(okWrites+1+workers+2+1) * chunk
			if n := src.n.Load(); n > limit {
				t.Fatalf("read %d bytes after the writer failed; at most %d expected", n, limit)
			}
		})
	}
}

// shortReader returns at most max bytes per Read.
type shortReader struct {
	r   io.Reader
	max int
}

func (s *shortReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.max)]) }

// failingReader fails every Read with err.
type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

// endlessReader repeats data forever and counts what it returned.
type endlessReader struct {
	data []byte
	off  int
	n    atomic.Int64
}

func (e *endlessReader) Read(p []byte) (int, error) {
	n := copy(p, e.data[e.off:])
	e.off = (e.off + n) % len(e.data)
	e.n.Add(int64(n))
	return n, nil
}

// failingWriter accepts ok writes and fails every later one with err; it
// is an io.Writer and an io.WriterAt, safe for concurrent use.
type failingWriter struct {
	ok  atomic.Int64
	err error
}

func newFailingWriter(ok int, err error) *failingWriter {
	f := &failingWriter{err: err}
	f.ok.Store(int64(ok))
	return f
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.ok.Add(-1) < 0 {
		return 0, f.err
	}
	return len(p), nil
}

func (f *failingWriter) WriteAt(p []byte, _ int64) (int, error) { return f.Write(p) }
