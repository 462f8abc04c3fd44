package store

import (
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

// Run states. A run is active while pending, running or awaiting_approval.
const (
	RunPending          = "pending"
	RunRunning          = "running"
	RunAwaitingApproval = "awaiting_approval"
	RunSucceeded        = "succeeded"
	RunFailed           = "failed"
	RunRejected         = "rejected"
	RunExpired          = "expired"
	RunObsolete         = "obsolete"
	RunInterrupted      = "interrupted"
	RunDryRun           = "dry_run"
	// RunBlocked is a run a guardrail stopped; Reason says which.
	RunBlocked = "blocked"
)

// Step states.
const (
	StepPending          = "pending"
	StepAwaitingApproval = "awaiting_approval"
	StepRunning          = "running"
	StepSucceeded        = "succeeded"
	StepFailed           = "failed"
	StepSkipped          = "skipped"
	StepRejected         = "rejected"
	StepExpired          = "expired"
	StepObsolete         = "obsolete"
	StepInterrupted      = "interrupted"
	StepDryRun           = "dry_run"
	StepBlocked          = "blocked" // a guardrail stopped it; Reason says which
)

// Run is one execution of a policy for one target.
type Run struct {
	ID          string            `json:"id"`
	IncidentID  string            `json:"incidentId"`
	Policy      string            `json:"policy"`
	Target      string            `json:"target"`
	State       string            `json:"state"`
	DryRun      bool              `json:"dryRun"`
	Reason      string            `json:"reason,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Steps       []Step            `json:"steps"`
	CreatedAt   time.Time         `json:"createdAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	EndedAt     time.Time         `json:"endedAt,omitzero"`
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
	State       string         `json:"state"`
	Reason      string         `json:"reason,omitempty"`
	Destructive bool           `json:"destructive"`
	Idempotent  bool           `json:"idempotent"`
	ApprovalID  string         `json:"approvalId,omitempty"`
	Attempts    int            `json:"attempts"`
	StartedAt   time.Time      `json:"startedAt,omitzero"`
	EndedAt     time.Time      `json:"endedAt,omitzero"`
	Output      string         `json:"output,omitempty"`
	Error       string         `json:"error,omitempty"`
	Result      map[string]any `json:"result,omitempty"`

	// The step's plan, copied from the policy when the run was created so
	// that a run executes what it showed even if the configuration changes.
	Timeout          model.Duration `json:"timeout,omitempty"`
	ApprovalRequired bool           `json:"approvalRequired,omitempty"`
	ApprovalExpires  model.Duration `json:"approvalExpires,omitempty"`
	OnFailure        string         `json:"onFailure,omitempty"`
	Verify           *StepVerify    `json:"verify,omitempty"`
}

// StepVerify is a step's verification: the check to poll and how long it
// may take to pass.
type StepVerify struct {
	Probe  string         `json:"probe"`
	Within model.Duration `json:"within"`
}

// Approval states.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
	ApprovalObsolete = "obsolete"
)

// Approval is a gated step waiting for (or having had) a human decision.
// It is bound to the exact parameters it showed through ParamsHash.
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
	State       string         `json:"state"`
	RequestedBy string         `json:"requestedBy"`
	CreatedAt   time.Time      `json:"createdAt"`
	ExpiresAt   time.Time      `json:"expiresAt"`
	DecidedBy   string         `json:"decidedBy,omitempty"`
	DecidedFrom string         `json:"decidedFrom,omitempty"`
	DecidedAt   time.Time      `json:"decidedAt,omitzero"`
	Comment     string         `json:"comment,omitempty"`
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
