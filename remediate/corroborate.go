package remediate

import (
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// Corroboration. A policy with corroborate runs only while its triggering
// detection and, for each matcher set of requires, another detection are
// firing at once, all started within the window of the triggering one
// (the plan's "all services down in primary region; DNS health checks
// failing; multiple monitoring alerts"). The journal indexes the firing
// incidents (store.FiringDetection), so the check reads what is firing,
// not every incident. A trigger that is not corroborated when it opens
// waits (store.Awaiting) for at most the window: a detection that opens
// meanwhile and corroborates it starts its run then; a trigger that
// resolves first, or whose wait ends, starts nothing.

// startOf is when an incident's condition began, as its source says.
func startOf(inc *store.Incident) time.Time {
	if inc.StartsAt.IsZero() {
		return inc.FirstSeen
	}
	return inc.StartsAt
}

// corroboration returns the incidents that corroborate inc for p, one per
// matcher set, or nil when some set has none.
func (t *txn) corroboration(p *policy, inc *store.Incident) ([]string, error) {
	found := make([]string, len(p.requires))
	start := startOf(inc)
	err := t.tx.ForEachFiring(func(d store.FiringDetection) error {
		if d.IncidentID == inc.ID {
			return nil
		}
		if gap := d.StartsAt.Sub(start); gap > p.window || -gap > p.window {
			return nil
		}
		for i, ms := range p.requires {
			if found[i] == "" && matchAll(ms, d.Labels) {
				found[i] = d.IncidentID
			}
		}
		return nil
	})
	for _, id := range found {
		if id == "" || err != nil {
			return nil, err
		}
	}
	return found, nil
}

// openRun plans a run of p for a new incident, or, for a policy that
// needs corroboration it does not have yet, makes it wait. It returns the
// run, or nil when it waits.
func (t *txn) openRun(p *policy, inc *store.Incident, summary string) (*store.Run, error) {
	if p.requires == nil {
		return t.planRun(p, inc, summary, systemActor)
	}
	by, err := t.corroboration(p, inc)
	if err != nil {
		return nil, err
	}
	if by == nil {
		until := t.now.Add(p.window)
		t.event(inc, "awaiting_corroboration", fmt.Sprintf("policy %s waits until %s for %s", p.cfg.Name,
			until.Format(time.RFC3339), strings.Join(p.cfg.Corroborate.Requires, " and ")), "", "")
		return nil, t.tx.PutAwaiting(store.Awaiting{Policy: p.cfg.Name, IncidentID: inc.ID, Since: t.now, Until: until})
	}
	return t.corroborated(p, inc, summary, by)
}

// corroborated records why p may run for inc and plans the run.
func (t *txn) corroborated(p *policy, inc *store.Incident, summary string, by []string) (*store.Run, error) {
	t.event(inc, "corroborated", fmt.Sprintf("policy %s corroborated by incident(s) %s", p.cfg.Name, strings.Join(by, ", ")), "", "")
	if err := t.audit(systemActor, "policy.corroborated", inc.ID, "", map[string]string{"policy": p.cfg.Name, "by": strings.Join(by, " ")}); err != nil {
		return nil, err
	}
	return t.planRun(p, inc, summary, systemActor)
}

// indexFiring adds a new firing incident to the index, then starts the
// runs that were waiting for it to corroborate them.
func (t *txn) indexFiring(inc *store.Incident) error {
	if err := t.tx.PutFiring(store.FiringDetection{IncidentID: inc.ID, Labels: inc.Labels, StartsAt: startOf(inc)}); err != nil {
		return err
	}
	var waits []store.Awaiting
	if err := t.tx.ForEachAwaiting(func(a store.Awaiting) error { waits = append(waits, a); return nil }); err != nil {
		return err
	}
	for _, a := range waits {
		p := t.e.policy(a.Policy)
		if p == nil || a.IncidentID == inc.ID || !t.now.Before(a.Until) {
			continue
		}
		trigger, err := t.tx.Incident(a.IncidentID)
		if err != nil {
			return fmt.Errorf("incident %s awaiting corroboration: %w", a.IncidentID, err)
		}
		by, err := t.corroboration(p, &trigger)
		if err != nil || by == nil {
			continue
		}
		if err := t.tx.DeleteAwaiting(a.Policy, a.IncidentID); err != nil {
			return err
		}
		summary := detect.Detection{Labels: trigger.Labels, Annotations: trigger.Annotations}.Summary()
		run, err := t.corroborated(p, &trigger, summary, by)
		if err != nil {
			return fmt.Errorf("policy %q: %w", p.cfg.Name, err)
		}
		trigger.RunIDs = append(trigger.RunIDs, run.ID)
		if err := t.tx.PutIncident(&trigger); err != nil {
			return err
		}
	}
	return nil
}

// unindexFiring removes a resolved incident from the index and ends its
// waits: nothing runs for it.
func (t *txn) unindexFiring(inc *store.Incident) error {
	if err := t.tx.DeleteFiring(inc.ID); err != nil {
		return err
	}
	for _, p := range t.e.policies {
		if p.requires == nil || !p.matches(inc.Labels) {
			continue
		}
		if err := t.endWait(p.cfg.Name, inc, "the alert resolved before it was corroborated"); err != nil {
			return err
		}
	}
	return nil
}

// endWait ends policy's wait for inc, if it waits, saying why on the
// timeline and in the audit log.
func (t *txn) endWait(policy string, inc *store.Incident, why string) error {
	waiting := false
	err := t.tx.ForEachAwaiting(func(a store.Awaiting) error {
		waiting = waiting || a.Policy == policy && a.IncidentID == inc.ID
		return nil
	})
	if err != nil || !waiting {
		return err
	}
	if err := t.tx.DeleteAwaiting(policy, inc.ID); err != nil {
		return err
	}
	t.event(inc, "not_corroborated", fmt.Sprintf("policy %s did not run: %s", policy, why), "", "")
	return t.audit(systemActor, "policy.not_corroborated", inc.ID, "", map[string]string{"policy": policy, "reason": why})
}

// expireAwaiting ends the waits for corroboration that outlived their
// window. It looks in a read-only transaction first.
func (e *Engine) expireAwaiting() error {
	now := e.now()
	due := false
	err := e.store.View(func(tx *store.Tx) error {
		return tx.ForEachAwaiting(func(a store.Awaiting) error {
			due = due || !now.Before(a.Until)
			return nil
		})
	})
	if err != nil || !due {
		return err
	}
	return e.update(func(t *txn) error {
		var waits []store.Awaiting
		if err := t.tx.ForEachAwaiting(func(a store.Awaiting) error { waits = append(waits, a); return nil }); err != nil {
			return err
		}
		for _, a := range waits {
			if t.now.Before(a.Until) {
				continue
			}
			inc, err := t.tx.Incident(a.IncidentID)
			if err != nil {
				return fmt.Errorf("incident %s awaiting corroboration: %w", a.IncidentID, err)
			}
			why := fmt.Sprintf("not corroborated within %s", fmtDuration(a.Until.Sub(a.Since)))
			if err := t.endWait(a.Policy, &inc, why); err != nil {
				return err
			}
			if err := t.tx.PutIncident(&inc); err != nil {
				return err
			}
		}
		return nil
	})
}

// policy returns the compiled policy called name, or nil.
func (e *Engine) policy(name string) *policy {
	for _, p := range e.policies {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}
