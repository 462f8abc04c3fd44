package backup

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind writes to a file, from any number of goroutines at once,
// and starts at once the writeback of what each write wrote
// (sync_file_range, without waiting), so that the file is on disk soon
// after its last write: its writeback then neither delays pg_restore's
// start (one fdatasync with little left to write) nor competes with the
// server's writes during the restore. It counts what it wrote in n.
type writeBehind struct {
	f *os.File
	n *counter
}

// WriteAt writes p at off and starts its writeback; a failure to start it
// only leaves the work to the final fdatasync.
func (w writeBehind) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(p, off)
	if n > 0 {
		_ = unix.SyncFileRange(int(w.f.Fd()), off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
		w.n.n.Add(int64(n))
	}
	return n, err
}
