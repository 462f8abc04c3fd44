// Package config loads drguard's YAML configuration strictly: defaults
// first, then validation, then cross-reference checks. Unknown keys are
// errors that name the file and line.
package config

import (
	"github.com/prometheus/common/model"
)

// Config is the whole configuration file.
type Config struct {
	Server       Server               `yaml:"server"`
	Auth         Auth                 `yaml:"auth"`
	Storage      Storage              `yaml:"storage"`
	Guardrails   Guardrails           `yaml:"guardrails"`
	Objectives   map[string]Objective `yaml:"objectives"`
	Targets      Targets              `yaml:"targets"`
	Probes       []Probe              `yaml:"probes"`
	Policies     []Policy             `yaml:"policies"`
	Backups      []Backup             `yaml:"backups"`
	RestoreTests []RestoreTest        `yaml:"restore_tests"`
	Notifiers    []Notifier           `yaml:"notifiers"`

	// File is the path the configuration was read from.
	File string `yaml:"-"`
}

// Server configures the HTTP listener and intake limits.
type Server struct {
	ListenAddress string `yaml:"listen_address"` // default ":9095"
	// MaxBodyBytes caps a webhook body; larger bodies get 413. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ExternalURL is how users reach drguard (approval links). Optional.
	ExternalURL string `yaml:"external_url"`
	// ShutdownTimeout bounds graceful shutdown. Default 10s.
	ShutdownTimeout model.Duration `yaml:"shutdown_timeout"`
}

// Auth holds every credential drguard accepts.
type Auth struct {
	// Webhook is what Alertmanager presents on POST /api/v1/alerts.
	Webhook WebhookAuth `yaml:"webhook"`
	// Users are people and tools calling the API, each with one role.
	Users []User `yaml:"users"`
	// FourEyes forbids the requester of a gated step from approving it.
	FourEyes bool `yaml:"four_eyes"`
}

// WebhookAuth accepts a bearer token, basic auth, or both.
type WebhookAuth struct {
	BearerToken     Secret     `yaml:"bearer_token"`
	BearerTokenFile string     `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth `yaml:"basic_auth"`
}

// BasicAuth is a username and password pair.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Role is what a user may do. Each role includes the ones before it.
type Role string

// Roles in increasing order of power.
const (
	RoleViewer   Role = "viewer"
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
)

// User is an API caller identified by a bearer token.
type User struct {
	Name      string `yaml:"name"`
	Role      Role   `yaml:"role"`
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Storage says where the embedded journal lives.
type Storage struct {
	Path string `yaml:"path"` // default "data"
}

// Guardrails are global limits on remediation.
type Guardrails struct {
	// DryRun journals and counts what would run and touches nothing.
	DryRun bool `yaml:"dry_run"`
	// DestructiveBudget is how many destructive steps may run per
	// DestructiveWindow across all policies. Default 3 per 1h.
	DestructiveBudget int            `yaml:"destructive_budget"`
	DestructiveWindow model.Duration `yaml:"destructive_window"`
	// ApprovalExpiry is the default lifetime of a pending approval. Default 1h.
	ApprovalExpiry model.Duration `yaml:"approval_expiry"`
	// StepTimeout is the default step timeout. Default 5m.
	StepTimeout model.Duration `yaml:"step_timeout"`
}

// Objective is a service's recovery objectives.
type Objective struct {
	RPO model.Duration `yaml:"rpo"`
	RTO model.Duration `yaml:"rto"`
}

// Policy maps detections to an ordered list of remediation steps.
type Policy struct {
	Name string `yaml:"name"`
	// Matchers use Alertmanager syntax, e.g. `alertname="PostgresDown"`.
	// All must match.
	Matchers []string `yaml:"matchers"`
	// TargetLabel names the label whose value is the run's target for
	// one-run-at-a-time, cooldown and max_runs. Default "target"; when the
	// label is absent the target is "instance", then "service", then "".
	TargetLabel string         `yaml:"target_label"`
	Cooldown    model.Duration `yaml:"cooldown"`
	MaxRuns     *MaxRuns       `yaml:"max_runs"`
	DryRun      bool           `yaml:"dry_run"`
	Steps       []Step         `yaml:"steps"`
}

// MaxRuns limits runs per (policy, target) within a sliding window.
type MaxRuns struct {
	Count  int            `yaml:"count"`
	Window model.Duration `yaml:"window"`
}

// Step is one action of a policy.
type Step struct {
	Name   string `yaml:"name"` // default "<action>-<index>"
	Action string `yaml:"action"`
	// Params are rendered with text/template over the detection's labels
	// and annotations ({{ .Labels.target }}); results are data, never shell.
	Params   map[string]any `yaml:"params"`
	Timeout  model.Duration `yaml:"timeout"`
	Approval Approval       `yaml:"approval"`
	Verify   *Verify        `yaml:"verify"`
	// OnFailure is abort (default), continue or escalate.
	OnFailure string `yaml:"on_failure"`
	// Destructive and Idempotent override what the action declares.
	Destructive *bool `yaml:"destructive"`
	Idempotent  *bool `yaml:"idempotent"`
}

// Approval gates a step behind a human decision.
type Approval struct {
	Required bool           `yaml:"required"`
	Expires  model.Duration `yaml:"expires"` // default guardrails.approval_expiry
}

// Verify polls a check after a step until it passes or Within elapses.
type Verify struct {
	Probe  string         `yaml:"probe"`
	Within model.Duration `yaml:"within"`
}

// Targets are the systems drguard probes and acts on, by name.
type Targets struct {
	Postgres   []PostgresTarget   `yaml:"postgres"`
	Redis      []RedisTarget      `yaml:"redis"`
	HTTP       []HTTPTarget       `yaml:"http"`
	S3         []S3Target         `yaml:"s3"`
	Kubernetes []KubernetesTarget `yaml:"kubernetes"`
	AWS        []AWSTarget        `yaml:"aws"`
}

// PostgresTarget is a PostgreSQL server.
type PostgresTarget struct {
	Name    string `yaml:"name"`
	Service string `yaml:"service"`
	DSN     Secret `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
}

