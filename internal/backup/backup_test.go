package backup

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// TestBackupRestoreRoundTrip backs up a database with known content,
// restores it into a new database and compares every table's row count and
// checksum.
func TestBackupRestoreRoundTrip(t *testing.T) {
	e := newEnv(t, "")
	hb := time.Now().Add(-90 * time.Second).UTC().Truncate(time.Microsecond)
	e.seed(e.source, hb)
	want := e.fingerprint(e.source)

	m, err := e.svc.Backup(e.ctx(), "app", TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Sizes.Raw == 0 || m.Sizes.Compressed == 0 || m.Sizes.Stored <= m.Sizes.Compressed:
		t.Errorf("sizes = %+v", m.Sizes)
	case len(m.SHA256) != 64 || !strings.HasPrefix(m.KeyID, "sha256:"):
		t.Errorf("sha256 %q, key id %q", m.SHA256, m.KeyID)
	case !strings.HasPrefix(m.PostgresVersion, "15"):
		t.Errorf("postgres version %q", m.PostgresVersion)
	case m.Heartbeat == nil || !m.Heartbeat.Equal(hb):
		t.Errorf("heartbeat %v, want %v", m.Heartbeat, hb)
	case m.Object != "pg/app/"+m.ID+DataSuffix || m.Target != "app-db" || m.Service != "shop":
		t.Errorf("manifest = %+v", m)
	}
	keys := e.objectKeys()
	wantKeys := []string{"pg/app/" + m.ID + ManifestSuffix, "pg/app/" + m.ID + DataSuffix}
	if !sameSet(keys, wantKeys) {
		t.Errorf("objects = %v, want %v", keys, wantKeys)
	}
	if got := gauge(t, e.metrics.Runs.WithLabelValues("shop", "app-db", "success")); got != 1 {
		t.Errorf("backup_runs_total{result=success} = %v", got)
	}
	if got := gauge(t, e.metrics.Size.WithLabelValues("shop", "app-db")); got != float64(m.Sizes.Stored) {
		t.Errorf("backup_size_bytes = %v, want %d", got, m.Sizes.Stored)
	}

	e.pg.CreateDB("restored")
	restored := e.pg.PrimaryDSN("restored")
	got, err := e.svc.Restore(e.ctx(), RestoreOptions{Backup: "app", ID: "latest", Into: restored, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID {
		t.Errorf("restored %s, want the latest %s", got.ID, m.ID)
	}
	if fp := e.fingerprint(restored); !reflect.DeepEqual(fp, want) {
		t.Errorf("restored content differs:\n got  %v\n want %v", fp, want)
	}
	var runs []store.BackupRun
	_ = e.journal.View(func(tx *store.Tx) error {
		return tx.ForEachBackupRun(func(r store.BackupRun) error { runs = append(runs, r); return nil })
	})
	if len(runs) != 1 || runs[0].Result != store.BackupSucceeded || runs[0].BackupID != m.ID {
		t.Errorf("journal = %+v", runs)
	}
}

// TestTamperedAndTruncatedBackupsRefused flips one byte of a backup, then
// truncates it: restore and verify both refuse it with a clear error, and
// neither the destination nor the scratch server is touched.
func TestTamperedAndTruncatedBackupsRefused(t *testing.T) {
	e := newEnv(t, "")
	e.seed(e.source, time.Now())
	m, err := e.svc.Backup(e.ctx(), "app", TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	original := e.getObject(m.Object)
	flipped := append([]byte(nil), original...)
	flipped[len(flipped)/2] ^= 0x01
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"one flipped byte", flipped, "authentication or decompression failed"},
		{"truncated", original[:len(original)/2], "truncated or replaced"},
		{"truncated by one byte", original[:len(original)-1], "truncated or replaced"},
	}
	e.pg.CreateDB("dest")
	dest := e.pg.PrimaryDSN("dest")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.putObject(m.Object, c.data)
			_, err := e.svc.Restore(e.ctx(), RestoreOptions{Backup: "app", Into: dest})
			var ie *IntegrityError
			if !errors.As(err, &ie) {
				t.Fatalf("restore: want an IntegrityError, got %v", err)
			}
			t.Logf("restore refused: %v", err)
			for _, w := range []string{"backup app/" + m.ID + " failed verification, refusing to restore it", "destination was not touched", c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("restore error %q lacks %q", err, w)
				}
			}
			if tables := e.tables(dest); len(tables) != 0 {
				t.Errorf("destination was touched: tables %v", tables)
			}

			v, err := e.svc.Verify(e.ctx(), "app")
			if !errors.As(err, &ie) || v.OK || !strings.Contains(v.Error, "refusing to restore") {
				t.Fatalf("verify: want an IntegrityError and a failed verification, got %v (%+v)", err, v)
			}
			rows, qerr := e.pg.Query(e.ctx(), e.pg.PrimaryDSN("postgres"), `SELECT datname FROM pg_database WHERE datname LIKE 'drguard_rt_%'`)
			if qerr != nil || len(rows) != 0 {
				t.Errorf("scratch databases %v (%v): verify touched the scratch server", rows, qerr)
			}
		})
	}
	if got := gauge(t, e.metrics.RestoreTestRuns.WithLabelValues("shop", "app-db", "failure")); got != float64(len(cases)) {
		t.Errorf("restore_test_runs_total{result=failure} = %v, want %d", got, len(cases))
	}
	if _, ok := e.objectives.Exposure("shop", metrics.SourceBackup); ok {
		t.Error("a backup that never verified counts as a recovery point")
	}
	e.putObject(m.Object, original)
	if _, err := e.svc.Restore(e.ctx(), RestoreOptions{Backup: "app", Into: dest}); err != nil {
		t.Fatalf("the untouched object no longer restores: %v", err)
	}
}

