package leader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
)

// testLease is short, so that takeovers take a second or two.
var testLease = config.Lease{TTL: model.Duration(2 * time.Second), RenewInterval: model.Duration(300 * time.Millisecond),
	RenewDeadline: model.Duration(1500 * time.Millisecond)}

// replica is an Elector with a record of its terms.
type replica struct {
	el      *Elector
	m       *metrics.Leader
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	terms   []store.Lease
	fenced  []error // writes of its terms that the lease refused
	leading bool
}

// startReplica runs an Elector on st whose terms write, fenced, every
// 100ms until they end.
func startReplica(t *testing.T, st *store.Store) *replica {
	t.Helper()
	r := &replica{m: metrics.NewLeader(prometheus.NewRegistry()), done: make(chan struct{})}
	var err error
	r.el, err = New(Options{Store: st, Lease: testLease, Metrics: r.m, Logger: testharness.Logger(t),
		Lead: func(ctx context.Context, l store.Lease) error {
			r.mu.Lock()
			r.terms, r.leading = append(r.terms, l), true
			r.mu.Unlock()
			defer func() { r.mu.Lock(); r.leading = false; r.mu.Unlock() }()
			for ctx.Err() == nil {
				err := r.el.Journal().Update(func(tx *store.Tx) error { return tx.Audit(store.AuditEntry{Actor: "test", Action: "write"}) })
				if errors.Is(err, store.ErrFenced) {
					r.mu.Lock()
					r.fenced = append(r.fenced, err)
					r.mu.Unlock()
				}
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = func() { cancel(); <-r.done }
	go func() { defer close(r.done); _ = r.el.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) isLeading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// TestElectionOnPostgres: of two replicas exactly one leads; a write the
// lease refuses deposes it at once; a replica that stops releases the
// lease and the other takes over long before the ttl.
func TestElectionOnPostgres(t *testing.T) {
	pg := testharness.Postgres(t, testharness.NoReplica())
	pg.CreateDB("journal")
	open := func() *store.Store {
		st, err := store.OpenPostgres(context.Background(), pg.PrimaryDSN("journal"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	a, b := startReplica(t, open()), startReplica(t, open())
	var lead, follow *replica
	testharness.Eventually(t, 10*time.Second, "one leader", func() bool {
		switch {
		case a.isLeading() && b.isLeading():
			t.Fatal("both replicas lead")
		case a.isLeading():
			lead, follow = a, b
		case b.isLeading():
			lead, follow = b, a
		}
		return lead != nil
	})
	time.Sleep(3 * time.Duration(testLease.TTL) / 2) // renewals keep it
	if !lead.isLeading() || follow.isLeading() || len(lead.terms) != 1 {
		t.Fatalf("leadership moved without a failure: leader's terms %d", len(lead.terms))
	}
	if got := follow.el.Status(); got != "follower of "+lead.el.Holder()+" (epoch 1)" {
		t.Errorf("follower's status %q", got)
	}

	// Another holder takes the lease over behind the leader's back (as a
	// replica that saw it expire would): the leader's next write is
	// refused, and it steps down at once; nobody leads while the other
	// holder's lease lasts.
	dsn := pg.PrimaryDSN("journal")
	ctx := context.Background()
	term, _ := lead.el.Leading()
	if err := pg.Exec(ctx, dsn, "UPDATE journal_leases SET holder = 'elsewhere', epoch = epoch + 1, expires_at = clock_timestamp() + interval '1 hour'"); err != nil {
		t.Fatal(err)
	}
	// A write of the old term is refused, whether or not a renewal has
	// noticed the takeover first; reporting it ends the term if it has not.
	err := lead.el.o.Store.UpdateFenced(term, func(tx *store.Tx) error { return tx.Audit(store.AuditEntry{Actor: "test", Action: "late write"}) })
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("a write of the deposed term: %v, want ErrFenced", err)
	}
	lead.el.Fenced(term, err)
	testharness.Eventually(t, 5*time.Second, "the deposed leader to step down", func() bool {
		return testutil.ToFloat64(lead.m.Changes.WithLabelValues("lost", metrics.LostFenced)) == 1
	})
	if lead.isLeading() || follow.isLeading() || testutil.ToFloat64(lead.m.FencedWrites) < 1 {
		t.Fatalf("after the takeover: leader leads %v, follower %v, fenced writes %v", lead.isLeading(), follow.isLeading(), testutil.ToFloat64(lead.m.FencedWrites))
	}
	if _, ok := lead.el.Leading(); ok {
		t.Error("the deposed replica still says it leads")
	}
	if err := pg.Exec(ctx, dsn, "UPDATE journal_leases SET expires_at = clock_timestamp()"); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 10*time.Second, "exactly one leader again", func() bool { return a.isLeading() != b.isLeading() })

	// A clean stop releases the lease: the other leads within a renewal
	// interval or two, not a ttl.
	var cur, other *replica
	if a.isLeading() {
		cur, other = a, b
	} else {
		cur, other = b, a
	}
	stopped := time.Now()
	cur.stop()
	testharness.Eventually(t, 5*time.Second, "the other replica to take over", other.isLeading)
	if took := time.Since(stopped); took > time.Duration(testLease.TTL) {
		t.Errorf("takeover after a clean stop took %s, want less than the ttl %s", took, time.Duration(testLease.TTL))
	}
	if got := testutil.ToFloat64(cur.m.Changes.WithLabelValues("lost", metrics.LostShutdown)); got != 1 {
		t.Errorf("lost{reason=shutdown} = %v, want 1", got)
	}
}

// TestElectionOnTheEmbeddedJournal: one process on the embedded journal
// always leads, at epoch 1.
func TestElectionOnTheEmbeddedJournal(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := startReplica(t, st)
	testharness.Eventually(t, 5*time.Second, "the only replica to lead", r.isLeading)
	time.Sleep(time.Second)
	if l, ok := r.el.Leading(); !ok || l.Epoch != 1 || len(r.terms) != 1 || len(r.fenced) != 0 {
		t.Errorf("lease %+v (%v), %d terms, %d refused writes; want one term at epoch 1", l, ok, len(r.terms), len(r.fenced))
	}
	if got := testutil.ToFloat64(r.m.Leader); got != 1 {
		t.Errorf("drguard_leader = %v, want 1", got)
	}
}
