package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// BenchmarkRestore compares, side by side on one database of
// DRGUARD_BENCH_GB GiB (default 1), drguard's restore of a backup stored
// in the in-process S3 server (download, authenticate, decrypt,
// decompress into a temporary file, then pg_restore -j2) against
// pg_restore -j2 from a local file written by pg_dump -Fc -Z0. The two
// alternate for DRGUARD_BENCH_ROUNDS rounds (default 5), each into a new
// database, and are compared by their medians; the fetch alone (everything
// before pg_restore) is timed too. The target is a speed of at least 0.9×
// the local pg_restore's. DRGUARD_BENCH_CPUPROFILE=FILE profiles the
// drguard restores. Run it with -benchtime=1x.
func BenchmarkRestore(b *testing.B) {
	f := newBenchFixture(b)
	pgDump, err := findTool("", "pg_dump")
	if err != nil {
		b.Fatal(err)
	}
	pgRestore, err := findTool("", "pg_restore")
	if err != nil {
		b.Fatal(err)
	}
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("DRGUARD_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	dumpFile := filepath.Join(f.dir, "local.dump")
	shell(b, fmt.Sprintf("%q -Fc -Z0 -d %q -f %q", pgDump, f.dsn, dumpFile))
	svc, err := New(Options{Config: f.cfg, TempDir: f.dir, S3Client: func(context.Context, config.S3Target) (*s3.Client, error) {
		return f.s3.NewClient(b), nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := svc.Backup(context.Background(), "stored", TriggerCLI)
	if err != nil {
		b.Fatal(err)
	}
	if prof := os.Getenv("DRGUARD_BENCH_CPUPROFILE"); prof != "" {
		pf, err := os.Create(prof)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	var local, drguard, fetch []time.Duration
	n := 0
	for range rounds {
		n++
		db := fmt.Sprintf("local_%d", n)
		f.pg.CreateDB(db)
		local = append(local, shell(b, fmt.Sprintf("%q -j 2 -d %q %q", pgRestore, f.pg.PrimaryDSN(db), dumpFile)))

		db = fmt.Sprintf("drguard_%d", n)
		f.pg.CreateDB(db)
		start := time.Now()
		if _, err := svc.Restore(context.Background(), RestoreOptions{Backup: "stored", Into: f.pg.PrimaryDSN(db), Jobs: 2}); err != nil {
			b.Fatal(err)
		}
		drguard = append(drguard, time.Since(start))

		bk, _ := svc.Lookup("stored")
		objs, err := svc.objects(context.Background(), bk)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		_, cleanup, err := svc.fetch(context.Background(), bk, objs, m)
		fetch = append(fetch, time.Since(start))
		cleanup()
		if err != nil {
			b.Fatal(err)
		}
	}
	median := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	l, d, fe := median(local), median(drguard), median(fetch)
	speed := l.Seconds() / d.Seconds()
	verdict := "ok"
	if speed < 0.9 {
		verdict = "MISSED"
	}
	mib := float64(m.Sizes.Raw) / (1 << 20)
	fmt.Printf("\nrestore of %.0f MiB (pg_dump -Fc -Z0), stored %.1f MiB; medians of %d alternating rounds\n", mib, float64(m.Sizes.Stored)/(1<<20), rounds)
	fmt.Printf("  %-44s %6.2fs  (runs %v)\n", "pg_restore -j2 from a local file", l.Seconds(), local)
	fmt.Printf("  %-44s %6.2fs  (runs %v)\n", "drguard restore -j2 (from S3)", d.Seconds(), drguard)
	fmt.Printf("  %-44s %6.2fs  %6.1f MiB/s\n", "  of which the fetch (download … temp file)", fe.Seconds(), mib/fe.Seconds())
	fmt.Printf("  %-44s %6.2fx (want >= 0.9: %s)\n\n", "speed, drguard vs local pg_restore", speed, verdict)
	b.ReportMetric(speed, "speed_x_vs_pg_restore")
	b.ReportMetric(fe.Seconds(), "fetch_s")
}
