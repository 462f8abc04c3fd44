package backup

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seedAwkward fills dsn with what a restore that cuts rows could get
// wrong: values holding newlines, tabs, backslashes, a lone "\.", NULLs,
// non-ASCII text, arrays, XML and bytea, in a table with an odd name
// that is large enough to be cut into several pieces; an empty table; a
// foreign key and an index (post-data); sequences, and a large object
// (data that pg_restore restores).
func (e *env) seedAwkward(dsn string) {
	e.exec(dsn, `CREATE TABLE "odd; name" (id serial PRIMARY KEY, t text, b bytea, x xml, a text[], n numeric, ts timestamptz)`)
	e.exec(dsn, `INSERT INTO "odd; name" (t, b, x, a, n, ts) VALUES
		(E'line one\nline two', '\x00ff0a5c', '<a>1</a>', '{"x,y","\\\\."}', 1.5, '2026-01-01 00:00:00+00'),
		(E'tab\there and a back\\slash', '', 'text node', '{}', NULL, NULL),
		('\.', NULL, NULL, NULL, -0.0001, 'infinity'),
		(E'\\.', E'\\x5c2e0a', '<b/>', '{NULL}', 'NaN', '-infinity'),
		(E'\r\n', NULL, NULL, NULL, NULL, NULL),
		('żółw 🐢 ends with a backslash \', NULL, NULL, NULL, NULL, NULL),
		('', NULL, NULL, NULL, NULL, NULL)`)
	e.exec(dsn, `INSERT INTO "odd; name" (t, n, ts)
		SELECT repeat(md5(i::text), 1 + i % 5) || E'\n' || i, i / 3.0, '2026-01-01'::timestamptz + i * interval '1 s'
		FROM generate_series(1, 40000) i`)
	e.exec(dsn, `CREATE TABLE empty_one (id int)`)
	e.exec(dsn, `CREATE TABLE child (id int REFERENCES "odd; name" (id))`)
	e.exec(dsn, `INSERT INTO child SELECT i FROM generate_series(1, 100) i`)
	e.exec(dsn, `CREATE INDEX odd_t ON "odd; name" (t)`)
	e.exec(dsn, `CREATE SEQUENCE standalone`)
	e.exec(dsn, `SELECT setval('standalone', 42)`)
	e.exec(dsn, `SELECT lo_from_bytea(0, 'a large object')`)
}

// extras returns what fingerprint does not cover: sequence values, large
// objects, and the number of indexes and constraints.
func (e *env) extras(dsn string) []any {
	e.t.Helper()
	rows, err := e.pg.Query(e.ctx(), dsn, `SELECT
		(SELECT last_value FROM standalone), (SELECT last_value FROM "odd; name_id_seq"),
		(SELECT string_agg(encode(lo_get(oid), 'escape'), ',') FROM pg_largeobject_metadata),
		(SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'),
		(SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace)`)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows[0]
}

// TestSplitRestoreMatchesTheSource restores, with two jobs, a backup whose
// rows drguard loads itself over two connections, and finds every row,
// sequence value, large object, index and constraint of the source.
func TestSplitRestoreMatchesTheSource(t *testing.T) {
	e := newEnv(t, "")
	e.seedAwkward(e.source)
	want, wantExtras := e.fingerprint(e.source), e.extras(e.source)
	var log bytes.Buffer
	e.svc.log = slog.New(slog.NewTextHandler(&log, nil))
	e.svc.splitMin = 0
	if _, err := e.svc.Backup(e.ctx(), "app", TriggerCLI); err != nil {
		t.Fatal(err)
	}
	for _, jobs := range []int{2, 3} {
		db := "restored" + string(rune('0'+jobs))
		e.pg.CreateDB(db)
		dsn := e.pg.PrimaryDSN(db)
		if _, err := e.svc.Restore(e.ctx(), RestoreOptions{Backup: "app", Into: dsn, Jobs: jobs}); err != nil {
			t.Fatal(err)
		}
		if got := e.fingerprint(dsn); !reflect.DeepEqual(got, want) {
			t.Errorf("jobs=%d: restored rows differ:\n got  %v\n want %v", jobs, got, want)
		}
		if got := e.extras(dsn); !reflect.DeepEqual(got, wantExtras) {
			t.Errorf("jobs=%d: sequences, large objects, indexes, constraints = %v, want %v", jobs, got, wantExtras)
		}
	}
	if n := strings.Count(log.String(), `msg="restore loaded the tables' rows" tables=3 connections=`); n != 2 {
		t.Errorf("the rows were not loaded by drguard over several connections in both restores (%d):\n%s", n, log.String())
	}
}

// dumpFile runs pg_dump -Fc with args on dsn into a file, or, with
// args "-", through a pipe into the file, as drguard's backups are.
func dumpFile(t *testing.T, dsn string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.dump")
	pgDump, err := findTool("", "pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pgDump, append([]string{"-d", dsn, "--no-password"}, args...)...)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if len(args) > 0 && args[len(args)-1] == "-" {
		cmd.Args = cmd.Args[:len(cmd.Args)-1]
		cmd.Stdout = f
	} else {
		cmd.Args = append(cmd.Args, "-f", path)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, stderr.Bytes())
	}
	return path
}

