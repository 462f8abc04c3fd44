package store

import "time"

// bucketBackups holds backup runs ("bk-…") and restore tests ("rt-…"). The
// backups themselves live in object storage with their manifests; these
// records are the local history of attempts, failures included.
var bucketBackups = []byte("backups")

// Open creates every bucket in allBuckets; the backups bucket joins the list
// here so that this file stays self-contained.
func init() { allBuckets = append(allBuckets, bucketBackups) }

// Results of backup runs and restore tests.
const (
	BackupSucceeded = "success"
	BackupFailed    = "failure"
)

// BackupRun is one backup attempt.
type BackupRun struct {
	ID      string `json:"id"`
	Backup  string `json:"backup"` // the configured backup's name
	Target  string `json:"target"`
	Service string `json:"service,omitempty"`
	// BackupID is the manifest's ID; set once the run got that far.
	BackupID string    `json:"backupId,omitempty"`
	Trigger  string    `json:"trigger,omitempty"` // schedule, cli, action
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	// Object is the data object's key; StoredBytes its size.
	Object      string `json:"object,omitempty"`
	StoredBytes int64  `json:"storedBytes,omitempty"`
}

// RestoreTestRun is one restore test: the latest backup restored into a
// scratch database, checked and dropped.
type RestoreTestRun struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"` // the configured restore test, or "cli"
	Backup   string    `json:"backup"`
	Target   string    `json:"target"`
	Service  string    `json:"service,omitempty"`
	BackupID string    `json:"backupId,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	// RecoveryPoint is the newest heartbeat found in the restored data;
	// RecoveryPointAge is End minus it, the RPO the backup achieved.
	RecoveryPoint    time.Time `json:"recoveryPoint,omitempty"`
	RecoveryPointAge float64   `json:"recoveryPointAgeSeconds,omitempty"`
	// Checks maps each integrity check to "ok" or what was wrong.
	Checks map[string]string `json:"checks,omitempty"`
}

// PutBackupRun writes a backup run, assigning an ID to a new one.
func (t *Tx) PutBackupRun(r *BackupRun) error {
	if r.ID == "" {
		id, err := t.nextID(bucketBackups, "bk")
		if err != nil {
			return err
		}
		r.ID = id
	}
	return t.put(bucketBackups, []byte(r.ID), r)
}

// PutRestoreTestRun writes a restore test, assigning an ID to a new one.
func (t *Tx) PutRestoreTestRun(r *RestoreTestRun) error {
	if r.ID == "" {
		id, err := t.nextID(bucketBackups, "rt")
		if err != nil {
			return err
		}
		r.ID = id
	}
	return t.put(bucketBackups, []byte(r.ID), r)
}

// ForEachBackupRun calls fn for every backup run in ID order.
func (t *Tx) ForEachBackupRun(fn func(BackupRun) error) error {
	return forEachPrefix(t, bucketBackups, "bk-", fn)
}

// ForEachRestoreTestRun calls fn for every restore test in ID order.
func (t *Tx) ForEachRestoreTestRun(fn func(RestoreTestRun) error) error {
	return forEachPrefix(t, bucketBackups, "rt-", fn)
}
