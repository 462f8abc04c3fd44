package app

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func cmdVerify(ctx context.Context, args []string, io IO) int {
	fs := newFlags("verify", io)
	f := addBackupFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return ExitUsage
	}
	svc, cfg, closeFn, ok := f.service("verify", io)
	if !ok {
		return ExitFail
	}
	defer closeFn()
	v, err := svc.Verify(ctx, *f.target)
	if v.BackupID != "" {
		fmt.Fprintf(io.Stdout, "restore test of %s/%s: %s in %s\n", v.Backup, v.BackupID, map[bool]string{true: "PASSED", false: "FAILED"}[v.OK],
			time.Duration(v.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	}
	if err != nil {
		printIntegrity("verify", err, io)
		return ExitFail
	}
	names := make([]string, 0, len(v.Checks))
	for n := range v.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(io.Stdout, "  check %s: %s\n", n, v.Checks[n])
	}
	fmt.Fprintf(io.Stdout, "recovery point: %s (%s), %s before the test ended\n", v.RecoveryPoint.Format(time.RFC3339),
		v.RecoveryPointSource, v.End.Sub(v.RecoveryPoint).Round(time.Second))
	if o, ok := cfg.Objectives[v.Service]; ok {
		rto := time.Duration(v.DurationSeconds*float64(time.Second)) + time.Duration(o.RTOOverhead)
		fmt.Fprintf(io.Stdout, "RTO estimate: %s (restore %s + overhead %s), objective %s\n", rto.Round(time.Second),
			time.Duration(v.DurationSeconds*float64(time.Second)).Round(time.Second), o.RTOOverhead, o.RTO)
	}
	return ExitOK
}
