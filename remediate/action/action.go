// Package action holds drguard's remediation actions. Every action has one
// interface and is listed once in the literal Registry below: a new action
// is one file plus one line.
package action

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// Registry maps an action name, as written in a policy step, to its
// constructor.
var Registry = map[string]Constructor{
	"exec": NewExec,
	"http": NewHTTP,

	"kubernetes.delete_pod":      NewDeletePod,
	"kubernetes.scale":           NewScale,
	"kubernetes.rollout_restart": NewRolloutRestart,
	"kubernetes.patch_secret":    NewPatchSecret,
	"kubernetes.pod_logs":        NewPodLogs,

	"postgres.promote": NewPostgresPromote,
	"postgres.backup":  NewPostgresBackup,

	"aws.rds.promote_read_replica":     NewRDSPromoteReadReplica,
	"aws.rds.restore_to_point_in_time": NewRDSRestoreToPointInTime,
	"aws.rds.wait_available":           NewRDSWaitAvailable,
	"aws.route53.upsert_record":        NewRoute53UpsertRecord,

	"notify.slack":   NewNotifySlack,
	"notify.email":   NewNotifyEmail,
	"notify.webhook": NewNotifyWebhook,
}

// Names returns the registered action names.
func Names() []string {
	out := make([]string, 0, len(Registry))
	for n := range Registry {
		out = append(out, n)
	}
	return out
}

// Constructor builds an action once at start-up (provisioning: clients,
// credentials) from shared dependencies.
type Constructor func(Deps) (Action, error)

// Deps are what actions may use. Actions never reach the journal directly.
type Deps struct {
	Logger     *slog.Logger
	Config     *config.Config
	HTTPClient *http.Client
}

// withDefaults fills what a caller left out: a logger that discards and an
// empty configuration.
func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Config == nil {
		d.Config = &config.Config{}
	}
	return d
}

// Info is what an action declares about itself. A policy step may override
// both flags.
type Info struct {
	// Destructive actions count against the global destructive budget.
	Destructive bool
	// Idempotent actions may be re-run after a crash interrupted them.
	Idempotent bool
}

// Action is one kind of remediation step.
type Action interface {
	// Info declares the action's properties.
	Info() Info
	// Validate checks a step's unrendered params at config load, so that
	// mistakes show in `drguard check` rather than at 3 a.m.
	Validate(params map[string]any) error
	// Run executes the step with rendered params. It must honour ctx's
	// deadline and return a bounded Outcome.
	Run(ctx context.Context, req Request) (Outcome, error)
}

// Request is one execution of a step.
type Request struct {
	RunID  string
	Step   string
	Policy string
	Target string
	// Params are the step's params rendered over the detection's labels.
	Params map[string]any
	// Labels and Annotations are the detection's, as data.
	Labels      map[string]string
	Annotations map[string]string
	// Previous holds earlier steps' results in this run and in earlier runs
	// for the same (policy, target), keyed by step name, so a step can say
	// `replicas: previous`.
	Previous map[string]map[string]any
	Logger   *slog.Logger
}

// Outcome is what a step produced: bounded output for humans and a small
// structured result for later steps and the journal.
type Outcome struct {
	Output string
	Result map[string]any
}
