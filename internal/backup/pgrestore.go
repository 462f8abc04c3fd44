package backup

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// splitRestoreMin is the size of a dump (its raw bytes) from which a
// restore with two jobs or more loads the tables' rows itself, over as
// many connections (loadTables), instead of leaving them to pg_restore,
// which loads a table over one connection however large it is. Smaller
// dumps are restored by one pg_restore, which saves the two extra runs.
const splitRestoreMin = 64 << 20

// pgRestore restores the custom-format dump in path (of rawSize bytes)
// into conn with jobs parallel jobs; opts are pg_restore options beside
// -j. A large dump is restored in three steps, the tables being created by
// pg_restore --section=pre-data, their rows loaded by loadTables (COPY
// over jobs connections, every table's rows shared among them) while
// pg_restore --section=data restores whatever other data the dump holds
// (sequence values, large objects), then indexes, constraints and the
// rest by pg_restore --section=post-data. The result is the same as one
// pg_restore's; only the loading of a large table runs on several
// connections. Errors carry pg_restore's message, redacted.
func (s *Service) pgRestore(ctx context.Context, tool, path string, rawSize int64, conn conninfo, jobs int, opts ...string) error {
	run := func(ctx context.Context, extra ...string) error {
		args := append(slices.Clone(opts), "-j", strconv.Itoa(jobs))
		args = append(append(args, extra...), path)
		cmd, stderr := toolCommand(ctx, tool, conn, args...)
		if err := cmd.Run(); err != nil {
			return toolError("pg_restore", err, stderr, conn)
		}
		return nil
	}
	p, why := planSplitRestore(path, rawSize, s.splitMin, jobs)
	if p == nil {
		s.log.Debug("restore by one pg_restore", "why", why)
		return run(ctx)
	}
	if err := run(ctx, "--section=pre-data"); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if p.others != nil {
		list := path + ".list"
		if err := os.WriteFile(list, p.others, 0o600); err != nil {
			return fmt.Errorf("pg_restore list: %v", err)
		}
		defer func() { _ = os.Remove(list) }()
		g.Go(func() error { return run(gctx, "--section=data", "--use-list="+list) })
	}
	g.Go(func() error { return s.loadTables(gctx, p, path, conn, jobs) })
	if err := g.Wait(); err != nil {
		return err
	}
	return run(ctx, "--section=post-data")
}

// splitRestore is how a dump is restored in three steps.
type splitRestore struct {
	arch *archive
	// tables are the entries whose rows loadTables loads: TABLE DATA in
	// COPY format, by dump ID.
	tables map[int]archiveEntry
	// stdStrings is the dump's standard_conforming_strings.
	stdStrings string
	// others is a pg_restore list of the remaining entries, nil when none
	// of them is data.
	others []byte
}

// planSplitRestore reads the dump's table of contents and plans its
// restore in three steps, or returns nil and why not: one job, a dump under
// min bytes, an archive it cannot read, a compressed one, an encoding
// other than UTF-8 (whose rows drguard cannot cut safely), or no rows in
// COPY format.
func planSplitRestore(path string, rawSize, min int64, jobs int) (*splitRestore, string) {
	switch {
	case jobs < 2:
		return nil, "one job"
	case rawSize < min:
		return nil, fmt.Sprintf("a dump of %d bytes", rawSize)
	}
	a, err := readArchive(path)
	switch {
	case err != nil:
		return nil, err.Error()
	case a.compressed:
		return nil, "a compressed archive"
	case a.setting("ENCODING") != "UTF8":
		return nil, "encoding " + a.setting("ENCODING")
	}
	p := &splitRestore{arch: a, tables: map[int]archiveEntry{}, stdStrings: a.setting("STDSTRINGS")}
	if p.stdStrings == "" {
		p.stdStrings = "on"
	}
	otherData := false
	phases := a.phases()
	for i, e := range a.Entries {
		switch {
		case phases[i] != sectionData:
		case e.Desc == "TABLE DATA" && e.HasData && isCopyStatement(e.CopyStmt):
			p.tables[e.ID] = e
		default:
			otherData = true
		}
	}
	if len(p.tables) == 0 {
		return nil, "no rows in COPY format"
	}
	if otherData {
		var b strings.Builder
		for _, e := range a.Entries {
			if _, ok := p.tables[e.ID]; !ok {
				fmt.Fprintf(&b, "%d;\n", e.ID)
			}
		}
		p.others = []byte(b.String())
	}
	return p, ""
}

// isCopyStatement tells pg_dump's "COPY table (columns) FROM stdin;".
func isCopyStatement(s string) bool {
	return strings.HasPrefix(s, "COPY ") && strings.HasSuffix(strings.TrimSpace(s), " FROM stdin;")
}

// setting returns the value that the archive's entry desc (ENCODING,
// STDSTRINGS) sets: the quoted value of its "SET name = 'value';".
func (a *archive) setting(desc string) string {
	for _, e := range a.Entries {
		if e.Desc == desc {
			if _, v, ok := strings.Cut(e.Defn, "'"); ok {
				v, _, _ = strings.Cut(v, "'")
				return v
			}
		}
	}
	return ""
}
