package store

import (
	"errors"
	"time"
)

// bucketDrills holds drill runs ("drl-…", one record per run, rewritten as
// it advances) and the last schedule announcement of each drill
// ("ann-NAME").
var bucketDrills = []byte("drills")

// Open creates every bucket in allBuckets; the drills bucket joins the list
// here so that this file stays self-contained.
func init() { allBuckets = append(allBuckets, bucketDrills) }

// Drill run states. A drill is active while running; the others are final.
const (
	DrillRunning = "running"
	// DrillPassed: the drill ended and every checklist item passed.
	DrillPassed = "passed"
	// DrillFailed: the drill ended (recovered, timed out, or its
	// injection failed) and some checklist item did not pass.
	DrillFailed = "failed"
	// DrillAborted: a person aborted it; its runs stopped at their next
	// step.
	DrillAborted = "aborted"
	// DrillInterrupted: drguard stopped during the drill.
	DrillInterrupted = "interrupted"
)

// Statuses of a checklist item.
const (
	CheckPass     = "pass"
	CheckFail     = "fail"
	CheckNotShown = "not_shown" // the drill could not show it (a synthetic detection)
)

// DrillRun is one execution of a configured drill, as the journal keeps
// it: who started it and when, what was injected, the incidents the
// injection caused and the runs that recovered from them, the measured RTO
// (with its phases) and RPO against the objective, and the plan's testing
// checklist with the evidence of each item. Reports and post-mortems are
// rendered from it alone.
type DrillRun struct {
	ID       string   `json:"id"` // drl-000001
	Drill    string   `json:"drill"`
	Scenario string   `json:"scenario"`
	Service  string   `json:"service"` // the objective's service
	Policies []string `json:"policies"`
	State    string   `json:"state"`
	// Reason says why the drill ended as it did.
	Reason      string `json:"reason,omitempty"`
	Synthetic   bool   `json:"synthetic,omitempty"`
	AutoApprove bool   `json:"autoApprove,omitempty"`
	// RequestedBy is the requester of the runs the drill starts
	// (drill:NAME); StartedBy is the person who started the drill.
	RequestedBy string    `json:"requestedBy"`
	StartedBy   string    `json:"startedBy"`
	StartedFrom string    `json:"startedFrom,omitempty"`
	StartedAt   time.Time `json:"startedAt"`
	Deadline    time.Time `json:"deadline"`
	EndedAt     time.Time `json:"endedAt,omitzero"`
	AbortedBy   string    `json:"abortedBy,omitempty"`
	// Objective is the service's RPO and RTO when the drill started.
	Objective DrillObjective `json:"objective"`
	// RecoveredWhen, Heartbeat and ServingTarget are the drill's probes
	// and the postgres target read after the recovery.
	RecoveredWhen string `json:"recoveredWhen"`
	Heartbeat     string `json:"heartbeat,omitempty"`
	ServingTarget string `json:"servingTarget,omitempty"`
	// InjectedAt is when the first injection step started (or the
	// synthetic detection was journaled): the start of the RTO clock.
	InjectedAt    time.Time       `json:"injectedAt,omitzero"`
	Injection     []DrillStep     `json:"injection,omitempty"`
	Announcements []DrillNotice   `json:"announcements,omitempty"`
	Incidents     []DrillIncident `json:"incidents,omitempty"`
	// RecoveredAt is when recovered_when first passed once every run the
	// drill requested had ended: the end of the RTO clock.
	RecoveredAt time.Time `json:"recoveredAt,omitzero"`
	// RTO is InjectedAt → RecoveredAt; RPO is the data lost, from the
	// heartbeat. Nil when not measured (the checklist says why).
	RTO *DrillMeasure `json:"rto,omitempty"`
	RPO *DrillMeasure `json:"rpo,omitempty"`
	// Phases break the RTO down: injection, detection, decision, each
	// approval wait, each step, verification.
	Phases    []DrillPhase `json:"phases,omitempty"`
	Checklist []DrillCheck `json:"checklist,omitempty"`
	// Log is the drill's own timeline: announced, injected, correlated,
	// approved, recovered, measured, ended.
	Log []Event `json:"log"`
}

// Active reports whether the drill is still running.
func (d DrillRun) Active() bool { return d.State == DrillRunning }

// Passed reports whether the drill ended with every checklist item passed.
func (d DrillRun) Passed() bool { return d.State == DrillPassed }

