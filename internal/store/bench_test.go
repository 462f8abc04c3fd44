package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// benchJournals are the backends the store benchmarks compare, each a new
// journal per run; the PostgreSQL server runs with fsync on, as durable as
// the embedded journal's O_DSYNC writes.
var benchJournals = []struct {
	name string
	new  func(b *testing.B) *journal
}{
	{"embedded", func(b *testing.B) *journal { return embeddedJournal(b) }},
	{"postgres", func(b *testing.B) *journal { return postgresJournal(b, withFsync...) }},
}

// parallelN runs fn b.N times over writers goroutines.
func parallelN(b *testing.B, writers int, fn func(w int) error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n.Add(1) <= int64(b.N) {
				if err := fn(w); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEnqueue measures durable outbox appends from concurrent
// callers, each posting a 5-alert batch (as one webhook does).
func BenchmarkEnqueue(b *testing.B) {
	// Every webhook's alerts are new (a fingerprint per call), so that
	// each is written: an identical re-send of a just-written alert is
	// not (outboxresend.go, BenchmarkResendIndex).
	var calls atomic.Int64
	webhook := func() []Alert {
		n := calls.Add(1)
		batch := make([]Alert, 5)
		for i := range batch {
			fp := strconv.FormatInt(n*5+int64(i), 10)
			batch[i] = Alert{Fingerprint: fp, Status: "firing", Labels: map[string]string{"alertname": "Bench", "target": fp}}
		}
		return batch
	}
	for _, bj := range benchJournals {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", bj.name, writers), func(b *testing.B) {
				s := bj.new(b).openT(b)
				parallelN(b, writers, func(int) error { return s.EnqueueAlerts(context.Background(), webhook()) })
			})
		}
	}
}

// BenchmarkUpdate measures serialised read-modify-write transactions (a
// guard read and written back, an audit entry appended) from concurrent
// writers; on PostgreSQL the writers are spread over two replicas.
func BenchmarkUpdate(b *testing.B) {
	for _, bj := range benchJournals {
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/writers=%d", bj.name, writers), func(b *testing.B) {
				j := bj.new(b)
				stores := []*Store{j.openT(b)}
				if j.shared {
					stores = append(stores, j.openT(b))
				}
				parallelN(b, writers, func(w int) error {
					return stores[w%len(stores)].Update(func(tx *Tx) error {
						g, err := tx.Guard(fmt.Sprintf("p/%d", w))
						if err != nil {
							return err
						}
						g.RunTimes = append(g.RunTimes[:0], g.LastRunAt)
						if err := tx.PutGuard(g); err != nil {
							return err
						}
						return tx.Audit(AuditEntry{Actor: "bench", Action: "update", Subject: g.Key})
					})
				})
			})
		}
	}
}

// BenchmarkOpenIncidents measures what the engine does with a batch of
// new alerts: one transaction that, for each of 256 alerts, looks its
// incident up by key, opens it, audits it and acknowledges the alert.
// The figure is per alert.
func BenchmarkOpenIncidents(b *testing.B) {
	const batch = 256
	for _, bj := range benchJournals {
		b.Run(bj.name, func(b *testing.B) {
			s := bj.new(b).openT(b)
			alerts := make([]Alert, batch)
			for i := range alerts {
				alerts[i] = Alert{Fingerprint: fmt.Sprint(i), Status: "firing"}
			}
			b.StopTimer()
			for done := 0; done < b.N; done += batch {
				if err := s.EnqueueAlerts(context.Background(), alerts); err != nil {
					b.Fatal(err)
				}
				pending, err := s.PendingAlerts(batch)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				err = s.Update(func(tx *Tx) error {
					for _, a := range pending {
						key := fmt.Sprintf("%s@%d", a.Fingerprint, a.Seq)
						if _, err := tx.IncidentByKey(key); err != ErrNotFound {
							return fmt.Errorf("incident by key: %v", err)
						}
						in := Incident{Key: key, State: IncidentOpen}
						if err := tx.PutIncident(&in); err != nil {
							return err
						}
						if err := tx.Audit(AuditEntry{Actor: "drguard", Action: "incident.opened", Subject: in.ID}); err != nil {
							return err
						}
						if err := tx.AckAlert(a.Seq); err != nil {
							return err
						}
					}
					return nil
				})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