// RedisTarget is a Redis server.
type RedisTarget struct {
	Name         string `yaml:"name"`
	Service      string `yaml:"service"`
	Address      string `yaml:"address"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// HTTPTarget is an HTTP endpoint.
type HTTPTarget struct {
	Name    string `yaml:"name"`
	Service string `yaml:"service"`
	URL     string `yaml:"url"`
}

// S3Target is a bucket and prefix.
type S3Target struct {
	Name     string `yaml:"name"`
	Service  string `yaml:"service"`
	Bucket   string `yaml:"bucket"`
	Prefix   string `yaml:"prefix"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
}

// KubernetesTarget is a cluster namespace.
type KubernetesTarget struct {
	Name       string `yaml:"name"`
	Service    string `yaml:"service"`
	Kubeconfig string `yaml:"kubeconfig"` // empty: in-cluster
	Namespace  string `yaml:"namespace"`
}

// AWSTarget is an AWS account and region.
type AWSTarget struct {
	Name     string `yaml:"name"`
	Service  string `yaml:"service"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
}

// Probe is one scheduled check.
type Probe struct {
	Name             string         `yaml:"name"`
	Type             string         `yaml:"type"`
	Target           string         `yaml:"target"`
	Scenario         string         `yaml:"scenario"`
	Service          string         `yaml:"service"`
	Severity         string         `yaml:"severity"`
	Interval         model.Duration `yaml:"interval"`
	Timeout          model.Duration `yaml:"timeout"`
	FailureThreshold int            `yaml:"failure_threshold"`
	SuccessThreshold int            `yaml:"success_threshold"`
	Params           map[string]any `yaml:"params"`
}

// Backup is a scheduled backup of a target.
type Backup struct {
	Name        string         `yaml:"name"`
	Target      string         `yaml:"target"`
	Service     string         `yaml:"service"`
	Destination string         `yaml:"destination"` // an s3 target
	Interval    model.Duration `yaml:"interval"`
	KeyFile     string         `yaml:"key_file"`
}

// RestoreTest is a scheduled proof that a backup restores.
type RestoreTest struct {
	Name     string         `yaml:"name"`
	Backup   string         `yaml:"backup"`
	Interval model.Duration `yaml:"interval"`
}

// Notifier is a destination for incident communication.
type Notifier struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // slack, email, webhook
	URL  string `yaml:"url"`
}