// DrillObjective is a service's objectives in seconds.
type DrillObjective struct {
	RPOSeconds float64 `json:"rpoSeconds"`
	RTOSeconds float64 `json:"rtoSeconds"`
}

// DrillStep is one injection step and its outcome.
type DrillStep struct {
	Name      string    `json:"name"`
	Action    string    `json:"action"`
	State     StepState `json:"state"` // succeeded, failed, skipped
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	Output    string    `json:"output,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// DrillNotice is one message a drill sent about itself.
type DrillNotice struct {
	Notifier string    `json:"notifier"`
	Kind     string    `json:"kind"` // start, end, due
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"` // empty when delivered
}

// DrillIncident is an incident the drill's injection caused, correlated to
// the drill (it carries the label drill="NAME"), with the runs the drill
// requested for it.
type DrillIncident struct {
	ID      string `json:"id"`
	Source  string `json:"source"` // probe, alertmanager, drill (synthetic)
	Summary string `json:"summary"`
	// DetectedAt is when drguard opened the incident.
	DetectedAt time.Time `json:"detectedAt"`
	Runs       []string  `json:"runs,omitempty"`
	// Error says why no run could be started, when none was.
	Error string `json:"error,omitempty"`
}

// DrillMeasure is a measured duration against its objective: Seconds is
// To − From.
type DrillMeasure struct {
	Seconds          float64   `json:"seconds"`
	ObjectiveSeconds float64   `json:"objectiveSeconds"`
	Within           bool      `json:"within"`
	From             time.Time `json:"from"`
	To               time.Time `json:"to"`
	// Detail says what From and To are.
	Detail string `json:"detail"`
}

// Kinds of drill phases.
const (
	PhaseInjection    = "injection"
	PhaseDetection    = "detection"
	PhaseDecision     = "decision"
	PhaseApproval     = "approval"
	PhaseStep         = "step"
	PhaseVerification = "verification"
)

// DrillPhase is one part of the time to recover.
type DrillPhase struct {
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	RunID   string    `json:"runId,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// The plan's testing checklist, in its order.
const (
	CheckBackupRestoration = "backup_restoration"
	CheckFailoverWithinRTO = "failover_within_rto"
	CheckDataLossWithinRPO = "data_loss_within_rpo"
	CheckApplication       = "application_functional"
	CheckMonitoring        = "monitoring_alerts"
	CheckCommunication     = "team_communication"
)

// DrillCheck is one item of the plan's testing checklist.
type DrillCheck struct {
	Item     string `json:"item"`  // backup_restoration, …
	Title    string `json:"title"` // "Backup restoration successful", …
	Status   string `json:"status"`
	Evidence string `json:"evidence"`
}

// DrillAnnouncement is the last "drill due" announcement of a drill, so
// that a restart neither repeats nor forgets it.
type DrillAnnouncement struct {
	Drill  string    `json:"drill"`
	DueAt  time.Time `json:"dueAt"`
	SentAt time.Time `json:"sentAt"`
}

// PutDrillRun writes a drill run, assigning an ID to a new one.
func (t *Tx) PutDrillRun(r *DrillRun) error {
	if r.ID == "" {
		id, err := t.nextID(bucketDrills, "drl")
		if err != nil {
			return err
		}
		r.ID = id
	}
	return t.put(bucketDrills, []byte(r.ID), r)
}

// DrillRun reads a drill run by ID.
func (t *Tx) DrillRun(id string) (DrillRun, error) {
	var r DrillRun
	if len(id) < 4 || id[:4] != "drl-" {
		return r, ErrNotFound
	}
	return r, t.get(bucketDrills, id, &r)
}

// ForEachDrillRun calls fn for every drill run, oldest first.
func (t *Tx) ForEachDrillRun(fn func(DrillRun) error) error {
	return forEachPrefix(t, bucketDrills, "drl-", fn)
}

// DrillAnnouncement reads a drill's last announcement; a missing one is
// the zero value.
func (t *Tx) DrillAnnouncement(drill string) (DrillAnnouncement, error) {
	var a DrillAnnouncement
	err := t.get(bucketDrills, "ann-"+drill, &a)
	if errors.Is(err, ErrNotFound) {
		return DrillAnnouncement{Drill: drill}, nil
	}
	return a, err
}

// PutDrillAnnouncement writes a drill's last announcement.
func (t *Tx) PutDrillAnnouncement(a DrillAnnouncement) error {
	return t.put(bucketDrills, []byte("ann-"+a.Drill), a)
}
