package backup

import (
	"sort"
	"testing"
	"time"
)

const day = 24 * time.Hour

// history returns manifests of backups every 6h (00, 06, 12, 18 UTC) over
// the days before now, now's own included.
func history(now time.Time, days int) []Manifest {
	var out []Manifest
	for t := now.Add(-time.Duration(days) * day); !t.After(now); t = t.Add(6 * time.Hour) {
		out = append(out, Manifest{ID: t.Format(idLayout), Start: t, End: t.Add(10 * time.Minute)})
	}
	return out
}

// expectedGFS computes the kept set by walking the calendar (days, ISO
// weeks from Monday, months) rather than by grouping the backups as
// PlanRetention does.
func expectedGFS(ms []Manifest, p Retention, now time.Time) map[string][]string {
	newestIn := func(from, to time.Time) (Manifest, bool) {
		var best Manifest
		found := false
		for _, m := range ms {
			if !m.Start.Before(from) && m.Start.Before(to) && (!found || m.Start.After(best.Start)) {
				best, found = m, true
			}
		}
		return best, found
	}
	out := map[string][]string{}
	walk := func(class string, window time.Duration, first time.Time, next func(time.Time) time.Time, prev func(time.Time) time.Time) {
		for from := first; now.Sub(from) < window+62*day; from = prev(from) {
			if m, ok := newestIn(from, next(from)); ok && now.Sub(m.Start) < window {
				out[m.ID] = append(out[m.ID], class)
			}
		}
	}
	today := now.Truncate(day)
	walk("daily", p.Daily, today, func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }, func(t time.Time) time.Time { return t.AddDate(0, 0, -1) })
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	walk("weekly", p.Weekly, monday, func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }, func(t time.Time) time.Time { return t.AddDate(0, 0, -7) })
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	walk("monthly", p.Monthly, month, func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }, func(t time.Time) time.Time { return t.AddDate(0, -1, 0) })
	if len(ms) > 0 {
		newest := ms[len(ms)-1].ID
		out[newest] = append(out[newest], "newest")
	}
	for id := range out {
		sort.Strings(out[id])
	}
	return out
}

// TestRetentionGFS applies retention to a synthetic 400-day history of
// 6-hourly backups and checks the kept set exactly.
func TestRetentionGFS(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday
	plan := Retention{Daily: 30 * day, Weekly: 90 * day, Monthly: 365 * day}
	full := history(now, 400)
	cases := []struct {
		name     string
		ms       []Manifest
		policy   Retention
		verified []string
		// counts by reason, and total kept, worked out by hand for the
		// default policy (see the comments).
		wantCounts map[string]int
		wantKept   int
	}{
		{
			// Daily: 11-25 back to 10-26 (18:00, 29.75 days old) = 31.
			// Weekly: this week plus Sundays 11-22 back to 08-30 = 14, of
			// which 5 are also daily. Monthly: Nov 2025 to Nov 2026 = 13,
			// of which Nov and Oct 2026 are also daily. 31 + 9 + 11 = 51.
			name: "plan's 30d/90d/1y", ms: full, policy: plan,
			wantCounts: map[string]int{"daily": 31, "weekly": 14, "monthly": 13, "newest": 1}, wantKept: 51,
		},
		{
			name: "daily only", ms: full, policy: Retention{Daily: 7 * day},
			wantCounts: map[string]int{"daily": 8, "newest": 1}, wantKept: 8,
		},
		{
			name: "an old verified backup is kept", ms: full, policy: plan,
			verified:   []string{"20251022T000000Z"},
			wantCounts: map[string]int{"daily": 31, "weekly": 14, "monthly": 13, "newest": 1, "newest-verified": 1}, wantKept: 52,
		},
		{
			name: "the newest backup survives every window", ms: history(now.Add(-500*day), 3), policy: plan,
			wantCounts: map[string]int{"newest": 1}, wantKept: 1,
		},
		{name: "no backups", policy: plan, wantCounts: map[string]int{}, wantKept: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			verified := map[string]bool{}
			for _, id := range c.verified {
				verified[id] = true
			}
			decisions := PlanRetention(c.ms, verified, c.policy, now)
			if len(decisions) != len(c.ms) {
				t.Fatalf("%d decisions for %d backups", len(decisions), len(c.ms))
			}
			want := expectedGFS(c.ms, c.policy, now)
			for _, id := range c.verified {
				want[id] = append(want[id], "newest-verified")
				sort.Strings(want[id])
			}
			counts := map[string]int{}
			kept := 0
			for _, d := range decisions {
				w, keep := want[d.Manifest.ID]
				if d.Keep != keep || !equalStrings(d.Reasons, w) {
					t.Errorf("%s: keep=%v %v, want keep=%v %v", d.Manifest.ID, d.Keep, d.Reasons, keep, w)
				}
				if d.Keep {
					kept++
				}
				for _, r := range d.Reasons {
					counts[r]++
				}
			}
			if kept != c.wantKept || !equalCounts(counts, c.wantCounts) {
				t.Errorf("kept %d %v, want %d %v", kept, counts, c.wantKept, c.wantCounts)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
