package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/detect/probe"
	"github.com/fruitfulplanet/drguard/internal/backup"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/prometheus/common/promslog"
	"golang.org/x/term"
)

// backupFlags are the flags the backup, restore and verify commands share.
type backupFlags struct {
	file, target, storage, tmpDir *string
	log                           *promslog.Config
}

func addBackupFlags(fs *flag.FlagSet) backupFlags {
	return backupFlags{
		file:    fs.String("config.file", "", "configuration file"),
		target:  fs.String("target", "", "the backup to use: a backups[].name, or the postgres target it backs up"),
		storage: fs.String("storage.path", "", "journal directory to record runs in (not while a drguard daemon holds it)"),
		log:     addLogFlags(fs, "warn"),
		tmpDir:  fs.String("tmp-dir", "", "directory for the decrypted dump during restores (default: the system's)"),
	}
}

// cliGCPercent is the garbage collector's target in the backup, restore
// and verify commands. Their heap is a few long-lived buffers (zstd frames,
// AEAD segments, upload parts) and little garbage, so collecting after 25 %
// growth instead of 100 % costs little CPU and lowers a backup's peak RSS
// by about 7 MB (docs/benchmarks.md). GOGC, when set, wins.
const cliGCPercent = 25

// backupService loads the configuration and builds a backup.Service for a
// CLI command. The returned close releases the journal.
func (f backupFlags) service(name string, io IO) (*backup.Service, *config.Config, func(), bool) {
	if *f.target == "" {
		fmt.Fprintf(io.Stderr, "drguard %s: --target is required\n", name)
		return nil, nil, nil, false
	}
	log := NewLogger(io.Stderr, f.log)
	cfg, ok := loadConfig(*f.file, true, io)
	if !ok {
		return nil, nil, nil, false
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cliGCPercent)
	}
	var journal *store.Store
	var err error
	closeFn := func() {}
	if *f.storage != "" {
		journal, err = store.Open(*f.storage)
		if err != nil {
			fmt.Fprintf(io.Stderr, "drguard %s: %v\n", name, err)
			return nil, nil, nil, false
		}
		closeFn = func() { _ = journal.Close() }
	}
	opts := backup.Options{
		Config: cfg, Logger: log.With("component", "backup"),
		TempDir: *f.tmpDir, Progress: progressWriter(io.Stderr),
		Integrity: probe.CheckCopy(cfg, log.With("component", "restore-test")),
	}
	if journal != nil {
		opts.Journal = journal // a nil *store.Store would be a non-nil Journal
	}
	svc, err := backup.New(opts)
	if err != nil {
		closeFn()
		fmt.Fprintf(io.Stderr, "drguard %s: %v\n", name, err)
		return nil, nil, nil, false
	}
	if _, err := svc.Lookup(*f.target); err != nil {
		closeFn()
		fmt.Fprintf(io.Stderr, "drguard %s: %v\n", name, err)
		return nil, nil, nil, false
	}
	return svc, cfg, closeFn, true
}

// progressWriter returns w when it is a terminal, so long runs show a
// progress line there and nowhere else.
func progressWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

func cmdBackup(ctx context.Context, args []string, io IO) int {
	fs := newFlags("backup", io)
	f := addBackupFlags(fs)
	prune := fs.Bool("prune", false, "apply retention after the backup (needs --storage.path: deletions are journaled)")
	dryRun := fs.Bool("dry-run", false, "take no backup and delete nothing: list what retention would delete")
	timeout := fs.Duration("timeout", 0, "bound the whole command (default: the backup's timeout)")
	if _, err := parse(fs, args); err != nil {
		return ExitUsage
	}
	svc, _, closeFn, ok := f.service("backup", io)
	if !ok {
		return ExitFail
	}
	defer closeFn()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	if *dryRun {
		return printPrune(ctx, svc, *f.target, true, io)
	}
	m, err := svc.Backup(ctx, *f.target, backup.TriggerCLI)
	if err != nil {
		fmt.Fprintf(io.Stderr, "drguard backup: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(io.Stdout, "backup %s/%s of %s: %s dumped, %s compressed, %s stored in s3://%s/%s, %s\n",
		m.Backup, m.ID, m.Target, backup.HumanBytes(m.Sizes.Raw), backup.HumanBytes(m.Sizes.Compressed), backup.HumanBytes(m.Sizes.Stored),
		m.Bucket, m.Object, m.End.Sub(m.Start).Round(time.Millisecond))
	if m.Heartbeat != nil {
		fmt.Fprintf(io.Stdout, "recovery point (newest heartbeat at dump start): %s\n", m.Heartbeat.Format(time.RFC3339))
	}
	if !*prune {
		return ExitOK
	}
	if *f.storage == "" {
		fmt.Fprintln(io.Stderr, "drguard backup: --prune deletes backups and journals each deletion: give --storage.path")
		return ExitUsage
	}
	return printPrune(ctx, svc, *f.target, false, io)
}

// printPrune applies (or with dryRun, lists) retention and prints what goes.
func printPrune(ctx context.Context, svc *backup.Service, name string, dryRun bool, io IO) int {
	plan, orphans, err := svc.Prune(ctx, name, dryRun)
	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	kept := 0
	for _, d := range plan {
		if d.Keep {
			kept++
			fmt.Fprintf(io.Stdout, "keep         %s  %s  (%s)\n", d.Manifest.ID, d.Manifest.Start.Format(time.RFC3339), strings.Join(d.Reasons, ", "))
			continue
		}
		fmt.Fprintf(io.Stdout, "%-12s %s  %s\n", verb, d.Manifest.ID, d.Manifest.Start.Format(time.RFC3339))
	}
	for _, o := range orphans {
		fmt.Fprintf(io.Stdout, "%-12s %s  (data without a manifest)\n", verb, o)
	}
	fmt.Fprintf(io.Stdout, "retention: %d kept, %d %s\n", kept, len(plan)-kept+len(orphans), verb)
	if err != nil {
		fmt.Fprintf(io.Stderr, "drguard backup: %v\n", err)
		return ExitFail
	}
	return ExitOK
}

// printIntegrity explains a refused backup on stderr.
func printIntegrity(cmd string, err error, io IO) {
	var ie *backup.IntegrityError
	if errors.As(err, &ie) {
		fmt.Fprintf(io.Stderr, "drguard %s: REFUSED: %v\n", cmd, err)
		return
	}
	fmt.Fprintf(io.Stderr, "drguard %s: %v\n", cmd, err)
}
