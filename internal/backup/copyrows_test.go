package backup

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestCutRows cuts tables' rows into pieces: every piece ends a row,
// together they are the rows without pg_dump's end-of-data marker, and a
// table of several pieces' size gives several pieces, however the reads
// fall.
func TestCutRows(t *testing.T) {
	const marker = "\\.\n\n\n"
	rows := strings.Repeat(strings.Repeat("x", 99)+"\n", 30000) // about 3 MiB
	long := "1\t" + strings.Repeat("y", 3*copyPieceSize) + "\n"
	for _, tc := range []struct {
		name      string
		in, want  string
		minPieces int
	}{
		{"an empty table", marker, "", 0},
		{"a small table", "1\ta\n2\t\\N\n" + marker, "1\ta\n2\t\\N\n", 1},
		{"no marker", "1\ta\n", "1\ta\n", 1},
		{"values ending in an escaped backslash and a dot", "a\\\\.\n\\\\.\n" + marker, "a\\\\.\n\\\\.\n", 1},
		{"several pieces", rows + marker, rows, 3},
		{"a row longer than a piece", "0\tz\n" + long + "2\tz\n" + marker, "0\tz\n" + long + "2\tz\n", 1},
	} {
		for _, step := range []int{7, 64 << 10} {
			var got []string
			free := make(chan []byte, 4)
			err := cutRows(context.Background(), &shortReader{strings.NewReader(tc.in), step}, func(b []byte) error {
				got = append(got, string(b))
				return nil
			}, free)
			if err != nil {
				t.Fatalf("%s, reads of %d: %v", tc.name, step, err)
			}
			if all := strings.Join(got, ""); all != tc.want {
				t.Errorf("%s, reads of %d: %d bytes in %d pieces, want %d bytes", tc.name, step, len(all), len(got), len(tc.want))
			}
			if len(got) < tc.minPieces {
				t.Errorf("%s, reads of %d: %d pieces, want at least %d", tc.name, step, len(got), tc.minPieces)
			}
			for i, p := range got {
				if p == "" || !strings.HasSuffix(p, "\n") {
					t.Errorf("%s, reads of %d: piece %d of %d does not end a row: ...%q", tc.name, step, i, len(got), p[max(0, len(p)-20):])
				}
			}
		}
	}
}

// TestCutRowsStops returns the reader's error, and stops when the
// receiver fails or the load is cancelled.
func TestCutRowsStops(t *testing.T) {
	rows := strings.Repeat("row\n", 1<<20)
	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    io.Reader
		emit func([]byte) error
		want error
	}{
		{"read error", context.Background(), io.MultiReader(strings.NewReader("a\n"), &failingReader{boom}), nil, boom},
		{"receiver fails", context.Background(), strings.NewReader(rows), func([]byte) error { return boom }, boom},
		{"cancelled", ctx, strings.NewReader(rows), nil, context.Canceled},
	} {
		emit := tc.emit
		if emit == nil {
			emit = func([]byte) error { return nil }
		}
		if err := cutRows(tc.ctx, tc.r, emit, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}
