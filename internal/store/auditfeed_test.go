package store

import (
	"errors"
	"fmt"
	"testing"
)

// TestAuditFeed: the audit log is read from any sequence, in order, as the
// event stream and the Slack app follow it; the last sequence is known
// without reading the log.
func TestAuditFeed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		var last uint64
		if err := s.View(func(tx *Tx) (err error) { last, err = tx.LastAuditSeq(); return err }); err != nil || last != 0 {
			t.Fatalf("empty log: last %d, %v", last, err)
		}
		err := s.Update(func(tx *Tx) error {
			for i := range 1200 { // more than a PostgreSQL page of rows
				if err := tx.Audit(AuditEntry{Actor: "drguard", Action: "step.started", Subject: fmt.Sprint(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		err = s.View(func(tx *Tx) error {
			if last, err = tx.LastAuditSeq(); err != nil {
				return err
			}
			return tx.AuditAfter(600, func(e AuditEntry) (bool, error) {
				seqs = append(seqs, e.Seq)
				return len(seqs) < 550, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if last != 1200 || len(seqs) != 550 || seqs[0] != 601 || seqs[549] != 1150 {
			t.Fatalf("last %d; read %d entries from %v to %v; want 1200, 550 from 601 to 1150", last, len(seqs), seqs[0], seqs[len(seqs)-1])
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Fatalf("%d after %d", seqs[i], seqs[i-1])
			}
		}
	})
}

// TestChatMessages: a posted message's record is read back, listed,
// updated and deleted; deleting a missing one is no error.
func TestChatMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		m := ChatMessage{ApprovalID: "apr-000001", Notifier: "incidents", Channel: "C1", TS: "1.2", Shown: "pending||"}
		err := s.Update(func(tx *Tx) error {
			if err := tx.PutChatMessage(m); err != nil {
				return err
			}
			return tx.PutChatMessage(ChatMessage{ApprovalID: "apr-000001", Notifier: "other", Channel: "C2", TS: "3.4"})
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = s.Update(func(tx *Tx) error {
			got, err := tx.ChatMessage("apr-000001", "incidents")
			if err != nil || got.TS != "1.2" || got.Channel != "C1" {
				return fmt.Errorf("read back %+v, %v", got, err)
			}
			if err := tx.DeleteChatMessage("apr-000001", "other"); err != nil {
				return err
			}
			if err := tx.DeleteChatMessage("apr-000009", "none"); err != nil {
				return err
			}
			return tx.ForEachChatMessage(func(ChatMessage) error { n++; return nil })
		})
		if err != nil || n != 1 {
			t.Fatalf("%d records after a delete, %v", n, err)
		}
		err = s.View(func(tx *Tx) error {
			_, err := tx.ChatMessage("apr-000001", "other")
			return err
		})
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("a deleted record: %v", err)
		}
		if err := s.Update(func(tx *Tx) error { return tx.PutChatMessage(ChatMessage{Notifier: "x"}) }); err == nil {
			t.Error("a record without an approval was written")
		}
	})
}