// TestReadArchive reads pg_dump's archives written to a pipe (no data
// offsets in the table of contents) and to a file (offsets): the same
// entries, each table's rows exactly as COPY TO writes them followed by
// the end-of-data marker, and plans that say why a dump is restored by
// one pg_restore.
func TestReadArchive(t *testing.T) {
	e := newEnv(t, "")
	e.seedAwkward(e.source)
	var want bytes.Buffer
	copyOut(t, e.source, `COPY public."odd; name" (id, t, b, x, a, n, ts) TO STDOUT`, &want)

	var entries [][]archiveEntry
	for _, path := range []string{dumpFile(t, e.source, "-Fc", "-Z0", "-"), dumpFile(t, e.source, "-Fc", "-Z0")} {
		a, err := readArchive(path)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, a.Entries)
		var odd *archiveEntry
		for i, en := range a.Entries {
			if en.Desc == "TABLE DATA" && en.Tag == "odd; name" {
				odd = &a.Entries[i]
			}
		}
		if odd == nil || odd.CopyStmt != "COPY public.\"odd; name\" (id, t, b, x, a, n, ts) FROM stdin;\n" || !odd.HasData {
			t.Fatalf("%s: TABLE DATA of \"odd; name\" = %+v", path, odd)
		}
		var got []byte
		blocks := 0
		err = a.walkData(path, func(id int, r io.Reader) error {
			blocks++
			if id != odd.ID {
				return nil
			}
			got, err = io.ReadAll(r)
			return err
		})
		switch {
		case err != nil:
			t.Fatal(err)
		case blocks != 3: // three tables; the large object's block is skipped
			t.Errorf("%s: %d tables' data blocks, want 3", path, blocks)
		case !bytes.Equal(trimEndMarker(got), want.Bytes()):
			t.Errorf("%s: rows of \"odd; name\" differ from COPY TO (%d against %d bytes)", path, len(got), want.Len())
		case bytes.Equal(got, want.Bytes()):
			t.Errorf("%s: no end-of-data marker after the rows", path)
		}
	}
	if !reflect.DeepEqual(entries[0], entries[1]) {
		t.Errorf("the archives through a pipe and into a file list different entries:\n%v\n%v", entries[0], entries[1])
	}

	for _, tc := range []struct {
		name string
		path string
		jobs int
		min  int64
		why  string
	}{
		{"one job", dumpFile(t, e.source, "-Fc", "-Z0", "-"), 1, 0, "one job"},
		{"small", dumpFile(t, e.source, "-Fc", "-Z0", "-"), 2, 1 << 30, "a dump of "},
		{"compressed", dumpFile(t, e.source, "-Fc", "-Z1", "-"), 2, 0, "a compressed archive"},
		{"plain SQL", dumpFile(t, e.source, "-Fp", "-"), 2, 0, "not a pg_dump custom-format archive"},
		{"inserts", dumpFile(t, e.source, "-Fc", "-Z0", "--inserts", "-"), 2, 0, "no rows in COPY format"},
		{"split", dumpFile(t, e.source, "-Fc", "-Z0", "-"), 2, 0, ""},
	} {
		p, why := planSplitRestore(tc.path, 1<<20, tc.min, tc.jobs)
		switch {
		case tc.why == "" && (p == nil || len(p.tables) != 3 || p.others == nil || p.stdStrings != "on"):
			t.Errorf("%s: plan %+v (%s), want three tables and a list of the rest", tc.name, p, why)
		case tc.why != "" && (p != nil || !strings.Contains(why, tc.why)):
			t.Errorf("%s: plan %v, %q; want none because %q", tc.name, p, why, tc.why)
		}
	}
}

// copyOut runs a COPY ... TO STDOUT on dsn into w.
func copyOut(t *testing.T, dsn, sql string, w io.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := parseConninfo(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(c)
	if _, err := c.PgConn().CopyTo(ctx, w, sql); err != nil {
		t.Fatal(err)
	}
}

// TestSplitRestoreNamesTheTableThatFails restores a dump with one row
// damaged: the load stops with the table's name and PostgreSQL's reason.
func TestSplitRestoreNamesTheTableThatFails(t *testing.T) {
	e := newEnv(t, "")
	e.seedAwkward(e.source)
	path := dumpFile(t, e.source, "-Fc", "-Z0", "-")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The text of row 31337 ends in an escaped newline and 31330: one tab
	// more makes it a row of too many columns.
	if n := bytes.Count(b, []byte(`\n31330`+"\t")); n != 1 {
		t.Fatalf("row 31337 found %d times in the dump", n)
	}
	b = bytes.Replace(b, []byte(`\n31330`+"\t"), []byte(`\n3133`+"\t\t"), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	pgRestore, err := findTool("", "pg_restore")
	if err != nil {
		t.Fatal(err)
	}
	e.pg.CreateDB("restored")
	into, err := parseConninfo(e.pg.PrimaryDSN("restored"))
	if err != nil {
		t.Fatal(err)
	}
	e.svc.splitMin = 0
	err = e.svc.pgRestore(e.ctx(), pgRestore, path, int64(len(b)), into, 2, "--exit-on-error", "--no-password")
	if err == nil || !strings.Contains(err.Error(), `load the rows of public.odd; name`) || !strings.Contains(err.Error(), "extra data after last expected column") {
		t.Fatalf("err = %v, want the table and the bad value", err)
	}
}
