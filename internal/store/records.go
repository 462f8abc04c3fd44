package store

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Alert is one detection as received, kept in the outbox until the engine
// has processed it. Seq orders alerts by arrival.
type Alert struct {
	Seq          uint64            `json:"seq"`
	Source       string            `json:"source"`
	Fingerprint  string            `json:"fingerprint"`
	Status       string            `json:"status"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Evidence     []byte            `json:"evidence,omitempty"` // JSON of detect.Result
	ReceivedAt   time.Time         `json:"receivedAt"`
	Receiver     string            `json:"receiver,omitempty"`
}

// Incident states.
const (
	IncidentOpen     = "open"
	IncidentResolved = "resolved"
)

// Incident groups every notification about one condition: one fingerprint
// and start time. Repeats only move LastSeen.
type Incident struct {
	ID          string            `json:"id"`
	Key         string            `json:"key"`
	Source      string            `json:"source"`
	Fingerprint string            `json:"fingerprint"`
	StartsAt    time.Time         `json:"startsAt"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	State       string            `json:"state"`       // open, resolved
	AlertStatus string            `json:"alertStatus"` // firing, resolved
	FirstSeen   time.Time         `json:"firstSeen"`
	LastSeen    time.Time         `json:"lastSeen"`
	AlertEndsAt time.Time         `json:"alertEndsAt,omitzero"`
	ResolvedAt  time.Time         `json:"resolvedAt,omitzero"`
	Repeats     int               `json:"repeats"`
	RunIDs      []string          `json:"runIds,omitempty"`
	// Timeline is the incident's story in order: received, matched, step
	// started/finished, approvals, resolution.
	Timeline []Event `json:"timeline"`
}

// Event is one dated line of an incident's timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	RunID   string    `json:"runId,omitempty"`
	Step    string    `json:"step,omitempty"`
}

// RunState is where a run stands. A run is active while pending, running
// or awaiting approval; every other state is final. The values are the
// strings journals have always held.
type RunState string

// Run states.
const (
	RunPending          RunState = "pending"
	RunRunning          RunState = "running"
	RunAwaitingApproval RunState = "awaiting_approval"
	RunSucceeded        RunState = "succeeded"
	RunFailed           RunState = "failed"
	RunRejected         RunState = "rejected"
	RunExpired          RunState = "expired"
	RunObsolete         RunState = "obsolete"
	RunInterrupted      RunState = "interrupted"
	RunDryRun           RunState = "dry_run"
	// RunBlocked is a run a guardrail stopped; Reason says which.
	RunBlocked RunState = "blocked"
)

// RunStates lists every run state, for code and tests that must cover
// them all.
func RunStates() []RunState {
	return []RunState{RunPending, RunRunning, RunAwaitingApproval, RunSucceeded, RunFailed, RunRejected,
		RunExpired, RunObsolete, RunInterrupted, RunDryRun, RunBlocked}
}

// StepState is where a step stands. Pending, awaiting approval and running
// steps may still change; every other state is final.
type StepState string

// Step states.
const (
	StepPending          StepState = "pending"
	StepAwaitingApproval StepState = "awaiting_approval"
	StepRunning          StepState = "running"
	StepSucceeded        StepState = "succeeded"
	StepFailed           StepState = "failed"
	StepSkipped          StepState = "skipped"
	StepRejected         StepState = "rejected"
	StepExpired          StepState = "expired"
	StepObsolete         StepState = "obsolete"
	StepInterrupted      StepState = "interrupted"
	StepDryRun           StepState = "dry_run"
	StepBlocked          StepState = "blocked" // a guardrail stopped it; Reason says which
)

// Failures of a step, in Step.Failure.
const (
	FailureTimedOut     = "timed_out"
	FailureVerification = "verification"
)

// StepStates lists every step state.
func StepStates() []StepState {
	return []StepState{StepPending, StepAwaitingApproval, StepRunning, StepSucceeded, StepFailed, StepSkipped,
		StepRejected, StepExpired, StepObsolete, StepInterrupted, StepDryRun, StepBlocked}
}

// Run is one execution of a policy for one target.
type Run struct {
	ID          string            `json:"id"`
	IncidentID  string            `json:"incidentId"`
	Policy      string            `json:"policy"`
	Target      string            `json:"target"`
	State       RunState          `json:"state"`
	DryRun      bool              `json:"dryRun"`
	Reason      string            `json:"reason,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Steps       []Step            `json:"steps"`
	// RequestedBy is who asked for the run: the system actor for runs
	// that alerts started, a user for runs a person started (a manual run,
	// a drill). With four-eyes on, that user cannot approve its steps.
	RequestedBy string `json:"requestedBy,omitempty"`
	// OnResolved is the policy's on_resolved when the run was planned:
	// stop (or empty, in older journals) ends the run obsolete when its
	// alert resolves; continue lets its non-destructive, ungated steps run.
	OnResolved string    `json:"onResolved,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	EndedAt    time.Time `json:"endedAt,omitzero"`
}

// Active reports whether the run still has work to do.
func (r Run) Active() bool {
	return r.State == RunPending || r.State == RunRunning || r.State == RunAwaitingApproval
}

