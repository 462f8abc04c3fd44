package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// importLegacyOutbox moves the unacknowledged alerts of an earlier
// version's bbolt outbox (path) into the log, under their own sequence
// numbers, then deletes the file. An import interrupted by a crash is
// finished at the next open: alerts the log already holds are skipped.
func importLegacyOutbox(path string, acked uint64, l *outboxLog) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if err != nil {
		return fmt.Errorf("open earlier outbox %s: %w", path, err)
	}
	var payloads [][]byte
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(max(acked+1, l.next))); k != nil; k, v = c.Next() {
			if seq := binary.BigEndian.Uint64(k); seq != l.next+uint64(len(payloads)) {
				return fmt.Errorf("alert %d follows %d", seq, l.next+uint64(len(payloads))-1)
			}
			payloads = append(payloads, append([]byte(nil), v...))
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil && len(payloads) > 0 {
		_, err = l.append(payloads)
	}
	if err != nil {
		return fmt.Errorf("import earlier outbox %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove imported outbox: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
