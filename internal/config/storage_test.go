package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// journalTargets is a configuration with a postgres target that a probe,
// a backup and a policy use; the storage section is appended.
const journalTargets = webhookAuth + `targets:
  postgres:
    - name: main
      dsn: ${MAIN_DSN}
probes:
  - {name: main-up, type: postgres, target: main, scenario: db_down, service: app}
policies:
  - name: failover
    matchers: ['alertname="X"']
    steps:
      - action: exec
        params: {argv: [promote, main]}
`

func TestJournalMustNotLiveInAGuardedDatabase(t *testing.T) {
	t.Setenv("MAIN_DSN", "postgres://app:pw@db.internal:5432/app?sslmode=disable")
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "journal-dsn")
	if err := os.WriteFile(dsnFile, []byte("host=DB.internal port=5432 dbname=app user=drguard password=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		storage string
		want    []string // substrings of the problems; none means it loads
	}{
		{
			name:    "same host, port and database",
			storage: "storage:\n  type: postgres\n  dsn: postgres://drguard:hunter2@db.internal/app\n",
			want: []string{`test.yaml:18: storage.dsn: the journal's database app on db.internal:5432 is also the database of postgres target "main" (used by probe "main-up", policy "failover")`,
				"must never live in the database it guards"},
		},
		{
			name:    "the same database named in a dsn_file, host in other case",
			storage: "storage:\n  type: postgres\n  dsn_file: " + dsnFile + "\n",
			want:    []string{`test.yaml:18: storage.dsn_file: the journal's database app on db.internal:5432`},
		},
		{
			name:    "a fallback host of the journal is the target's server",
			storage: "storage:\n  type: postgres\n  dsn: postgres://drguard:hunter2@standby.internal,db.internal:5432/app\n",
			want:    []string{`target "main"`},
		},
		{
			name:    "another database on the same server",
			storage: "storage:\n  type: postgres\n  dsn: postgres://drguard:hunter2@db.internal:5432/drguard\n",
		},
		{
			name:    "the same database name on another server",
			storage: "storage:\n  type: postgres\n  dsn: postgres://drguard:hunter2@journal.internal:5432/app\n",
		},
		{
			name:    "the same database on another port",
			storage: "storage:\n  type: postgres\n  dsn: postgres://drguard:hunter2@db.internal:5433/app\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yml := journalTargets + tc.storage
			if len(tc.want) == 0 {
				mustParse(t, yml)
				return
			}
			ps := parseErr(t, yml, knownExecHTTP())
			wantAll(t, ps.Error(), tc.want...)
			if strings.Contains(ps.Error(), "hunter2") {
				t.Errorf("a problem shows the journal's password:\n%v", ps)
			}
		})
	}
}

func TestLoopbackNamesAreOneServer(t *testing.T) {
	t.Setenv("MAIN_DSN", "host=127.0.0.1 port=5432 dbname=app")
	ps := parseErr(t, journalTargets+"storage: {type: postgres, dsn: 'postgres://localhost/app'}\n", knownExecHTTP())
	wantAll(t, ps.Error(), "test.yaml:16: storage.dsn: the journal's database app on localhost:5432")
}

func TestStorageSection(t *testing.T) {
	t.Setenv("JOURNAL_DSN", "postgres://drguard:hunter2@journal.internal/drguard")
	c := mustParse(t, webhookAuth+"storage: {type: postgres, dsn: '${JOURNAL_DSN}'}\n")
	if c.Storage.Type != StoragePostgres || c.Storage.DSN.Reveal() != "postgres://drguard:hunter2@journal.internal/drguard" {
		t.Errorf("storage = %+v", c.Storage)
	}
	if c := mustParse(t, webhookAuth); c.Storage.Type != StorageEmbedded || c.Storage.Path != "data" || c.Storage.Retention != DefaultRetention {
		t.Errorf("default storage = %+v, want embedded in data, retention 1y", c.Storage)
	}
	if c := mustParse(t, webhookAuth+"storage: {retention: 90d}\n"); c.Storage.Retention.String() != "90d" {
		t.Errorf("storage.retention = %v, want 90d", c.Storage.Retention)
	}
	for _, tc := range []struct{ storage, want string }{
		{"storage: {type: sqlite}", `test.yaml:4: storage.type: unknown storage type "sqlite": want embedded or postgres`},
		{"storage: {type: postgres}", "test.yaml:4: storage.dsn: the postgres journal needs dsn (or dsn_file)"},
		{"storage: {dsn: '${JOURNAL_DSN}'}", "test.yaml:4: storage.dsn: dsn is for the postgres journal"},
		{"storage: {type: postgres, dsn: 'postgres://u:hunter2@h:notaport/db'}", "test.yaml:4: storage.dsn: the DSN does not parse"},
		{"storage: {retention: 1h}", "test.yaml:4: storage.retention: must be at least 1d"},
	} {
		ps := parseErr(t, webhookAuth+tc.storage+"\n", knownExecHTTP())
		wantAll(t, ps.Error(), tc.want)
		if strings.Contains(ps.Error(), "hunter2") {
			t.Errorf("a problem shows the journal's password:\n%v", ps)
		}
	}
}
