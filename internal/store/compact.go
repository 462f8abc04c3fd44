package store

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Retention: resolved incidents leave the journal once they have been over
// for longer than storage.retention, together with everything that hangs
// off them — their runs (with their steps), their approvals, the chat
// messages about those approvals, the incident's detection-key index
// entry and any corroboration bookkeeping. Open incidents, incidents with
// a run still active or an approval still pending, and anything newer stay.
// The audit log is append-only and is not compacted.

// AuditJournalCompacted is the audit action of a compaction.
const AuditJournalCompacted = "journal.compacted"

// Compacted counts what a compaction removed.
type Compacted struct {
	Incidents, Runs, Approvals, ChatMessages int
}

// Add adds o's counts to c.
func (c *Compacted) Add(o Compacted) {
	c.Incidents += o.Incidents
	c.Runs += o.Runs
	c.Approvals += o.Approvals
	c.ChatMessages += o.ChatMessages
}

// IncidentEnd is when an incident ended: its resolution, or, for a
// resolved incident without one (older journals), when it was last seen.
// It is zero for an open incident.
func IncidentEnd(in Incident) time.Time {
	if in.State == IncidentOpen {
		return time.Time{}
	}
	if !in.ResolvedAt.IsZero() {
		return in.ResolvedAt
	}
	return in.LastSeen
}

// CompactIncidents removes up to limit resolved incidents whose end is
// before cutoff, with everything that hangs off them, looking at
// incidents whose ID sorts after after ("" for the first). It returns what
// it removed and the ID to go on from, empty once every incident has been
// looked at. When it removes anything it writes an audit entry (actor,
// counts, cutoff) in the same transaction.
func (t *Tx) CompactIncidents(actor string, cutoff time.Time, after string, limit int) (Compacted, string, error) {
	var victims []Incident
	next := ""
	var from []byte
	if after != "" {
		from = []byte(after + "\x00") // just past after
	}
	err := t.kv.scanFrom(bucketIncidents, from, func(k, v []byte) (bool, error) {
		if len(victims) >= max(limit, 1) {
			next = string(k)
			return false, nil
		}
		var in Incident
		if err := json.Unmarshal(v, &in); err != nil {
			return false, err
		}
		if end := IncidentEnd(in); !end.IsZero() && end.Before(cutoff) {
			victims = append(victims, in)
		}
		return true, nil
	})
	if err != nil {
		return Compacted{}, "", err
	}
	if next != "" {
		// Go on from the last incident looked at, not the first left out.
		next = victims[len(victims)-1].ID
	}
	approvals, err := t.approvalsOf(victims)
	if err != nil {
		return Compacted{}, "", err
	}
	var done Compacted
	for _, in := range victims {
		c, err := t.removeIncident(in, approvals[in.ID])
		if err != nil {
			return Compacted{}, "", err
		}
		done.Add(c)
	}
	if done.Incidents > 0 {
		err := t.Audit(AuditEntry{Actor: actor, Action: AuditJournalCompacted, Subject: "incidents", Detail: map[string]string{
			"incidents": strconv.Itoa(done.Incidents), "runs": strconv.Itoa(done.Runs),
			"approvals": strconv.Itoa(done.Approvals), "chat_messages": strconv.Itoa(done.ChatMessages),
			"ended_before": cutoff.UTC().Format(time.RFC3339),
		}})
		if err != nil {
			return Compacted{}, "", err
		}
	}
	return done, next, nil
}

// removeIncident deletes a resolved incident and what hangs off it,
// unless one of its runs is still active or one of its approvals still
// pending: then it removes nothing and counts nothing.
func (t *Tx) removeIncident(in Incident, approvals []Approval) (Compacted, error) {
	runs := make([]Run, 0, len(in.RunIDs))
	for _, id := range in.RunIDs {
		r, err := t.Run(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Compacted{}, err
		}
		if r.Active() {
			return Compacted{}, nil
		}
		runs = append(runs, r)
	}
	for _, a := range approvals {
		if a.State == ApprovalPending {
			return Compacted{}, nil
		}
	}
	c := Compacted{Incidents: 1}
	for _, a := range approvals {
		n, err := t.deleteChatMessages(a.ID)
		if err != nil {
			return Compacted{}, err
		}
		c.ChatMessages += n
		if err := t.kv.del(bucketApprovals, []byte(a.ID)); err != nil {
			return Compacted{}, err
		}
		c.Approvals++
	}
	for _, r := range runs {
		if err := t.kv.del(bucketRuns, []byte(r.ID)); err != nil {
			return Compacted{}, err
		}
		if err := t.kv.del(bucketActiveRuns, []byte(r.ID)); err != nil {
			return Compacted{}, err
		}
		c.Runs++
	}
	if err := t.deleteIncidentIndexes(in); err != nil {
		return Compacted{}, err
	}
	return c, t.kv.del(bucketIncidents, []byte(in.ID))
}

// approvalsOf returns the approvals of the incidents' runs, by incident,
// reading the approvals once.
func (t *Tx) approvalsOf(incidents []Incident) (map[string][]Approval, error) {
	out := make(map[string][]Approval, len(incidents))
	if len(incidents) == 0 {
		return out, nil
	}
	for _, in := range incidents {
		out[in.ID] = nil
	}
	err := t.ForEachApproval(func(a Approval) error {
		if list, ok := out[a.IncidentID]; ok {
			out[a.IncidentID] = append(list, a)
		}
		return nil
	})
	return out, err
}

// deleteChatMessages removes the chat message records of an approval.
func (t *Tx) deleteChatMessages(approvalID string) (int, error) {
	var keys [][]byte
	err := t.kv.scan(bucketChatMessages, []byte(approvalID+"\x00"), func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := t.kv.del(bucketChatMessages, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// deleteIncidentIndexes removes an incident from the detection-key index
// (when the key still maps to it), the firing index and the corroboration
// waits.
func (t *Tx) deleteIncidentIndexes(in Incident) error {
	if in.Key != "" {
		id, err := t.kv.get(bucketIncidentKeys, []byte(in.Key))
		switch {
		case err == nil && string(id) == in.ID:
			if err := t.kv.del(bucketIncidentKeys, []byte(in.Key)); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
	}
	if err := t.DeleteFiring(in.ID); err != nil {
		return err
	}
	quoted, _ := json.Marshal(in.ID)
	var waits [][]byte
	err := t.kv.scan(bucketAwaiting, append(append([]byte("["), quoted...), ','), func(k, _ []byte) error {
		waits = append(waits, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range waits {
		if err := t.kv.del(bucketAwaiting, k); err != nil {
			return err
		}
	}
	return nil
}

// CompactJournal removes, batch by batch, every resolved incident that
// ended before cutoff (see Tx.CompactIncidents), each batch of up to batch
// incidents in a transaction of update's: Store.Update, or the leader's
// fenced journal. It stops at the first error, returning what the
// committed batches removed.
func CompactJournal(update func(func(*Tx) error) error, actor string, cutoff time.Time, batch int) (Compacted, error) {
	var total Compacted
	after := ""
	for {
		var c Compacted
		var next string
		err := update(func(tx *Tx) error {
			var err error
			c, next, err = tx.CompactIncidents(actor, cutoff, after, batch)
			return err
		})
		if err != nil {
			return total, err
		}
		total.Add(c)
		if next == "" {
			return total, nil
		}
		after = next
	}
}
