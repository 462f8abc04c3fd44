package backup

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestSpoolWriter: what is written reaches the file whole and in order,
// whatever the sizes of the writes against the chunk; a failing file's
// error comes back from Write or Close.
func TestSpoolWriter(t *testing.T) {
	data := make([]byte, 300<<10+17)
	_, _ = rand.Read(data)
	for _, tc := range []struct {
		name         string
		chunk, depth int
		write        int // bytes per Write
	}{
		{"writes smaller than a chunk", 4 << 10, 2, 1000},
		{"writes of a chunk", 4 << 10, 2, 4 << 10},
		{"writes of many chunks", 4 << 10, 3, 50 << 10},
		{"one write", 64 << 10, 1, len(data)},
		{"nothing", 4 << 10, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := data
			if tc.write == 0 {
				want = nil
			}
			s := newSpoolWriter(f, tc.chunk, tc.depth)
			for p := want; len(p) > 0; {
				k := min(tc.write, len(p))
				if n, err := s.Write(p[:k]); n != k || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", k, n, err)
				}
				p = p[k:]
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("file has %d bytes, want %d (or they differ)", len(got), len(want))
			}
		})
	}
	t.Run("failing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ro")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path) // read-only: every write fails
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		s := newSpoolWriter(f, 4<<10, 2)
		var werr error
		for i := 0; i < 100 && werr == nil; i++ {
			_, werr = s.Write(data[:8<<10])
		}
		cerr := s.Close()
		if werr == nil || cerr == nil {
			t.Errorf("Write: %v, Close: %v; want both to fail", werr, cerr)
		}
	})
}
