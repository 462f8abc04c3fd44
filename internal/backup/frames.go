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

// frameWorkers is how many goroutines compress or decompress frames: one
// per CPU, at most 4. Compression is the pipeline's largest CPU cost;
// pg_dump and the server feeding it wait on I/O as much as on CPU.
func frameWorkers() int {
	return min(runtime.GOMAXPROCS(0), 4)
}

// slot is one piece of input on its way through runOrdered: read into in,
// transformed into out by a worker, written in order by the writer.
type slot struct {
	in   []byte
	out  []byte
	off  int64         // where a frame's decoded content goes (decodeFrames)
	want int64         // the decoded size a frame declares (decodeFrames)
	err  error         // the transform's error
	done chan struct{} // a worker signals here when out is ready
}

// runOrdered is the parallel, order-keeping pipeline of compressFrames and
// decodeFrames. fill reads the next piece of input into a free slot and
// reports whether the slot holds one; reading stops at fill's first error
// (io.EOF for the end of the input, not returned). Each filled slot is
// transformed by one of workers goroutines, and the slots' out are written
// to dst in input order (a nil dst for transforms that deliver their output
// themselves).
//
// At most workers+2 slots are in memory: one being filled, one being
// written, the rest being transformed. When a write to dst or a transform
// fails, filling stops at the next slot and nothing after the failed slot
// is written. runOrdered returns fill's error (after everything filled
// before it is written) and the first write or transform error.
func runOrdered(dst io.Writer, workers int, newSlot func() *slot, fill func(*slot) (bool, error), transform func(*slot) error) (readErr, writeErr error) {
	workers = max(workers, 1)
	slots := workers + 2
	free := make(chan *slot, slots)
	for range slots {
		s := newSlot()
		s.done = make(chan struct{}, 1)
		free <- s
	}
	work := make(chan *slot, slots)
	ordered := make(chan *slot, slots)
	failed := make(chan struct{})

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for s := range work {
				s.err = transform(s)
				s.done <- struct{}{}
			}
		})
	}
	written := make(chan error, 1)
	go func() {
		var err error
		for s := range ordered {
			<-s.done
			if err == nil {
				if err = s.err; err == nil && dst != nil {
					_, err = dst.Write(s.out)
				}
				if err != nil {
					close(failed)
				}
			}
			free <- s
		}
		written <- err
	}()

	readErr = fillSlots(free, work, ordered, failed, fill)
	close(work)
	close(ordered)
	wg.Wait()
	return readErr, <-written
}

// fillSlots fills free slots and queues each for a worker and, in the same
// order, for the writer, until fill fails or failed is closed. Every
// channel has room for every slot, so queuing never blocks.
func fillSlots(free <-chan *slot, work, ordered chan<- *slot, failed <-chan struct{}, fill func(*slot) (bool, error)) error {
	for {
		// A closed failed wins over a free slot.
		select {
		case <-failed:
			return nil
		default:
		}
		var s *slot
		select {
		case s = <-free:
		case <-failed:
			return nil
		}
		ok, err := fill(s)
		if ok {
			work <- s
			ordered <- s
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// compressFrames reads src to its end and writes it to dst as consecutive
// independent zstd frames of at most chunk input bytes each, compressed by
// workers goroutines and written in input order. A zstd decoder reads the
// result as one stream. The encoder favours speed: zstd's fastest level and
// no frame checksum (the AEAD authenticates every byte).
//
// At most workers+2 chunks (and their frames) are in memory. When a write
// to dst fails, reading stops at the next chunk and the write error is
// returned; a read error is returned after what was read before it is
// written.
func compressFrames(dst io.Writer, src io.Reader, workers, chunk int) error {
	workers = max(workers, 1)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(frameChunk), zstd.WithEncoderConcurrency(workers))
	if err != nil {
		return err
	}
	defer enc.Close()
	readErr, writeErr := runOrdered(dst, workers,
		// Dumps compress about 5:1; a frame that does not fit grows out.
		func() *slot { return &slot{in: make([]byte, chunk), out: make([]byte, 0, chunk/4)} },
		func(s *slot) (bool, error) {
			n, err := io.ReadFull(src, s.in[:cap(s.in)])
			s.in = s.in[:n]
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			return n > 0, err
		},
		func(s *slot) error {
			s.out = enc.EncodeAll(s.in, s.out[:0])
			return nil
		})
	return errors.Join(readErr, writeErr)
}
