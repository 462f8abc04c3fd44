package app

import (
	"context"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/backup"
)

func cmdRestore(ctx context.Context, args []string, io IO) int {
	fs := newFlags("restore", io)
	f := addBackupFlags(fs)
	id := fs.String("backup", "latest", "backup ID to restore, or latest")
	into := fs.String("into", "", "connection string of the destination database (it must exist and should be empty)")
	jobs := fs.Int("jobs", 2, "parallel restore jobs: pg_restore -j, and the connections that load a large dump's rows")
	noOwner := fs.Bool("no-owner", false, "restore without ownership and privileges (for a server without the original roles)")
	timeout := fs.Duration("timeout", 6*time.Hour, "bound the whole restore")
	if _, err := parse(fs, args); err != nil {
		return ExitUsage
	}
	if *into == "" {
		fmt.Fprintln(io.Stderr, "drguard restore: --into is required: the destination database's connection string")
		return ExitUsage
	}
	svc, _, closeFn, ok := f.service("restore", io)
	if !ok {
		return ExitFail
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	start := time.Now()
	m, err := svc.Restore(ctx, backup.RestoreOptions{Backup: *f.target, ID: *id, Into: *into, Jobs: *jobs, NoOwner: *noOwner})
	if err != nil {
		printIntegrity("restore", err, io)
		return ExitFail
	}
	fmt.Fprintf(io.Stdout, "restored %s/%s (taken %s, %s) in %s\n", m.Backup, m.ID,
		m.Start.Format(time.RFC3339), backup.HumanBytes(m.Sizes.Raw), time.Since(start).Round(time.Millisecond))
	return ExitOK
}
