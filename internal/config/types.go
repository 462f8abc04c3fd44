// Package config loads drguard's YAML configuration strictly: defaults
// first, then validation, then cross-reference checks. Unknown keys are
// errors that name the file and line.
package config

import (
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Config is the whole configuration file.
type Config struct {
	Server       Server               `yaml:"server" json:"server"`
	Auth         Auth                 `yaml:"auth" json:"auth"`
	Storage      Storage              `yaml:"storage" json:"storage"`
	Guardrails   Guardrails           `yaml:"guardrails" json:"guardrails"`
	Objectives   map[string]Objective `yaml:"objectives" json:"objectives"`
	Targets      Targets              `yaml:"targets" json:"targets"`
	Probes       []Probe              `yaml:"probes" json:"probes"`
	Policies     []Policy             `yaml:"policies" json:"policies"`
	Backups      []Backup             `yaml:"backups" json:"backups"`
	RestoreTests []RestoreTest        `yaml:"restore_tests" json:"restore_tests"`
	Notifiers    []Notifier           `yaml:"notifiers" json:"notifiers"`
	Watchdogs    []Watchdog           `yaml:"watchdogs" json:"watchdogs"`
	Drills       []Drill              `yaml:"drills" json:"drills"`

	// File is the path the configuration was read from.
	File string `yaml:"-" json:"file,omitempty"`

	// warnings are the non-fatal problems found while loading.
	warnings Problems
}

// Server configures the HTTP listener and intake limits.
type Server struct {
	ListenAddress string `yaml:"listen_address" json:"listen_address"` // default ":9095"
	// MaxBodyBytes caps a webhook body; larger bodies get 413. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes" json:"max_body_bytes"`
	// ExternalURL is how users reach drguard (approval links). Optional.
	ExternalURL string `yaml:"external_url" json:"external_url"`
	// ShutdownTimeout bounds graceful shutdown. Default 10s.
	ShutdownTimeout model.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	// SessionKey signs the web console's session cookies (HMAC-SHA256);
	// at least 32 bytes, from ${ENV} or session_key_file. Without one,
	// drguard draws a random key at start: sign-ins then end when it
	// restarts, and replicas do not accept each other's sessions.
	SessionKey     Secret `yaml:"session_key" json:"session_key"`
	SessionKeyFile string `yaml:"session_key_file" json:"session_key_file"`
	// SessionLifetime is how long a console sign-in lasts. Default 12h.
	SessionLifetime model.Duration `yaml:"session_lifetime" json:"session_lifetime"`
}

// Auth holds every credential drguard accepts.
type Auth struct {
	// Webhook is what Alertmanager presents on POST /api/v1/alerts.
	Webhook WebhookAuth `yaml:"webhook" json:"webhook"`
	// Users are people and tools calling the API, each with one role.
	Users []User `yaml:"users" json:"users"`
	// FourEyes forbids the requester of a gated step from approving it.
	FourEyes bool `yaml:"four_eyes" json:"four_eyes"`
}

// WebhookAuth accepts a bearer token, basic auth, or both.
type WebhookAuth struct {
	BearerToken     Secret     `yaml:"bearer_token" json:"bearer_token"`
	BearerTokenFile string     `yaml:"bearer_token_file" json:"bearer_token_file"`
	BasicAuth       *BasicAuth `yaml:"basic_auth" json:"basic_auth"`
}

// BasicAuth is a username and password pair.
type BasicAuth struct {
	Username     string `yaml:"username" json:"username"`
	Password     Secret `yaml:"password" json:"password"`
	PasswordFile string `yaml:"password_file" json:"password_file"`
}

// Role is what a user may do. Each role includes the ones before it.
type Role string

// Roles in increasing order of power.
const (
	RoleViewer   Role = "viewer"
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
)

// SystemActor is the name drguard's own actions carry in the audit trail;
// no user may have it.
const SystemActor = "drguard"

// User is an API caller identified by a bearer token.
type User struct {
	Name      string `yaml:"name" json:"name"`
	Role      Role   `yaml:"role" json:"role"`
	Token     Secret `yaml:"token" json:"token"`
	TokenFile string `yaml:"token_file" json:"token_file"`
	// SlackUserID is the user's Slack member ID (U…): the Approve and
	// Reject buttons of drguard's Slack messages act as this user when
	// that Slack user presses them. Slack users not mapped are refused.
	SlackUserID string `yaml:"slack_user_id" json:"slack_user_id"`
}

// Guardrails are global limits on remediation.
type Guardrails struct {
	// DryRun journals and counts what would run and touches nothing.
	DryRun bool `yaml:"dry_run" json:"dry_run"`
	// DestructiveBudget is how many destructive steps may run per
	// DestructiveWindow across all policies. Default 3 per 1h; an explicit
	// 0 lets no destructive step run.
	DestructiveBudget int            `yaml:"destructive_budget" json:"destructive_budget"`
	DestructiveWindow model.Duration `yaml:"destructive_window" json:"destructive_window"`
	// ApprovalExpiry is the default lifetime of a pending approval. Default 1h.
	ApprovalExpiry model.Duration `yaml:"approval_expiry" json:"approval_expiry"`
	// StepTimeout is the default step timeout. Default 5m.
	StepTimeout model.Duration `yaml:"step_timeout" json:"step_timeout"`
}

// Objective is a service's recovery objectives and the recovery sources,
// besides its backups, that can meet them.
type Objective struct {
	RPO model.Duration `yaml:"rpo" json:"rpo"`
	RTO model.Duration `yaml:"rto" json:"rto"`
	// RTOOverhead is what a recovery takes beyond restoring the data
	// (detection, decision, switching clients over); it is added to the
	// last restore test's duration in drguard_rto_estimate_seconds.
	RTOOverhead model.Duration `yaml:"rto_overhead" json:"rto_overhead"`
	// RecoverySources are the recovery points other than backups: a
	// streaming replica, or point-in-time recovery. See RecoverySource.
	RecoverySources []RecoverySource `yaml:"recovery_sources" json:"recovery_sources"`
}

// Recovery source types.
const (
	// RecoverySourceReplica is a streaming replica, a postgres target; its
	// exposure is the replication lag its postgres_replication probe measures.
	RecoverySourceReplica = "replica"
	// RecoverySourcePITR is point-in-time recovery of an RDS instance; its
	// exposure is now minus the instance's LatestRestorableTime.
	RecoverySourcePITR = "pitr"
)

// RecoverySource is a recovery point a service can fall back on besides its
// backups.
type RecoverySource struct {
	// Type is replica or pitr.
	Type string `yaml:"type" json:"type"`
	// Target is, for a replica, its postgres target; for pitr, the aws
	// target (region, endpoint) of the RDS instance.
	Target string `yaml:"target" json:"target"`
	// RDSInstance is the DB instance identifier whose LatestRestorableTime
	// bounds the data lost by a point-in-time restore (pitr only).
	RDSInstance string `yaml:"rds_instance" json:"rds_instance"`
}

// Policy maps detections to an ordered list of remediation steps.
type Policy struct {
	Name string `yaml:"name" json:"name"`
	// Matchers use Alertmanager syntax, e.g. `alertname="PostgresDown"`.
	// All must match.
	Matchers []string `yaml:"matchers" json:"matchers"`
	// TargetLabel names the label whose value is the run's target for
	// one-run-at-a-time, cooldown and max_runs. Default "target"; when the
	// label is absent the target is "instance", then "service", then "".
	TargetLabel string         `yaml:"target_label" json:"target_label"`
	Cooldown    model.Duration `yaml:"cooldown" json:"cooldown"`
	MaxRuns     *MaxRuns       `yaml:"max_runs" json:"max_runs"`
	DryRun      bool           `yaml:"dry_run" json:"dry_run"`
	Steps       []Step         `yaml:"steps" json:"steps"`
	// OnResolved is what a run does once its alert resolves: stop
	// (default: the run ends obsolete before its next step) or continue
	// (its non-destructive, ungated steps still run).
	OnResolved string `yaml:"on_resolved" json:"on_resolved"`
	// Corroborate, when set, holds the policy's runs until other
	// detections confirm the triggering one.
	Corroborate *Corroborate `yaml:"corroborate" json:"corroborate,omitempty"`
}

// MaxRuns limits runs per (policy, target) within a sliding window.
type MaxRuns struct {
	Count  int            `yaml:"count" json:"count"`
	Window model.Duration `yaml:"window" json:"window"`
}

// Step is one action of a policy.
type Step struct {
	Name   string `yaml:"name" json:"name"` // default "<action>-<index>", index from 0
	Action string `yaml:"action" json:"action"`
	// Params are rendered with text/template over the detection's labels
	// and annotations ({{ .Labels.target }}); results are data, never shell.
	Params   map[string]any `yaml:"params" json:"params"`
	Timeout  model.Duration `yaml:"timeout" json:"timeout"`
	Approval Approval       `yaml:"approval" json:"approval"`
	Verify   *Verify        `yaml:"verify" json:"verify"`
	// OnFailure is abort (default), continue or escalate.
	OnFailure string `yaml:"on_failure" json:"on_failure"`
	// Destructive and Idempotent override what the action declares.
	Destructive *bool `yaml:"destructive" json:"destructive"`
	Idempotent  *bool `yaml:"idempotent" json:"idempotent"`
}

// Approval gates a step behind a human decision.
type Approval struct {
	Required bool           `yaml:"required" json:"required"`
	Expires  model.Duration `yaml:"expires" json:"expires"` // default guardrails.approval_expiry
	// Approvals is how many different approvers must approve. Default 1;
	// with auth.four_eyes a destructive step needs at least 2.
	Approvals int `yaml:"approvals" json:"approvals"`
}

// Verify polls a check after a step until it passes or Within elapses.
type Verify struct {
	Probe  string         `yaml:"probe" json:"probe"`
	Within model.Duration `yaml:"within" json:"within"` // default: the step's timeout
}

// Targets are the systems drguard probes and acts on, by name.
type Targets struct {
	Postgres   []PostgresTarget   `yaml:"postgres" json:"postgres"`
	Redis      []RedisTarget      `yaml:"redis" json:"redis"`
	HTTP       []HTTPTarget       `yaml:"http" json:"http"`
	S3         []S3Target         `yaml:"s3" json:"s3"`
	Kubernetes []KubernetesTarget `yaml:"kubernetes" json:"kubernetes"`
	AWS        []AWSTarget        `yaml:"aws" json:"aws"`
}

// PostgresTarget is a PostgreSQL server.
type PostgresTarget struct {
	Name    string `yaml:"name" json:"name"`
	Service string `yaml:"service" json:"service"`
	DSN     Secret `yaml:"dsn" json:"dsn"`
	DSNFile string `yaml:"dsn_file" json:"dsn_file"`
}

// RedisTarget is a Redis server.
type RedisTarget struct {
	Name         string `yaml:"name" json:"name"`
	Service      string `yaml:"service" json:"service"`
	Address      string `yaml:"address" json:"address"`
	Password     Secret `yaml:"password" json:"password"`
	PasswordFile string `yaml:"password_file" json:"password_file"`
	// TLS connects over TLS (Redis 6+ with tls-port): ca_file,
	// cert_file and key_file (client certificates), server_name,
	// insecure_skip_verify, min_version, as in Prometheus' tls_config.
	// Relative file paths are resolved against the configuration's
	// directory.
	TLS *promconfig.TLSConfig `yaml:"tls" json:"tls,omitempty"`
}

// HTTPTarget is an HTTP endpoint.
type HTTPTarget struct {
	Name    string `yaml:"name" json:"name"`
	Service string `yaml:"service" json:"service"`
	URL     string `yaml:"url" json:"url"`
}

// S3Target is a bucket and prefix.
type S3Target struct {
	Name     string `yaml:"name" json:"name"`
	Service  string `yaml:"service" json:"service"`
	Bucket   string `yaml:"bucket" json:"bucket"`
	Prefix   string `yaml:"prefix" json:"prefix"`
	Region   string `yaml:"region" json:"region"`
	Endpoint string `yaml:"endpoint" json:"endpoint"`
}

// KubernetesTarget is a cluster namespace.
type KubernetesTarget struct {
	Name       string `yaml:"name" json:"name"`
	Service    string `yaml:"service" json:"service"`
	Kubeconfig string `yaml:"kubeconfig" json:"kubeconfig"` // empty: in-cluster
	// Context selects a context of the kubeconfig (default: its current
	// context), e.g. the DR region's cluster.
	Context   string `yaml:"context" json:"context"`
	Namespace string `yaml:"namespace" json:"namespace"`
}

// AWSTarget is an AWS account and region. Credentials come from the
// SDK's default chain (environment, shared config, web identity, IMDS).
type AWSTarget struct {
	Name    string `yaml:"name" json:"name"`
	Service string `yaml:"service" json:"service"`
	Region  string `yaml:"region" json:"region"`
	// Endpoint overrides the RDS and Route 53 endpoints (a VPC endpoint,
	// or a test server).
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Profile selects a shared-config profile; empty uses the default.
	Profile string `yaml:"profile" json:"profile"`
	// MaxAttempts bounds the attempts of one API call, throttling and
	// 5xx retries included. Default 5.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// MaxBackoff caps the jittered exponential delay between retries.
	// Default 20s.
	MaxBackoff model.Duration `yaml:"max_backoff" json:"max_backoff"`
}

// Probe is one scheduled check.
type Probe struct {
	Name             string         `yaml:"name" json:"name"`
	Type             string         `yaml:"type" json:"type"`
	Target           string         `yaml:"target" json:"target"`
	Scenario         string         `yaml:"scenario" json:"scenario"`
	Service          string         `yaml:"service" json:"service"` // default: the target's service
	Severity         string         `yaml:"severity" json:"severity"`
	Interval         model.Duration `yaml:"interval" json:"interval"`                   // default 30s
	Timeout          model.Duration `yaml:"timeout" json:"timeout"`                     // default 10s, at most Interval
	FailureThreshold int            `yaml:"failure_threshold" json:"failure_threshold"` // default 3
	SuccessThreshold int            `yaml:"success_threshold" json:"success_threshold"` // default 1
	Params           map[string]any `yaml:"params" json:"params"`
}

// Backup is a scheduled, encrypted backup of a postgres target.
type Backup struct {
	Name        string         `yaml:"name" json:"name"`
	Target      string         `yaml:"target" json:"target"`
	Service     string         `yaml:"service" json:"service"`         // default: the target's service
	Destination string         `yaml:"destination" json:"destination"` // an s3 target
	Interval    model.Duration `yaml:"interval" json:"interval"`       // default 6h
	// KeyFile holds the encryption key; required. A relative path is
	// resolved against the configuration file's directory at load.
	KeyFile   string          `yaml:"key_file" json:"key_file"`
	Retention BackupRetention `yaml:"retention" json:"retention"`
	// PartSizeMB is the S3 multipart part size in MiB (default 8, at least
	// 5). The largest backup is 10,000 parts.
	PartSizeMB int `yaml:"part_size_mb" json:"part_size_mb"`
	// Concurrency is how many parts upload at once (default 4). Memory
	// use is about part_size_mb × (concurrency + 1).
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// SSE asks the store for server-side encryption on top of drguard's
	// own: "" (none), AES256 or aws:kms (with SSEKMSKeyID).
	SSE         string `yaml:"sse" json:"sse"`
	SSEKMSKeyID string `yaml:"sse_kms_key_id" json:"sse_kms_key_id"`
	// HeartbeatTable is read at dump start for the newest heartbeat
	// (default drguard_heartbeat, column ts).
	HeartbeatTable string `yaml:"heartbeat_table" json:"heartbeat_table"`
	// BinDir holds pg_dump and pg_restore; empty means $PATH.
	BinDir string `yaml:"bin_dir" json:"bin_dir"`
	// Timeout bounds one backup run (default: the interval).
	Timeout model.Duration `yaml:"timeout" json:"timeout"`
	// CatalogTimeout bounds one read of the destination's catalog (the
	// listing and the manifests), which the scheduler does before every
	// run and every refresh (default 30s, at most a quarter of the
	// interval).
	CatalogTimeout model.Duration `yaml:"catalog_timeout" json:"catalog_timeout"`
}

// BackupRetention says how long backups are kept, by age class.
type BackupRetention struct {
	Daily   model.Duration `yaml:"daily" json:"daily"`     // default 30d
	Weekly  model.Duration `yaml:"weekly" json:"weekly"`   // default 90d
	Monthly model.Duration `yaml:"monthly" json:"monthly"` // default 1y
}

// RestoreTest is a scheduled proof that a backup restores.
type RestoreTest struct {
	Name     string         `yaml:"name" json:"name"`
	Backup   string         `yaml:"backup" json:"backup"`
	Interval model.Duration `yaml:"interval" json:"interval"`
	// ScratchTarget is the postgres target on which the test creates
	// (CREATE DATABASE) and drops a scratch database; required.
	ScratchTarget string `yaml:"scratch_target" json:"scratch_target"`
	// Jobs is pg_restore's -j, and the number of connections that load a
	// large dump's rows (default 2).
	Jobs int `yaml:"jobs" json:"jobs"`
	// Timeout bounds one restore test (default 4h).
	Timeout model.Duration `yaml:"timeout" json:"timeout"`
}

// Notifier is a destination for incident communication: Slack (an
// incoming webhook, or an app's bot token, which also carries approval
// requests with buttons), an SMTP relay, or a status page's webhook.
type Notifier struct {
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"` // slack, email, webhook
	// URL is the Slack incoming-webhook or status-page URL. A Slack
	// webhook URL is a credential, so URL is a Secret (${ENV} or url_file).
	URL     Secret `yaml:"url" json:"url"`
	URLFile string `yaml:"url_file" json:"url_file"`
	// BearerToken is sent to a webhook as "Authorization: Bearer …".
	BearerToken     Secret `yaml:"bearer_token" json:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file" json:"bearer_token_file"`

	// BotToken is a Slack app's bot token (xoxb-…) for Slack's Web API.
	// A slack notifier with one posts every approval request whose
	// incident its matchers select to Channel (chat.postMessage), with
	// the step's facts and Approve and Reject buttons, and updates the
	// message (chat.update) as people decide. Without url, its status
	// updates go through the Web API too.
	BotToken     Secret `yaml:"bot_token" json:"bot_token"`
	BotTokenFile string `yaml:"bot_token_file" json:"bot_token_file"`
	// Channel is the Slack channel (an ID such as C0123, or #name) of a
	// notifier with a bot token.
	Channel string `yaml:"channel" json:"channel"`
	// SigningSecret is the Slack app's signing secret: it verifies the
	// button presses Slack sends to /api/v1/slack/interactions.
	SigningSecret     Secret `yaml:"signing_secret" json:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file" json:"signing_secret_file"`
	// APIURL is Slack's Web API. Default https://slack.com/api/.
	APIURL string `yaml:"api_url" json:"api_url"`

	// Smarthost is the SMTP relay (host:port) of an email notifier.
	Smarthost string   `yaml:"smarthost" json:"smarthost"`
	From      string   `yaml:"from" json:"from"`
	To        []string `yaml:"to" json:"to"`
	// Username and Password authenticate to the relay (PLAIN), only over
	// TLS or to localhost.
	Username     string `yaml:"username" json:"username"`
	Password     Secret `yaml:"password" json:"password"`
	PasswordFile string `yaml:"password_file" json:"password_file"`
	// RequireTLS refuses to send mail unless the relay offers STARTTLS.
	RequireTLS bool `yaml:"require_tls" json:"require_tls"`

	// StatusUpdates turns on scheduled status updates and the resolution
	// message for open incidents. Default true.
	StatusUpdates *bool `yaml:"status_updates" json:"status_updates"`
	// StatusInterval is how often an active incident gets an update.
	// Default 30m, the plan's "every 30 minutes during active incident".
	StatusInterval model.Duration `yaml:"status_interval" json:"status_interval"`
	// RecoveryInterval is how often an incident whose remediation has
	// succeeded, but which is not resolved yet, gets an update. Default
	// 2h, the plan's "every 2 hours during recovery".
	RecoveryInterval model.Duration `yaml:"recovery_interval" json:"recovery_interval"`
	// Matchers (Alertmanager syntax) select the incidents this notifier
	// sends scheduled updates and approval requests for; empty means all.
	Matchers []string `yaml:"matchers" json:"matchers"`
	// Timeout bounds one delivery through this notifier (connection,
	// TLS, the whole SMTP exchange or HTTP request). Default 30s.
	Timeout model.Duration `yaml:"timeout" json:"timeout"`
}

// StatusUpdatesOn reports whether scheduled status updates are on.
func (n Notifier) StatusUpdatesOn() bool { return n.StatusUpdates == nil || *n.StatusUpdates }
