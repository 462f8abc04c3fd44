package console

import (
	"net/http"
	"sort"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// historyShown is how many backups and restore tests each service shows.
const historyShown = 5

// serviceRecovery is one service's recoverability: objectives beside the
// exposure and estimate drguard exports as metrics, and recent history.
type serviceRecovery struct {
	Service  string
	RPO, RTO time.Duration
	// Exposures are the data a recovery from each source would lose now.
	Exposures []exposure
	// Estimate is the last restore test plus the configured overhead.
	Estimate      time.Duration
	EstimateKnown bool
	Backups       []store.BackupRun
	Tests         []store.RestoreTestRun
}

type exposure struct {
	Source string
	Age    time.Duration
	// Over says it exceeds the RPO objective.
	Over bool
}

// EstimateOver says the RTO estimate exceeds the objective (or no restore
// test has passed, so nothing shows recovery fits in it).
func (s serviceRecovery) EstimateOver() bool {
	return s.RTO > 0 && (!s.EstimateKnown || s.Estimate > s.RTO)
}

// recoverySources are the sources exposures are exported for.
var recoverySources = []string{metrics.SourceBackup, metrics.SourceReplica, metrics.SourcePITR}

// handleRecoverability shows, per service, the RPO and RTO objectives
// beside the current exposure per recovery source and the RTO estimate —
// the same figures as drguard_rpo_exposure_seconds and
// drguard_rto_estimate_seconds — and the latest backups and restore tests
// from the journal.
func (c *Console) handleRecoverability(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Section = "Recoverability", "recoverability"
	cfg := c.o.Config
	byService := map[string]*serviceRecovery{}
	get := func(svc string) *serviceRecovery {
		if s, ok := byService[svc]; ok {
			return s
		}
		s := &serviceRecovery{Service: svc}
		byService[svc] = s
		return s
	}
	for svc, o := range cfg.Objectives {
		s := get(svc)
		s.RPO, s.RTO = time.Duration(o.RPO), time.Duration(o.RTO)
	}
	for _, b := range cfg.Backups {
		get(b.Service)
	}
	err := c.o.Store.View(func(tx *store.Tx) error {
		if err := tx.ForEachBackupRun(func(b store.BackupRun) error {
			s := get(b.Service)
			s.Backups = append(s.Backups, b)
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEachRestoreTestRun(func(t store.RestoreTestRun) error {
			s := get(t.Service)
			s.Tests = append(s.Tests, t)
			return nil
		})
	})
	if err != nil {
		c.fail(w, r, v, http.StatusInternalServerError, "Reading the journal failed: "+err.Error())
		return
	}
	var out []serviceRecovery
	for _, s := range byService {
		if rec := c.o.Recovery; rec != nil {
			for _, src := range recoverySources {
				if d, ok := rec.Exposure(s.Service, src); ok {
					s.Exposures = append(s.Exposures, exposure{Source: src, Age: d, Over: s.RPO > 0 && d > s.RPO})
				}
			}
			s.Estimate, s.EstimateKnown = rec.RTOEstimateOf(s.Service)
		}
		s.Backups = newest(s.Backups, func(b store.BackupRun) time.Time { return b.Start })
		s.Tests = newest(s.Tests, func(t store.RestoreTestRun) time.Time { return t.Start })
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	v.Data = out
	c.render(w, http.StatusOK, "recoverability", v)
}

// newest returns the historyShown newest records, newest first.
func newest[T any](records []T, at func(T) time.Time) []T {
	sort.SliceStable(records, func(i, j int) bool { return at(records[i]).After(at(records[j])) })
	return records[:min(len(records), historyShown)]
}
