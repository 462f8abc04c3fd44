package backup

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// counter counts bytes passing through a reader or writer.
type counter struct{ n atomic.Int64 }

// countingReader counts what is read from r.
type countingReader struct {
	r io.Reader
	c *counter
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.c.n.Add(int64(n))
	return n, err
}

// countingWriter counts what is written to w.
type countingWriter struct {
	w io.Writer
	c *counter
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.c.n.Add(int64(n))
	return n, err
}

// countingWriterAt counts what is written to w, from any number of
// goroutines at once.
type countingWriterAt struct {
	w io.WriterAt
	c *counter
}

func (w countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.w.WriteAt(p, off)
	w.c.n.Add(int64(n))
	return n, err
}

// progressLine rewrites one terminal line every second with what a run has
// done so far, until stop is called.
func progressLine(w io.Writer, label string, read, written *counter) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				el := time.Since(start)
				r := read.n.Load()
				fmt.Fprintf(w, "\r\033[K%s: %s read, %s written, %s/s, %s", label,
					HumanBytes(r), HumanBytes(written.n.Load()), HumanBytes(int64(float64(r)/el.Seconds())), el.Round(time.Second))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// humanBytes formats a byte count with a binary unit.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
