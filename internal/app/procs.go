package app

import "runtime"

// minProcs is the fewest Ps (GOMAXPROCS) the daemon runs with, even on one
// CPU or when GOMAXPROCS=1 is set. Webhook intake answers only after a
// durable write. A goroutine that returns from such a blocking system call
// and finds its P taken waits in the runtime's global run queue, which a
// busy P visits only once in 61 scheduling rounds; with a single P that
// wait grows with the load until intake collapses (a 5× drop in
// throughput, p99 in the hundreds of milliseconds: docs/benchmarks.md). A
// second P, even on one CPU, picks the returning writer up at once.
const minProcs = 2

// EnsureMinProcs raises GOMAXPROCS to minProcs and returns the value it
// replaced, or 0 when it was high enough.
func EnsureMinProcs() int {
	if n := runtime.GOMAXPROCS(0); n < minProcs {
		runtime.GOMAXPROCS(minProcs)
		return n
	}
	return 0
}
