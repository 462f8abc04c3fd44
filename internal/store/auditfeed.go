package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// The audit log is the journal's one total order: every change of an
// incident, run, step or approval writes an entry in the transaction that
// makes it, numbered by the log's sequence. Followers (the event stream,
// the Slack approvals) read it from a sequence they remember.

// LastAuditSeq returns the sequence of the newest audit entry, 0 when the
// log is empty.
func (t *Tx) LastAuditSeq() uint64 {
	k, _ := t.tx.Bucket(bucketAudit).Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// AuditAfter calls fn for every audit entry whose sequence is greater than
// after, in sequence order, until fn returns false or an error. It seeks to
// the first entry, so its cost follows what it reads, not the log's length.
func (t *Tx) AuditAfter(after uint64, fn func(AuditEntry) (bool, error)) error {
	c := t.tx.Bucket(bucketAudit).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
		var e AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if more, err := fn(e); err != nil || !more {
			return err
		}
	}
	return nil
}
