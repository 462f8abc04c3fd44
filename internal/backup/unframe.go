package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// maxFrameContent is the largest decoded size of a frame that decodeFrames
// decodes on its own; compressFrames writes frames of frameChunk.
const maxFrameContent = 8 << 20

// errAsStream is readFrame's answer for a frame that decodeFrames leaves to
// a streaming decoder: not a zstd frame with a declared content size of at
// most maxFrameContent (one written by an older drguard as a single stream,
// a skippable frame, or one that is not zstd at all).
var errAsStream = errors.New("frame left to the streaming decoder")

// decodeFrames decompresses src, consecutive zstd frames as compressFrames
// writes them, into dst: frames are read one by one, and workers goroutines
// each decode one and write it at its place in dst (the sizes that frames
// declare give the places), so that the writes to dst, which may fault in
// fresh memory for a page cache, run on every core too. From the first
// frame that does not declare a small content size on, the rest of src is
// decoded as one stream after the frames before it. It returns the
// decoded size. A failure to read or decode src is an *integrityReason; a
// failed write to dst is returned as it is.
func decodeFrames(dst io.WriterAt, src io.Reader, workers int) (int64, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(max(workers, 1)), zstd.WithDecoderMaxMemory(maxFrameContent),
		zstd.IgnoreChecksum(true))
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	br := bufio.NewReaderSize(src, 256<<10)
	var (
		next int64  // where the next frame's content goes
		rest []byte // the bytes of the frame that ended the parallel decoding
	)
	readErr, writeErr := runOrdered(nil, workers,
		func() *slot {
			return &slot{in: make([]byte, 0, frameChunk+frameChunk/8), out: make([]byte, 0, frameChunk)}
		},
		func(s *slot) (bool, error) {
			frame, size, err := readFrame(br, s.in[:0])
			s.in, s.off, s.want = frame, next, size
			switch {
			case err == nil:
				next += size
				return true, nil
			case errors.Is(err, errAsStream):
				rest = bytes.Clone(frame)
				return false, err
			case err == io.EOF:
				return false, err
			}
			return false, &integrityReason{"authentication or decompression failed: " + err.Error()}
		},
		func(s *slot) error {
			out, err := dec.DecodeAll(s.in, s.out[:0])
			s.out = out
			switch {
			case err != nil:
				return &integrityReason{"decompression failed: " + err.Error()}
			case int64(len(out)) != s.want:
				return &integrityReason{fmt.Sprintf("a frame decoded to %d bytes, its header says %d", len(out), s.want)}
			}
			_, err = dst.WriteAt(out, s.off)
			return err
		})
	switch {
	case writeErr != nil:
		return next, writeErr
	case errors.Is(readErr, errAsStream):
		w := io.NewOffsetWriter(dst, next)
		err := decodeStream(w, io.MultiReader(bytes.NewReader(rest), br))
		written, _ := w.Seek(0, io.SeekCurrent) // relative to next
		return next + written, err
	}
	return next, readErr
}

// decodeStream decompresses src, zstd frames of any kind, into dst as one
// stream, in writes of frameChunk.
func decodeStream(dst io.Writer, src io.Reader) error {
	zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true), zstd.IgnoreChecksum(true))
	if err != nil {
		return err
	}
	defer zr.Close()
	var werr error
	bw := bufio.NewWriterSize(writerFunc(func(p []byte) (int, error) {
		n, err := dst.Write(p)
		if err != nil {
			werr = err
		}
		return n, err
	}), frameChunk)
	if _, err = io.Copy(bw, zr); err == nil {
		err = bw.Flush()
	}
	switch {
	case werr != nil:
		return werr
	case err != nil:
		return &integrityReason{"authentication or decompression failed: " + err.Error()}
	}
	return nil
}

// Sizes in a zstd frame (RFC 8878).
const (
	zstdMagic      = 0xFD2FB528
	maxBlockSize   = 128 << 10
	blockHeaderLen = 3
)

// readFrame appends the next zstd frame of br to buf and returns it with
// the decoded size its header declares. It returns io.EOF when br ends
// between frames, and errAsStream with the bytes read so far when the
// frame is not one to decode on its own (see errAsStream). A frame cut
// short is io.ErrUnexpectedEOF; any other error is br's.
func readFrame(br *bufio.Reader, buf []byte) ([]byte, int64, error) {
	take := func(n int) ([]byte, error) {
		start := len(buf)
		buf = slices.Grow(buf, n)[:start+n]
		if _, err := io.ReadFull(br, buf[start:]); err != nil {
			buf = buf[:start]
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return buf[start:], nil
	}
	switch peek, err := br.Peek(5); {
	case len(peek) == 0 && err == io.EOF:
		return buf, 0, io.EOF
	case err == io.EOF:
		// Too short for a frame: for the streaming decoder to judge.
		rem, _ := io.ReadAll(br)
		return append(buf, rem...), 0, errAsStream
	case err != nil:
		return buf, 0, err
	}
	head, err := take(5)
	if err != nil {
		return buf, 0, err
	}
	fhd := head[4]
	fcsFlag, single, checksum, dictFlag := fhd>>6, fhd>>5&1 == 1, fhd>>2&1 == 1, fhd&3
	fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsLen = 1
	}
	if binary.LittleEndian.Uint32(head) != zstdMagic || fhd&(1<<3) != 0 || dictFlag != 0 || fcsLen == 0 {
		return buf, 0, errAsStream
	}
	windowLen := 1
	if single {
		windowLen = 0
	}
	rest, err := take(windowLen + fcsLen)
	if err != nil {
		return buf, 0, err
	}
	var size uint64
	for i, b := range rest[windowLen:] {
		size |= uint64(b) << (8 * i)
	}
	if fcsLen == 2 {
		size += 256
	}
	if size > maxFrameContent {
		return buf, 0, errAsStream
	}
	// A frame longer than this is not one compressFrames wrote.
	limit := len(buf) + int(size) + blockHeaderLen*(int(size)/maxBlockSize+2) + 4
	for {
		h, err := take(blockHeaderLen)
		if err != nil {
			return buf, 0, err
		}
		header := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		last, kind, n := header&1 == 1, header>>1&3, int(header>>3)
		switch {
		case kind == 1: // RLE: one byte repeated n times
			n = 1
		case kind == 3 || n > maxBlockSize:
			return buf, 0, errAsStream
		}
		if len(buf)+n > limit {
			return buf, 0, errAsStream
		}
		if _, err := take(n); err != nil {
			return buf, 0, err
		}
		if last {
			break
		}
	}
	if checksum {
		if _, err := take(4); err != nil {
			return buf, 0, err
		}
	}
	return buf, int64(size), nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
