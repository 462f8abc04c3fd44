package store

import (
	"context"
	"maps"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

var resendStart = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// resendAlertFor is a firing alert as Alertmanager re-sends it; labels and
// annotations are built afresh on each call, in a varying order.
func resendAlertFor(fp string) Alert {
	return Alert{
		Source: "alertmanager", Fingerprint: fp, Status: "firing", StartsAt: resendStart,
		Labels:       map[string]string{"alertname": "Resend", "service": "demo", "instance": "10.0.0.1:9100", "job": "node"},
		Annotations:  map[string]string{"summary": "resent"},
		GeneratorURL: "http://prometheus/graph", Receiver: "drguard", ReceivedAt: time.Now().UTC(),
	}
}

func pendingCount(t *testing.T, s *Store) int {
	t.Helper()
	pending, err := s.PendingAlerts(0)
	if err != nil {
		t.Fatal(err)
	}
	return len(pending)
}

func mustEnqueue(t testing.TB, s *Store, alerts ...Alert) {
	t.Helper()
	if err := s.EnqueueAlerts(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
}

// TestResendOfDurableAlertIsNotWrittenAgain checks that an alert identical
// to one just made durable (but for its receive time) is acknowledged
// without a record, and that any change to it is written, and so is the
// unchanged alert after the change.
func TestResendOfDurableAlertIsNotWrittenAgain(t *testing.T) {
	changes := []struct {
		name   string
		change func(*Alert)
		// newKey: the change makes another alert (another incident), so
		// the unchanged one stays covered.
		newKey bool
	}{
		{"resolved", func(a *Alert) { a.Status, a.EndsAt = "resolved", resendStart.Add(time.Minute) }, false},
		{"new label", func(a *Alert) { a.Labels["severity"] = "page" }, false},
		{"label value", func(a *Alert) { a.Labels["instance"] = "10.0.0.2:9100" }, false},
		{"label removed", func(a *Alert) { delete(a.Labels, "job") }, false},
		{"new startsAt", func(a *Alert) { a.StartsAt = resendStart.Add(time.Hour) }, true},
		{"endsAt", func(a *Alert) { a.EndsAt = resendStart.Add(time.Hour) }, false},
		{"annotation", func(a *Alert) { a.Annotations["summary"] = "changed" }, false},
		{"receiver", func(a *Alert) { a.Receiver = "other" }, false},
		{"generator URL", func(a *Alert) { a.GeneratorURL = "http://elsewhere/graph" }, false},
		{"evidence", func(a *Alert) { a.Evidence = []byte(`{"ok":false}`) }, false},
		{"source", func(a *Alert) { a.Source = "probe" }, true},
	}
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		s.resends.window = time.Hour // no expiry within the test
		// A key is indexed from its second write on.
		mustEnqueue(t, s, resendAlertFor("fp-1"))
		mustEnqueue(t, s, resendAlertFor("fp-1"))
		mustEnqueue(t, s, resendAlertFor("fp-1"))
		if n := pendingCount(t, s); n != 2 {
			t.Fatalf("after an identical re-send: %d records, want 2", n)
		}
		want := 2
		for _, c := range changes {
			changed := resendAlertFor("fp-1")
			changed.Labels, changed.Annotations = maps.Clone(changed.Labels), maps.Clone(changed.Annotations)
			c.change(&changed)
			mustEnqueue(t, s, changed)
			want++
			if n := pendingCount(t, s); n != want {
				t.Fatalf("%s: %d records, want %d: the change was not written", c.name, n, want)
			}
			mustEnqueue(t, s, resendAlertFor("fp-1"))
			if !c.newKey {
				want++
			}
			if n := pendingCount(t, s); n != want {
				t.Fatalf("%s: the unchanged alert after the change: %d records, want %d", c.name, n, want)
			}
			mustEnqueue(t, s, resendAlertFor("fp-1"))
			if n := pendingCount(t, s); n != want {
				t.Fatalf("%s: an identical re-send after that: %d records, want %d", c.name, n, want)
			}
		}
		// A webhook of a re-sent alert and a new one writes the new one.
		mustEnqueue(t, s, resendAlertFor("fp-1"), resendAlertFor("fp-2"))
		if n := pendingCount(t, s); n != want+1 {
			t.Fatalf("re-send with a new alert: %d records, want %d", n, want+1)
		}
		// The new one's second write indexes it, its third is covered.
		mustEnqueue(t, s, resendAlertFor("fp-1"), resendAlertFor("fp-2"))
		mustEnqueue(t, s, resendAlertFor("fp-1"), resendAlertFor("fp-2"))
		if n := pendingCount(t, s); n != want+2 {
			t.Fatalf("re-sends of both: %d records, want %d", n, want+2)
		}
	})
}

// TestResendIsWrittenAgainOnceTheWindowEnds checks that the index covers
// re-sends for a bounded time: half-way through the window one re-send is
// written to refresh it while the next is still covered, and once the
// window has passed the re-send is written.
func TestResendIsWrittenAgainOnceTheWindowEnds(t *testing.T) {
	s := embeddedJournal(t).openT(t)
	const window = 400 * time.Millisecond
	s.resends.window = window
	steps := []struct {
		name  string
		sleep time.Duration
		want  int
	}{
		{"first", 0, 1},
		{"second: indexed", 0, 2},
		{"identical at once", 0, 2},
		{"past half the window: refreshes", window/2 + 20*time.Millisecond, 3},
		{"right after the refresh", 0, 3},
		{"past the window", window + 50*time.Millisecond, 4},
	}
	for _, st := range steps {
		time.Sleep(st.sleep)
		mustEnqueue(t, s, resendAlertFor("fp-w"))
		if n := pendingCount(t, s); n != st.want {
			t.Fatalf("%s: %d records, want %d", st.name, n, st.want)
		}
	}
}

