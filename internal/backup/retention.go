package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// Retention is a grandfather-father-son policy: the newest backup of each
// UTC day is kept for Daily, of each ISO week for Weekly, of each month for
// Monthly. A zero duration keeps no backups of that class.
type Retention struct {
	Daily, Weekly, Monthly time.Duration
}

// RetentionOf returns a backup's configured retention.
func RetentionOf(b config.Backup) Retention {
	return Retention{Daily: time.Duration(b.Retention.Daily), Weekly: time.Duration(b.Retention.Weekly),
		Monthly: time.Duration(b.Retention.Monthly)}
}

// Decision says whether one backup is kept and why.
type Decision struct {
	Manifest Manifest
	Keep     bool
	// Reasons are the classes that keep it: newest, newest-verified,
	// daily, weekly, monthly.
	Reasons []string
}

// orphanGrace is how old a data object without a manifest must be before
// retention deletes it: younger ones may be uploads in progress.
const orphanGrace = 24 * time.Hour

// PlanRetention decides which backups to keep at now. ms are the good
// backups (those with a manifest); verified holds the IDs that passed a
// restore test. The newest backup and the newest verified backup are
// always kept, whatever their age. Ages count from each backup's start.
func PlanRetention(ms []Manifest, verified map[string]bool, p Retention, now time.Time) []Decision {
	sorted := append([]Manifest(nil), ms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Start.Before(sorted[j].Start) })
	out := make([]Decision, len(sorted))
	newestIn := map[string]int{} // class bucket → index of its newest backup
	for i, m := range sorted {
		out[i].Manifest = m
		t := m.Start.UTC()
		y, w := t.ISOWeek()
		newestIn["daily "+t.Format("2006-01-02")] = i
		newestIn[fmt.Sprintf("weekly %d-W%02d", y, w)] = i
		newestIn["monthly "+t.Format("2006-01")] = i
	}
	keep := func(i int, why string) {
		out[i].Keep = true
		out[i].Reasons = append(out[i].Reasons, why)
	}
	if n := len(sorted); n > 0 {
		keep(n-1, "newest")
	}
	for i := len(sorted) - 1; i >= 0; i-- {
		if verified[sorted[i].ID] {
			keep(i, "newest-verified")
			break
		}
	}
	windows := map[string]time.Duration{"daily": p.Daily, "weekly": p.Weekly, "monthly": p.Monthly}
	buckets := make([]string, 0, len(newestIn))
	for k := range newestIn {
		buckets = append(buckets, k)
	}
	sort.Strings(buckets)
	for _, k := range buckets {
		i := newestIn[k]
		class, _, _ := strings.Cut(k, " ")
		if now.Sub(sorted[i].Start) < windows[class] {
			keep(i, class)
		}
	}
	for i := range out {
		sort.Strings(out[i].Reasons)
	}
	return out
}

// Prune applies a backup's retention: it deletes the backups the policy
// does not keep (manifest, data and verification) and data objects left
// without a manifest for over a day. With dryRun it only returns the
// decisions. Deletions are journaled; without a journal Prune refuses to
// delete.
func (s *Service) Prune(ctx context.Context, name string, dryRun bool) ([]Decision, []string, error) {
	b, err := s.Lookup(name)
	if err != nil {
		return nil, nil, err
	}
	o, err := s.objects(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	cat, err := readCatalog(ctx, o, &s.cache)
	if err != nil {
		return nil, nil, err
	}
	verified := map[string]bool{}
	for id, v := range cat.Verifications {
		verified[id] = v.OK
	}
	now := s.now()
	plan := PlanRetention(cat.Manifests, verified, RetentionOf(b), now)
	var orphans []string
	for _, x := range cat.Orphans {
		if now.Sub(x.LastModified) > orphanGrace {
			orphans = append(orphans, x.Key)
		}
	}
	if dryRun {
		return plan, orphans, nil
	}
	if s.journal == nil {
		return plan, orphans, errors.New("retention deletes only with a journal to record the deletions in (--storage.path)")
	}
	var errs []error
	for _, d := range plan {
		if d.Keep {
			continue
		}
		id := d.Manifest.ID
		keys := []string{o.prefix + id + ManifestSuffix, d.Manifest.Object, o.prefix + id + VerificationSuffix}
		errs = append(errs, s.deleteJournaled(ctx, b, o, id, keys,
			fmt.Sprintf("retention: started %s, kept by none of daily %s, weekly %s, monthly %s",
				d.Manifest.Start.Format(time.RFC3339), b.Retention.Daily, b.Retention.Weekly, b.Retention.Monthly)))
	}
	for _, k := range orphans {
		errs = append(errs, s.deleteJournaled(ctx, b, o, strings.TrimSuffix(strings.TrimPrefix(k, o.prefix), DataSuffix),
			[]string{k}, "orphan: data object without a manifest (a failed or interrupted backup)"))
	}
	return plan, orphans, errors.Join(errs...)
}

// deleteJournaled journals a deletion, then deletes the objects. The
// manifest goes first, so a half-done deletion leaves an orphan (cleaned up
// later), never a manifest without data.
func (s *Service) deleteJournaled(ctx context.Context, b config.Backup, o *objectStore, id string, keys []string, reason string) error {
	entry := store.AuditEntry{Time: s.now().UTC(), Actor: "drguard", Action: "backup.delete",
		Subject: b.Name + "/" + id, Detail: map[string]string{"reason": reason, "bucket": o.bucket, "objects": strings.Join(keys, " ")}}
	if err := s.journal.Update(func(tx *store.Tx) error { return tx.Audit(entry) }); err != nil {
		return fmt.Errorf("journal deletion of %s/%s: %w", b.Name, id, err)
	}
	for _, k := range keys {
		if err := o.remove(ctx, k); err != nil {
			return err
		}
	}
	s.log.Info("backup deleted", "backup", b.Name, "id", id, "reason", reason)
	return nil
}
