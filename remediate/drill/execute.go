package drill

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// execution is one drill run in progress: its record, what the engine
// handed it, and what it holds.
type execution struct {
	r *Runner
	d config.Drill
	// ctx ends at the drill's deadline or when drguard stops.
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	run store.DrillRun
	// claimed are incidents the correlation handed over, not yet handled.
	claimed []store.Incident
	wake    chan struct{}
	// refused are approvals the drill may not approve (four-eyes) or
	// could not (expired, obsolete): not tried again.
	refused map[string]bool
	aborted bool
	// failure says why the drill could not go on (its injection failed,
	// it timed out), for its result.
	failure string
	// before is the newest heartbeat on the heartbeat's target before the
	// injection; zero when not read.
	before  time.Time
	release []func()
	// recovery is the evidence recovered_when gave (its last reason).
	recovery string
}

// begin journals the drill's run and prepares its execution. r.mu is held.
func (r *Runner) begin(ctx context.Context, d config.Drill, actor, remote string) (*execution, error) {
	now := r.now().UTC()
	o := r.o.Config.Objectives[d.Objective]
	run := store.DrillRun{
		Drill: d.Name, Scenario: d.Scenario, Service: d.Objective, Policies: d.AllPolicies(), State: store.DrillRunning,
		Synthetic: d.Inject.Synthetic, AutoApprove: d.AutoApprove, RequestedBy: Requester(d.Name),
		StartedBy: actor, StartedFrom: remote, StartedAt: now, Deadline: now.Add(time.Duration(d.Timeout)),
		Objective:     store.DrillObjective{RPOSeconds: time.Duration(o.RPO).Seconds(), RTOSeconds: time.Duration(o.RTO).Seconds()},
		RecoveredWhen: d.RecoveredWhen, Heartbeat: d.Heartbeat, ServingTarget: d.ServingTarget,
	}
	err := r.o.Journal.Update(func(tx *store.Tx) error {
		s, err := tx.Settings()
		if err != nil {
			return err
		}
		if s.Paused {
			return fmt.Errorf("%w: remediation is paused (by %s); a drill would inject a failure that nothing recovers from", ErrConflict, s.PausedBy)
		}
		run.Log = []store.Event{{Time: now, Kind: "started", Message: fmt.Sprintf("drill %s started by %s; recovery by %s, measured against %s's objectives (RTO %s, RPO %s)",
			d.Name, actor, strings.Join(d.AllPolicies(), ", "), d.Objective, o.RTO, o.RPO)}}
		if err := tx.PutDrillRun(&run); err != nil {
			return err
		}
		return tx.Audit(store.AuditEntry{Time: now, Actor: actor, Action: "drill.started", Subject: run.ID, Remote: remote,
			Detail: map[string]string{"drill": d.Name, "policies": strings.Join(d.AllPolicies(), ",")}})
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("drill started", "drill", d.Name, "run", run.ID, "by", actor)
	x := &execution{r: r, d: d, run: run, wake: make(chan struct{}, 1), refused: map[string]bool{}}
	x.ctx, x.cancel = context.WithDeadline(r.ctx, run.Deadline)
	r.o.Metrics.Running.WithLabelValues(d.Name).Set(1)
	return x, nil
}

// snapshot returns a copy of the drill's record.
func (x *execution) snapshot() store.DrillRun {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.run
}

// logf appends an event to the drill's log; x.mu is held.
func (x *execution) logf(kind, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	x.run.Log = append(x.run.Log, store.Event{Time: x.r.now().UTC(), Kind: kind, Message: msg})
	x.r.log.Info("drill "+strings.ReplaceAll(kind, "_", " "), "drill", x.d.Name, "run", x.run.ID, "detail", msg)
}

// note appends an event and journals the record.
func (x *execution) note(kind, format string, args ...any) {
	x.mu.Lock()
	x.logf(kind, format, args...)
	x.mu.Unlock()
	x.save()
}

// save journals the drill's record as it stands.
func (x *execution) save() {
	run := x.snapshot()
	if err := x.r.o.Journal.Update(func(tx *store.Tx) error { return tx.PutDrillRun(&run) }); err != nil {
		x.r.log.Error("journaling the drill failed; will retry at its next change", "run", run.ID, "err", err)
	}
}

// execute runs the drill to its end.
func (x *execution) execute() {
	defer x.cancel()
	run := x.snapshot()
	x.r.announce(x.ctx, x.d, &run, "start")
	x.mu.Lock()
	x.run.Announcements = run.Announcements
	x.mu.Unlock()
	x.save()
	release := x.r.o.Engine.Correlate(&remediate.Correlation{Drill: x.d.Name, RunID: x.run.ID, Policies: x.d.AllPolicies(), Notify: x.claim})
	x.release = append(x.release, release)
	if x.d.Heartbeat != "" {
		x.readBefore() // last, so that the injection follows the reading at once
	}
	if x.inject() {
		x.await()
	}
	x.finish()
}

// claim receives an incident the engine's correlation claimed. It never
// blocks.
func (x *execution) claim(in store.Incident) {
	x.mu.Lock()
	x.claimed = append(x.claimed, in)
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// inject runs the injection steps in order, or journals the synthetic
// detection. It reports whether the failure was injected.
func (x *execution) inject() bool {
	x.mu.Lock()
	x.run.InjectedAt = x.r.now().UTC()
	x.mu.Unlock()
	if x.d.Inject.Synthetic {
		if err := x.r.o.Store.EnqueueAlerts(x.ctx, []store.Alert{x.syntheticAlert(detect.StatusFiring)}); err != nil {
			x.note("injection_failed", "the synthetic detection could not be journaled: %v", err)
			x.mu.Lock()
			x.failure = "the synthetic detection could not be journaled"
			x.mu.Unlock()
			return false
		}
		x.r.o.Engine.Wake()
		x.note("injected", "synthetic detection {%s} journaled as if the alert had fired (tabletop drill: the detection path is not exercised)", remediate.LabelText(x.d.Inject.Labels))
		return true
	}
	for _, st := range x.d.Inject.Steps {
		if x.isAborted() || x.ctx.Err() != nil {
			x.note("injection_stopped", "injection stopped before step %s", st.Name)
			return false
		}
		ds := x.injectStep(st)
		x.mu.Lock()
		x.run.Injection = append(x.run.Injection, ds)
		x.mu.Unlock()
		if ds.State == store.StepFailed && st.OnFailure != config.OnFailureContinue {
			x.note("injection_failed", "injection step %s (%s) failed: %s", st.Name, st.Action, ds.Error)
			x.mu.Lock()
			x.failure = fmt.Sprintf("injection step %s failed: %s", st.Name, ds.Error)
			x.mu.Unlock()
			return false
		}
		x.note("injected", "injection step %s (%s) %s: %s", st.Name, st.Action, ds.State, firstLine(ds.Output))
	}
	return true
}

// injectStep runs one injection step with its timeout. The result is
// named so that the deferred function's end time reaches the caller.
func (x *execution) injectStep(st config.Step) (ds store.DrillStep) {
	ds = store.DrillStep{Name: st.Name, Action: st.Action, StartedAt: x.r.now().UTC()}
	defer func() { ds.EndedAt = x.r.now().UTC() }()
	act, ok := x.r.o.Actions[st.Action]
	if !ok {
		ds.State, ds.Error = store.StepFailed, fmt.Sprintf("action %q is not available", st.Action)
		return ds
	}
	params, err := remediate.RenderParams(st.Params, remediate.TemplateData{
		Labels: map[string]string{remediate.LabelDrill: x.d.Name}, Run: remediate.TemplateRun{ID: x.run.ID}, Policy: x.d.Policy,
	})
	if err != nil {
		ds.State, ds.Error = store.StepFailed, err.Error()
		return ds
	}
	ctx, cancel := context.WithTimeout(x.ctx, time.Duration(st.Timeout))
	defer cancel()
	out, err := act.Run(ctx, action.Request{RunID: x.run.ID, Step: st.Name, Policy: Requester(x.d.Name), Params: params,
		Labels: map[string]string{remediate.LabelDrill: x.d.Name}, Logger: x.r.log.With("drill", x.d.Name, "step", st.Name)})
	ds.Output = bound(out.Output)
	ds.State = store.StepSucceeded
	if err != nil {
		ds.State, ds.Error = store.StepFailed, bound(err.Error())
	}
	return ds
}

// syntheticAlert is the detection a tabletop drill journals, firing or
// resolved.
func (x *execution) syntheticAlert(status detect.Status) store.Alert {
	now := x.r.now().UTC()
	a := store.Alert{
		Source: "drill", Fingerprint: "drill-" + x.run.ID, Status: string(status), StartsAt: x.run.InjectedAt,
		Labels:      x.d.Inject.Labels,
		Annotations: map[string]string{"summary": fmt.Sprintf("drill %s: synthetic detection (tabletop drill)", x.d.Name)},
		ReceivedAt:  now,
	}
	if status == detect.StatusResolved {
		a.EndsAt = now
	}
	return a
}

// recheck is how often recovered_when is run once the recovery has ended.
const recheck = time.Second

// await handles what the injection caused until the service has recovered,
// the drill is aborted and its runs have stopped, the deadline passes, or
// drguard stops.
func (x *execution) await() {
	t := time.NewTicker(x.r.o.Tick)
	defer t.Stop()
	var lastCheck time.Time
	for {
		x.handleClaims()
		runs := x.runs()
		x.autoApprove(runs)
		ended := len(runs) > 0 && allEnded(runs)
		switch {
		case x.isAborted() && (ended || len(runs) == 0):
			return
		case ended && !x.isAborted() && time.Since(lastCheck) >= recheck:
			lastCheck = time.Now()
			if x.recovered() {
				x.measureRPO()
				return
			}
		}
		select {
		case <-x.ctx.Done():
			x.deadline()
			return
		case <-x.wake:
		case <-t.C:
		}
	}
}

// handleClaims records the incidents the correlation handed over and
// starts, requested by the drill, the runs of the drill's policies that
// match each.
func (x *execution) handleClaims() {
	x.mu.Lock()
	claimed := x.claimed
	x.claimed = nil
	x.mu.Unlock()
	for _, in := range claimed {
		di := store.DrillIncident{ID: in.ID, Source: in.Source, DetectedAt: in.FirstSeen,
			Summary: detect.Detection{Labels: in.Labels, Annotations: in.Annotations}.Summary()}
		var errs []string
		if x.isAborted() {
			errs = append(errs, "the drill was aborted: its runs are left to people")
		}
		for _, p := range matchingPolicies(x.r.o.Config, x.d, in.Labels) {
			if x.isAborted() {
				break
			}
			run, err := x.r.o.Engine.StartRun(x.ctx, remediate.RunRequest{IncidentID: in.ID, Policy: p, RequestedBy: Requester(x.d.Name)})
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", p, err))
				continue
			}
			di.Runs = append(di.Runs, run.ID)
		}
		di.Error = strings.Join(errs, "; ")
		x.mu.Lock()
		x.run.Incidents = append(x.run.Incidents, di)
		x.logf("correlated", "incident %s (%s, %s) detected %s after the injection; runs %v requested by %s%s",
			in.ID, in.Source, di.Summary, fmtDur(in.FirstSeen.Sub(x.run.InjectedAt)), di.Runs, Requester(x.d.Name), errSuffix(di.Error))
		x.mu.Unlock()
		x.save()
	}
}

// runs reads the drill's runs from the journal.
func (x *execution) runs() []store.Run {
	ids := x.runIDs()
	var out []store.Run
	err := x.r.o.Store.View(func(tx *store.Tx) error {
		for _, id := range ids {
			r, err := tx.Run(id)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		x.r.log.Error("reading the drill's runs failed; will retry", "run", x.run.ID, "err", err)
	}
	return out
}

// runIDs lists the runs the drill requested.
func (x *execution) runIDs() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ids []string
	for _, in := range x.run.Incidents {
		ids = append(ids, in.Runs...)
	}
	return ids
}

// allEnded reports whether no run is active.
func allEnded(runs []store.Run) bool {
	for _, r := range runs {
		if r.Active() {
			return false
		}
	}
	return true
}

// recovered runs recovered_when once; when it passes, the RTO clock stops.
func (x *execution) recovered() bool {
	ctx, cancel := context.WithTimeout(x.ctx, 30*time.Second)
	defer cancel()
	res, err := x.r.o.Prober.Verify(ctx, x.d.RecoveredWhen, nil)
	reason := res.Reason
	if err != nil {
		reason = err.Error()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil || !res.OK {
		x.recovery = reason
		return false
	}
	x.run.RecoveredAt = x.r.now().UTC()
	x.recovery = reason
	x.logf("recovered", "recovered_when %s passes, %s after the injection", x.d.RecoveredWhen, fmtDur(x.run.RecoveredAt.Sub(x.run.InjectedAt)))
	return true
}