// TestConcurrentResendsNeverCoverAChange has many writers send two
// contents of one alert (firing and resolved) at once. Whatever order the
// outbox holds them in, afterwards the content other than the last
// written must be written when sent: the index never covers a content the
// outbox does not end with.
func TestConcurrentResendsNeverCoverAChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) {
		s := j.openT(t)
		s.resends.window = time.Hour
		resolved := func() Alert {
			a := resendAlertFor("fp-c")
			a.Status, a.EndsAt = "resolved", resendStart.Add(time.Minute)
			return a
		}
		for round := range 5 {
			var g errgroup.Group
			for w := range 32 {
				g.Go(func() error {
					for i := range 10 {
						a := resendAlertFor("fp-c")
						if (w+i+round)%3 == 0 {
							a = resolved()
						}
						if err := s.EnqueueAlerts(context.Background(), []Alert{a}); err != nil {
							return err
						}
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			pending, err := s.PendingAlerts(0)
			if err != nil {
				t.Fatal(err)
			}
			other := resolved()
			if pending[len(pending)-1].Status == "resolved" {
				other = resendAlertFor("fp-c")
			}
			mustEnqueue(t, s, other)
			if n := pendingCount(t, s); n != len(pending)+1 {
				t.Fatalf("round %d: the outbox ends with %s, and a %s alert sent then was not written", round, pending[len(pending)-1].Status, other.Status)
			}
		}
	})
}

// TestResendIndexForgetsFailedWrites drives the index as the commit loop
// does: a key whose write failed, or whose concurrent writes differed, is
// covered again only after a write of it succeeds alone.
func TestResendIndexForgetsFailedWrites(t *testing.T) {
	now := time.Now()
	a1 := []resendAlert{{key: "k", head: []byte("firing"), tail: []byte("x")}}
	a2 := []resendAlert{{key: "k", head: []byte("resolved"), tail: []byte("x")}}
	cases := []struct {
		name string
		run  func(x *resendIndex)
		// covered is whether a1 is covered afterwards.
		covered bool
	}{
		{"written", func(x *resendIndex) { settleNew(x, a1, true, now) }, true},
		{"failed", func(x *resendIndex) { settleNew(x, a1, false, now) }, false},
		{"written, then a change failed", func(x *resendIndex) {
			settleNew(x, a1, true, now)
			settleNew(x, a2, false, now)
		}, false},
		{"written, then a change written", func(x *resendIndex) {
			settleNew(x, a1, true, now)
			settleNew(x, a2, true, now)
		}, false},
		{"two different in flight, both written", func(x *resendIndex) {
			_, t1 := x.admit(a1, now)
			_, t2 := x.admit(a2, now)
			x.settle(&enqueueReq{resent: t2}, true, now)
			x.settle(&enqueueReq{resent: t1}, true, now)
		}, false},
		{"two identical in flight, both written", func(x *resendIndex) {
			_, t1 := x.admit(a1, now)
			_, t2 := x.admit(a1, now)
			x.settle(&enqueueReq{resent: t1}, true, now)
			x.settle(&enqueueReq{resent: t2}, true, now)
		}, true},
		{"written, then a different write in flight", func(x *resendIndex) {
			settleNew(x, a1, true, now)
			x.admit(a2, now)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := &resendIndex{window: time.Hour}
			settleNew(x, a1, true, now) // seen once: not indexed yet
			c.run(x)
			write, _ := x.admit(a1, now)
			if covered := write == nil; covered != c.covered {
				t.Fatalf("covered %v, want %v", covered, c.covered)
			}
		})
	}
}

func settleNew(x *resendIndex, alerts []resendAlert, ok bool, now time.Time) {
	_, tracked := x.admit(alerts, now)
	x.settle(&enqueueReq{resent: tracked}, ok, now)
}

// BenchmarkResendIndex is the index's cost per 5-alert webhook: all
// re-sends (covered) and all new alerts (written, then settled).
func BenchmarkResendIndex(b *testing.B) {
	alerts := make([]Alert, 5)
	for i := range alerts {
		alerts[i] = resendAlertFor(string(rune('a' + i)))
	}
	for _, name := range []string{"resend", "new"} {
		b.Run(name, func(b *testing.B) {
			x := &resendIndex{}
			var buf []byte
			ras := make([]resendAlert, len(alerts))
			for n := 0; b.Loop(); n++ {
				buf = buf[:0]
				for i := range alerts {
					if name == "new" {
						alerts[i].Fingerprint = string(rune('a'+i)) + string(rune(n))
					}
					start := len(buf)
					var recv int
					buf, recv = appendAlertSplit(buf, &alerts[i])
					ras[i] = resendAlert{key: resendKey(&alerts[i]), head: buf[start:recv], tail: buf[recv+timeLen(buf[recv]):]}
				}
				if _, tracked := x.admit(ras, time.Now()); tracked != nil {
					x.settle(&enqueueReq{resent: tracked}, true, time.Now())
				}
			}
		})
	}
}
