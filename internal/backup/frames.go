package backup

import (
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameChunk is how much input goes into one zstd frame, and the encoder's
// window. A dump's matches are between nearby rows: 1 MiB frames store the
// same size as one stream with zstd's default 8 MiB window on dump data
// (docs/backups.md).
const frameChunk = 1 << 20

// compressWorkers is how many goroutines compress frames: one per CPU, at
// most 4. Compression is the pipeline's largest CPU cost; pg_dump and the
// server feeding it wait on I/O as much as on CPU.
func compressWorkers() int {
	return min(runtime.GOMAXPROCS(0), 4)
}

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
// workers goroutines and written in input order. A zstd decoder reads the
// result as one stream. The encoder favours speed: zstd's fastest level and
// no frame checksum (the AEAD authenticates every byte).
//
// At most workers+2 chunks (and their frames) are in memory: one being
// read, one being written, the rest being compressed. When a write to dst
// fails, reading stops at the next chunk and the write error is returned;
// a read error is returned after what was read before it is written.
func compressFrames(dst io.Writer, src io.Reader, workers, chunk int) error {
	workers = max(workers, 1)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(frameChunk), zstd.WithEncoderConcurrency(workers))
	if err != nil {
		return err
	}
	defer enc.Close()
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
