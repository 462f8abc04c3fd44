package backup

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameChunk is how much input goes into one zstd frame. Frames are
// compressed independently, so a frame of 1 MiB matches what the 1 MiB
// window of a single stream would find anyway (see encoderWindow).
const frameChunk = encoderWindow

// frame is one chunk of input on its way through compressFrames: read into
// in, compressed into out by a worker, written in order by the writer.
type frame struct {
	in       []byte
	n        int
	out      []byte
	compress chan struct{} // a worker signals here when out is ready
}

// compressFrames reads src to its end and writes it to dst as consecutive
// independent zstd frames of at most chunk input bytes each, compressed by
// workers goroutines sharing enc (built with at least that concurrency) and
// written in input order. A zstd decoder reads the result as one stream.
//
// At most workers+2 chunks (and their frames) are in memory: one being
// read, one being written, the rest being compressed. When a write to dst
// fails, reading stops at the next chunk and the write error is returned;
// a read error is returned after what was read before it is written.
func compressFrames(dst io.Writer, src io.Reader, enc *zstd.Encoder, workers, chunk int) error {
	workers = max(workers, 1)
	slots := workers + 2
	free := make(chan *frame, slots)
	for range slots {
		// Dumps compress about 5:1; a frame that does not fit grows out.
		free <- &frame{in: make([]byte, chunk), out: make([]byte, 0, chunk/4), compress: make(chan struct{}, 1)}
	}
	work := make(chan *frame, slots)
	ordered := make(chan *frame, slots)
	failed := make(chan struct{})

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				f.out = enc.EncodeAll(f.in[:f.n], f.out[:0])
				f.compress <- struct{}{}
			}
		}()
	}
	written := make(chan error, 1)
	go func() {
		var err error
		for f := range ordered {
			<-f.compress
			if err == nil {
				if _, err = dst.Write(f.out); err != nil {
					close(failed)
				}
			}
			free <- f
		}
		written <- err
	}()

	readErr := readChunks(src, free, work, ordered, failed)
	close(work)
	close(ordered)
	wg.Wait()
	return errors.Join(readErr, <-written)
}

// readChunks fills free frames from src and queues each for a worker and,
// in the same order, for the writer, until src ends, fails, or failed is
// closed. Every channel has room for every frame, so queuing never blocks.
func readChunks(src io.Reader, free <-chan *frame, work, ordered chan<- *frame, failed <-chan struct{}) error {
	for {
		// A closed failed wins over a free frame.
		select {
		case <-failed:
			return nil
		default:
		}
		var f *frame
		select {
		case f = <-free:
		case <-failed:
			return nil
		}
		n, err := io.ReadFull(src, f.in)
		if n > 0 {
			f.n = n
			work <- f
			ordered <- f
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		default:
			return err
		}
	}
}
