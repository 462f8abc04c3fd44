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
func (t *Tx) LastAuditSeq() (uint64, error) {
	k, err := t.kv.lastKey(bucketAudit)
	if err != nil || len(k) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(k), nil
}

// AuditAfter calls fn for every audit entry whose sequence is greater than
// after, in sequence order, until fn returns false or an error. It starts
// at the first such entry, so its cost follows what it reads, not the
// log's length.
func (t *Tx) AuditAfter(after uint64, fn func(AuditEntry) (bool, error)) error {
	return t.kv.scanFrom(bucketAudit, u64(after+1), func(k, v []byte) (bool, error) {
		var e AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return false, fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		return fn(e)
	})
}
