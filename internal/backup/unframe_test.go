package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// framed returns input as compressFrames writes it, in chunks of chunk.
func framed(t *testing.T, input []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := compressFrames(&out, bytes.NewReader(input), 2, chunk); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// streamed returns input as one zstd stream with an unknown content size,
// as drguard wrote backups before compressFrames.
func streamed(t *testing.T, input []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := zstd.NewWriter(&out, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(input); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestDecodeFramesReadsEveryKindOfStream: frames are decoded in parallel
// and in order; what decodeFrames leaves to the streaming decoder (a
// stream written as one frame, a skippable frame, frames with checksums)
// decodes all the same, after the frames before it.
func TestDecodeFramesReadsEveryKindOfStream(t *testing.T) {
	const chunk = 64 << 10
	a, b := dumpLike(9*chunk+7), dumpLike(3*chunk + 1)[5:]
	checksummed, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	defer checksummed.Close()
	skippable := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0x184D2A50), 3)
	skippable = append(skippable, "abc"...)
	for _, tc := range []struct {
		name       string
		compressed []byte
		want       []byte
	}{
		{"nothing", nil, nil},
		{"frames of one chunk", framed(t, a, chunk), a},
		{"frames ending with one under 256 bytes", framed(t, a[:2*chunk+100], chunk), a[:2*chunk+100]},
		{"one stream of unknown size", streamed(t, a), a},
		{"frames, then a stream", append(framed(t, a, chunk), streamed(t, b)...), append(bytes.Clone(a), b...)},
		{"frames with checksums", append(checksummed.EncodeAll(a, nil), checksummed.EncodeAll(b, nil)...), append(bytes.Clone(a), b...)},
		{"a frame larger than decoded on its own", framed(t, dumpLike(maxFrameContent+1), maxFrameContent+1), dumpLike(maxFrameContent + 1)},
		{"frames, a skippable frame, frames", append(append(framed(t, a, chunk), skippable...), framed(t, b, chunk)...), append(bytes.Clone(a), b...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decompress(t, tc.compressed)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("decoded %d bytes, want %d (or they differ)", len(got), len(tc.want))
			}
		})
	}
}

// TestDecodeFramesRefusesDamage: a truncated, inconsistent or foreign
// stream is an integrity failure (a changed byte is the AEAD's to find:
// the frames carry no checksum); a failed write is returned as it is, and reading
// stops soon after it.
func TestDecodeFramesRefusesDamage(t *testing.T) {
	const chunk = 64 << 10
	good := framed(t, dumpLike(8*chunk), chunk)
	sizeLied := bytes.Clone(good)
	sizeLied[6]++ // a byte of the first frame's declared content size
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"cut inside a frame", good[:len(good)/2+3]},
		{"a frame that lies about its size", sizeLied},
		{"not zstd at all", bytes.Repeat([]byte("pg_dump output, not compressed\n"), 100)},
		{"three bytes", []byte{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeFrames(&memFile{}, bytes.NewReader(tc.in), 2)
			var ir *integrityReason
			if !errors.As(err, &ir) {
				t.Fatalf("error = %v, want an integrity failure", err)
			}
		})
	}
	t.Run("a failed write", func(t *testing.T) {
		full := errors.New("no space left on device")
		const frames = 150
		compressed := framed(t, dumpLike(frames*chunk), chunk)
		src := &countedReader{r: bytes.NewReader(compressed)}
		_, err := decodeFrames(newFailingWriter(2, full), src, 2)
		var ir *integrityReason
		if !errors.Is(err, full) || errors.As(err, &ir) {
			t.Fatalf("error = %v, want %v as it is", err, full)
		}
		// The frames written, the one that failed, those in flight, one
		// more and the reader's buffer: far from all of them.
		if limit := int64(2+1+2+2+1)*2*int64(len(compressed)/frames) + 256<<10; src.n > limit {
			t.Errorf("read %d compressed bytes after the write failed; at most %d expected", src.n, limit)
		}
	})
}

// countedReader counts what is read from r.
type countedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
