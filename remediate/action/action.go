// Package action holds drguard's remediation actions. Every action has one
// interface and is listed once in the literal Registry below: a new action
// is one file (its params struct, its check, its run function) plus one
// line here.
package action

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"

	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/kubeclient"
	"github.com/fruitfulplanet/drguard/metrics"
)

// ErrTimedOut is what an action's error wraps when the step's deadline
// ended it, so that the engine can tell a timeout without reading text.
var ErrTimedOut = errors.New("timed out")

// Registry maps an action name, as written in a policy step, to its kind:
// what it declares, how its params are checked, how it is built.
var Registry = map[string]Kind{
	"exec": define(execInfo, newExec, preflightExec),
	"http": define(httpInfo, newHTTP, preflightHTTP),

	"kubernetes.delete_pod":      define(deletePodInfo, newDeletePod, preflightDeletePod),
	"kubernetes.scale":           define(scaleInfo, newScale, preflightScale),
	"kubernetes.rollout_restart": define(rolloutRestartInfo, newRolloutRestart, preflightRolloutRestart),
	"kubernetes.patch_secret":    define(patchSecretInfo, newPatchSecret, preflightPatchSecret),
	"kubernetes.pod_logs":        define(podLogsInfo, newPodLogs, preflightPodLogs),

	"postgres.promote": define(promoteInfo, newPostgresPromote, preflightPostgresPromote),
	"postgres.backup":  define(backupInfo, newPostgresBackup, preflightPostgresBackup),

	"aws.rds.promote_read_replica":     define(promoteReplicaInfo, newRDSPromoteReadReplica, preflightRDSPromote),
	"aws.rds.restore_to_point_in_time": define(pitrInfo, newRDSRestoreToPointInTime, preflightRDSRestore),
	"aws.rds.wait_available":           define(waitAvailableInfo, newRDSWaitAvailable, preflightRDSWait),
	"aws.route53.upsert_record":        define(upsertRecordInfo, newRoute53UpsertRecord, preflightRoute53),

	"notify.slack":   define(notifyInfo, newNotify(config.NotifierSlack), preflightNotify(config.NotifierSlack)),
	"notify.email":   define(notifyInfo, newNotify(config.NotifierEmail), preflightNotify(config.NotifierEmail)),
	"notify.webhook": define(notifyInfo, newNotify(config.NotifierWebhook), preflightNotify(config.NotifierWebhook)),
}

// Names returns the registered action names, sorted.
func Names() []string {
	out := make([]string, 0, len(Registry))
	for n := range Registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Checks returns every action's static params check, the shape
// config.Known.Actions takes. Nothing is built to check.
func Checks() map[string]func(params map[string]any) error {
	out := make(map[string]func(map[string]any) error, len(Registry))
	for n, k := range Registry {
		out[n] = k.Check
	}
	return out
}

// Build provisions every registered action once, with shared deps.
func Build(d Deps) (map[string]Action, error) {
	out := make(map[string]Action, len(Registry))
	for name, k := range Registry {
		a, err := k.New(d)
		if err != nil {
			return nil, err
		}
		out[name] = a
	}
	return out, nil
}

// Deps are the shared services actions use, built once by the caller and
// injected: actions never build their own. Actions never reach the
// journal directly; the backup service journals its own runs.
type Deps struct {
	Logger     *slog.Logger
	Config     *config.Config
	HTTPClient *http.Client
	// Kube is the Kubernetes client factory shared with the probes; nil
	// gets one of the actions' own.
	Kube *kubeclient.Cache
	// Backups is the daemon's backup service (its journal, metrics and
	// per-target lock), used by postgres.backup; nil makes that action
	// fail with a clear error.
	Backups *backup.Service
	// Notifications counts the notify.* actions' deliveries; nil counts
	// none.
	Notifications *metrics.Notifications
}

// withDefaults fills what a caller left out: a logger that discards, an
// empty configuration and a Kubernetes client factory.
func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Config == nil {
		d.Config = &config.Config{}
	}
	if d.Kube == nil {
		d.Kube = kubeclient.NewCache("drguard")
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

// Action is one kind of remediation step, provisioned.
type Action interface {
	// Info declares the action's properties.
	Info() Info
	// Validate checks a step's unrendered params at config load, so that
	// mistakes show in `drguard check` rather than at 3 a.m.
	Validate(params map[string]any) error
	// Run decodes the step's rendered params into the action's typed
	// params and executes it. It must honour ctx's deadline and return a
	// bounded Outcome.
	Run(ctx context.Context, req Request) (Outcome, error)
}

// Request is one execution of a step.
type Request struct {
	RunID  string
	Step   string
	Policy string
	Target string
	// Params are the step's params rendered over the detection's labels,
	// as journaled.
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
