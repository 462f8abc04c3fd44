package backup

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
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
// database, in an order that rotates from round to round, and are
// compared by their medians; the fetch alone (everything before
// pg_restore) is timed too.
//
// Before each contender the server checkpoints, the machine syncs, and
// warmFreeMemory runs, so that none pays for another's dirty buffers,
// dirty pages, or memory handed back to the hypervisor (see there;
// DRGUARD_BENCH_NO_WARM=1 leaves it out).
// DRGUARD_BENCH_RESTORE_VARIANTS=1 adds pg_restore from drguard's file
// copied aside (no data offsets, long written back) and from the fetched
// file once synced, with drguard's options. The target is a speed of at
// least 0.9× the local pg_restore's. DRGUARD_BENCH_CPUPROFILE=FILE
// profiles the drguard restores. Run it with -benchtime=1x.
func BenchmarkRestore(b *testing.B) {
	f := newBenchFixture(b)
	pgDump, pgRestore := benchPGTools(b)
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("DRGUARD_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	dumpFile := filepath.Join(f.dir, "local.dump")
	shell(b, fmt.Sprintf("%q -Fc -Z0 -d %q -f %q", pgDump, f.dsn, dumpFile))
	svc, err := New(Options{Config: f.cfg, TempDir: f.dir, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), S3Client: func(context.Context, config.S3Target) (*s3.Client, error) {
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
	variants := os.Getenv("DRGUARD_BENCH_RESTORE_VARIANTS") != ""
	aside := filepath.Join(f.dir, "aside.dump")
	if variants {
		copyFetched(b, svc, m, aside)
	}
	restoreInto := func(db string) string {
		f.pg.CreateDB(db)
		// Each restore starts after a checkpoint, with nothing left to
		// write back (the bench server runs with fsync off) and with warm
		// free memory.
		if err := f.pg.Exec(context.Background(), f.dsn, "CHECKPOINT"); err != nil {
			b.Fatal(err)
		}
		syscall.Sync()
		warmFreeMemory(b, f.dir)
		return f.pg.PrimaryDSN(db)
	}
	var local, drguard, fetch, asideRuns, syncedFetch, syncedRestore []time.Duration
	contenders := []func(n int){
		func(n int) {
			dsn := restoreInto(fmt.Sprintf("local_%d", n))
			local = append(local, shell(b, fmt.Sprintf("%q -j 2 -d %q %q", pgRestore, dsn, dumpFile)))
		},
		func(n int) {
			dsn := restoreInto(fmt.Sprintf("drguard_%d", n))
			start := time.Now()
			if _, err := svc.Restore(context.Background(), RestoreOptions{Backup: "stored", Into: dsn, Jobs: 2}); err != nil {
				b.Fatal(err)
			}
			drguard = append(drguard, time.Since(start))
		},
	}
	if variants {
		contenders = append(contenders, func(n int) {
			dsn := restoreInto(fmt.Sprintf("aside_%d", n))
			asideRuns = append(asideRuns, shell(b, fmt.Sprintf("%q -j 2 -d %q %q", pgRestore, dsn, aside)))
		}, func(n int) {
			fe, re := fetchSyncRestore(b, svc, m, pgRestore, restoreInto(fmt.Sprintf("synced_%d", n)))
			syncedFetch, syncedRestore = append(syncedFetch, fe), append(syncedRestore, re)
		})
	}
	for n := range rounds {
		// The order rotates from round to round, so that no contender
		// always follows the same one.
		for i := range contenders {
			contenders[(n+i)%len(contenders)](n + 1)
		}
		bk, _ := svc.Lookup("stored")
		objs, err := svc.objects(context.Background(), bk)
		if err != nil {
			b.Fatal(err)
		}
		warmFreeMemory(b, f.dir)
		start := time.Now()
		_, cleanup, err := svc.fetch(context.Background(), bk, objs, m)
		fetch = append(fetch, time.Since(start))
		cleanup()
		if err != nil {
			b.Fatal(err)
		}
	}
	l, d, fe := medianDuration(local), medianDuration(drguard), medianDuration(fetch)
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
	if variants {
		fmt.Printf("  %-44s %6.2fs  (runs %v)\n", "pg_restore -j2, drguard's file copied aside", medianDuration(asideRuns).Seconds(), asideRuns)
		fmt.Printf("  %-44s %6.2fs  (runs %v)\n", "fetch + fsync of the temporary file", medianDuration(syncedFetch).Seconds(), syncedFetch)
		fmt.Printf("  %-44s %6.2fs  (runs %v)\n\n", "  then pg_restore -j2 (drguard's options)", medianDuration(syncedRestore).Seconds(), syncedRestore)
	}
	b.ReportMetric(speed, "speed_x_vs_pg_restore")
	b.ReportMetric(fe.Seconds(), "fetch_s")
}

// copyFetched fetches m and copies the temporary file to dst, synced: a
// file with drguard's content (no data offsets) whose writeback is done.
func copyFetched(b *testing.B, svc *Service, m Manifest, dst string) {
	b.Helper()
	bk, _ := svc.Lookup("stored")
	objs, err := svc.objects(context.Background(), bk)
	if err != nil {
		b.Fatal(err)
	}
	path, cleanup, err := svc.fetch(context.Background(), bk, objs, m)
	defer cleanup()
	if err != nil {
		b.Fatal(err)
	}
	shell(b, fmt.Sprintf("cp %q %q && sync %q", path, dst, dst))
}

// fetchSyncRestore fetches m, fsyncs the temporary file, then runs
// pg_restore -j2 from it into dsn with the options drguard's restore
// gives it; it returns the time of the fetch with
// the fsync and the time of pg_restore.
func fetchSyncRestore(b *testing.B, svc *Service, m Manifest, pgRestore, dsn string) (time.Duration, time.Duration) {
	b.Helper()
	bk, _ := svc.Lookup("stored")
	objs, err := svc.objects(context.Background(), bk)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	path, cleanup, err := svc.fetch(context.Background(), bk, objs, m)
	defer cleanup()
	if err != nil {
		b.Fatal(err)
	}
	shell(b, fmt.Sprintf("sync %q", path))
	fe := time.Since(start)
	return fe, shell(b, fmt.Sprintf("%q --exit-on-error --no-password -j 2 -d %q %q", pgRestore, dsn+"&application_name="+applicationName, path))
}

// warmFreeMemory writes a 1 GiB file and deletes it, unless
// DRGUARD_BENCH_NO_WARM is set. On these VMs the guest hands free memory
// back to the hypervisor a few seconds after it is freed (free page
// reporting), and the first touch of such memory costs a fault on the
// host: writing 248 MiB into new page cache took 0.06 s when memory had
// just been freed and 0.37–0.56 s after three idle seconds, and restores
// took either about 1.9 s or about 2.7 s depending on it
// (docs/benchmarks.md). Memory freed just before a contender starts is
// warm for the next seconds, the same for every contender.
func warmFreeMemory(b *testing.B, dir string) {
	b.Helper()
	if os.Getenv("DRGUARD_BENCH_NO_WARM") != "" {
		return
	}
	w, err := os.CreateTemp(dir, "warm-*")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(w.Name())
	defer w.Close()
	buf := make([]byte, 1<<20)
	for range 1024 {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode compares, side by side, the two ways a restore decodes a
// backup's frames into its temporary file (page cache, not flushed, as a
// restore leaves it): decodeFrames (frames decoded
// and written on every core) and decodeStream (one zstd stream, as
// restores did before), on 256 MiB of dump-like text compressed by
// compressFrames. They alternate for DRGUARD_BENCH_ROUNDS rounds (default
// 5), each after warmFreeMemory, and are compared by their medians. Run
// it with -benchtime=1x.
func BenchmarkDecode(b *testing.B) {
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("DRGUARD_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	raw := dumpLike(256 << 20)
	var compressed bytes.Buffer
	if err := compressFrames(&compressed, bytes.NewReader(raw), frameWorkers(), frameChunk); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	into := func(decode func(f *os.File) error) time.Duration {
		warmFreeMemory(b, dir)
		f, err := os.CreateTemp(dir, "decode-*")
		if err != nil {
			b.Fatal(err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		start := time.Now()
		if err := decode(f); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var frames, stream []time.Duration
	for range rounds {
		frames = append(frames, into(func(f *os.File) error {
			_, err := decodeFrames(f, bytes.NewReader(compressed.Bytes()), frameWorkers())
			return err
		}))
		stream = append(stream, into(func(f *os.File) error {
			return decodeStream(f, bytes.NewReader(compressed.Bytes()))
		}))
	}
	fr, st := medianDuration(frames), medianDuration(stream)
	mib := float64(len(raw)) / (1 << 20)
	fmt.Printf("\ndecode of %.0f MiB (stored %.1f MiB) into a temporary file; medians of %d alternating rounds\n", mib, float64(compressed.Len())/(1<<20), rounds)
	fmt.Printf("  %-34s %6.3fs %6.0f MiB/s (runs %v)\n", "frames on every core", fr.Seconds(), mib/fr.Seconds(), frames)
	fmt.Printf("  %-34s %6.3fs %6.0f MiB/s (runs %v)\n", "one stream", st.Seconds(), mib/st.Seconds(), stream)
	fmt.Printf("  %-34s %6.2fx\n\n", "speed-up", st.Seconds()/fr.Seconds())
	b.ReportMetric(st.Seconds()/fr.Seconds(), "speedup_x")
}

// medianDuration returns the median of d.
func medianDuration(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