// TestUploadFailureLeavesNoManifest breaks the multipart upload after its
// first part: the run fails and is counted, the multipart upload is
// aborted, and no manifest (nor data object) exists.
func TestUploadFailureLeavesNoManifest(t *testing.T) {
	e := newEnv(t, "")
	e.seed(e.source, time.Now())
	// About 25 MB of hex text, 12+ MB compressed: three 5 MiB parts.
	e.exec(e.source, `CREATE TABLE big AS SELECT i, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS v FROM generate_series(1, 200000) i`)
	e.s3.FailUploadParts(1)
	_, err := e.svc.Backup(e.ctx(), "app", TriggerSchedule)
	e.s3.ClearFailures()
	if err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("want the injected upload failure, got %v", err)
	}
	if keys := e.objectKeys(); len(keys) != 0 {
		t.Errorf("objects left after a failed upload: %v", keys)
	}
	up, lerr := e.s3.NewClient(t).ListMultipartUploads(e.ctx(), &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
	if lerr == nil && len(up.Uploads) != 0 {
		t.Errorf("multipart uploads left: %d", len(up.Uploads))
	}
	if got := gauge(t, e.metrics.Runs.WithLabelValues("shop", "app-db", "failure")); got != 1 {
		t.Errorf("backup_runs_total{result=failure} = %v, want 1", got)
	}
	var runs []store.BackupRun
	_ = e.journal.View(func(tx *store.Tx) error {
		return tx.ForEachBackupRun(func(r store.BackupRun) error { runs = append(runs, r); return nil })
	})
	if len(runs) != 1 || runs[0].Result != store.BackupFailed || !strings.Contains(runs[0].Error, "InternalError") {
		t.Errorf("journal = %+v", runs)
	}
	if ms, err := e.svc.Catalog(e.ctx(), "app"); err != nil || len(ms) != 0 {
		t.Errorf("catalog after a failed upload = %v, %v", ms, err)
	}
	// The next attempt succeeds.
	if _, err := e.svc.Backup(e.ctx(), "app", TriggerSchedule); err != nil {
		t.Fatal(err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