// Step is one step of a run as journaled. Params are the rendered
// parameters (never secrets: secret values are resolved by actions at run
// time from files or config).
type Step struct {
	Index       int            `json:"index"`
	Name        string         `json:"name"`
	Action      string         `json:"action"`
	Params      map[string]any `json:"params,omitempty"`
	State       StepState      `json:"state"`
	Reason      string         `json:"reason,omitempty"`
	Destructive bool           `json:"destructive"`
	Idempotent  bool           `json:"idempotent"`
	ApprovalID  string         `json:"approvalId,omitempty"`
	Attempts    int            `json:"attempts"`
	StartedAt   time.Time      `json:"startedAt,omitzero"`
	EndedAt     time.Time      `json:"endedAt,omitzero"`
	Output      string         `json:"output,omitempty"`
	Error       string         `json:"error,omitempty"`
	// Failure says why a failed step failed: FailureTimedOut,
	// FailureVerification, or empty when its action failed (and in
	// journals older than the field).
	Failure string         `json:"failure,omitempty"`
	Result  map[string]any `json:"result,omitempty"`

	// The step's plan, copied from the policy when the run was created so
	// that a run executes what it showed even if the configuration changes.
	Timeout          model.Duration `json:"timeout,omitempty"`
	ApprovalRequired bool           `json:"approvalRequired,omitempty"`
	ApprovalExpires  model.Duration `json:"approvalExpires,omitempty"`
	// Approvals is how many different people must approve the step; 0
	// (older journals) means one.
	Approvals int         `json:"approvals,omitempty"`
	OnFailure string      `json:"onFailure,omitempty"`
	Verify    *StepVerify `json:"verify,omitempty"`
}

// StepVerify is a step's verification: the check to poll and how long it
// may take to pass.
type StepVerify struct {
	Probe  string         `json:"probe"`
	Within model.Duration `json:"within"`
}

// ApprovalState is where an approval stands: pending until it is decided,
// then approved, rejected, expired or obsolete, all final.
type ApprovalState string

// Approval states.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalRejected ApprovalState = "rejected"
	ApprovalExpired  ApprovalState = "expired"
	ApprovalObsolete ApprovalState = "obsolete"
)

// ApprovalStates lists every approval state.
func ApprovalStates() []ApprovalState {
	return []ApprovalState{ApprovalPending, ApprovalApproved, ApprovalRejected, ApprovalExpired, ApprovalObsolete}
}

// Approval is a gated step waiting for (or having had) a human decision.
// It is bound to the exact step it showed through ParamsHash, a hash of
// the action, target, rendered parameters and step index.
type Approval struct {
	ID          string         `json:"id"`
	RunID       string         `json:"runId"`
	IncidentID  string         `json:"incidentId"`
	StepIndex   int            `json:"stepIndex"`
	Step        string         `json:"step"`
	Policy      string         `json:"policy"`
	Action      string         `json:"action"`
	Target      string         `json:"target"`
	Service     string         `json:"service,omitempty"`
	Why         string         `json:"why"`
	DataAtRisk  string         `json:"dataAtRisk,omitempty"`
	Params      map[string]any `json:"params"`
	ParamsHash  string         `json:"paramsHash"`
	State       ApprovalState  `json:"state"`
	RequestedBy string         `json:"requestedBy"`
	CreatedAt   time.Time      `json:"createdAt"`
	ExpiresAt   time.Time      `json:"expiresAt"`
	// Required is how many different approvers must approve; 0 (older
	// journals) means one.
	Required int `json:"required,omitempty"`
	// Votes are the approvals given so far, in order.
	Votes []Vote `json:"votes,omitempty"`
	// DecidedBy, DecidedFrom, DecidedAt and Comment are the decision that
	// ended the approval: the vote that completed it, a rejection, or
	// drguard for expiry and obsolescence.
	DecidedBy   string    `json:"decidedBy,omitempty"`
	DecidedFrom string    `json:"decidedFrom,omitempty"`
	DecidedAt   time.Time `json:"decidedAt,omitzero"`
	Comment     string    `json:"comment,omitempty"`
}

// Vote is one person's approval of a gated step.
type Vote struct {
	Actor   string    `json:"actor"`
	Remote  string    `json:"remote,omitempty"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

// StillNeeded is how many more approvals the approval needs.
func (a Approval) StillNeeded() int {
	return max(max(a.Required, 1)-len(a.Votes), 0)
}

// Outstanding says how many more approvals a pending approval needs, in
// words: "1 more approval needed".
func (a Approval) Outstanding() string {
	switch n := a.StillNeeded(); n {
	case 1:
		return "1 more approval needed"
	default:
		return fmt.Sprintf("%d more approvals needed", n)
	}
}

// VotedBy reports whether actor has already approved.
func (a Approval) VotedBy(actor string) bool {
	for _, v := range a.Votes {
		if v.Actor == actor {
			return true
		}
	}
	return false
}

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	Seq     uint64            `json:"seq"`
	Time    time.Time         `json:"time"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Subject string            `json:"subject"`
	Remote  string            `json:"remote,omitempty"`
	Detail  map[string]string `json:"detail,omitempty"`
}

// Guard is the persisted guardrail state of one (policy, target) pair.
type Guard struct {
	Key         string      `json:"key"`
	ActiveRunID string      `json:"activeRunId,omitempty"`
	LastRunAt   time.Time   `json:"lastRunAt,omitzero"`
	RunTimes    []time.Time `json:"runTimes,omitzero"`
	// LastResults are the structured results of the latest successful
	// steps for this (policy, target), by step name, so that a later run
	// can refer to what an earlier one did.
	LastResults map[string]map[string]any `json:"lastResults,omitempty"`
}

// Settings is drguard's persisted global state.
type Settings struct {
	Paused   bool      `json:"paused"`
	PausedBy string    `json:"pausedBy,omitempty"`
	PausedAt time.Time `json:"pausedAt,omitzero"`
	// DestructiveTimes are the start times of recent destructive steps,
	// for the global budget.
	DestructiveTimes []time.Time `json:"destructiveTimes,omitzero"`
}
