package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkEnqueue measures durable outbox appends from concurrent
// callers, each posting a 5-alert batch (as one webhook does).
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([]Alert, 5)
			for i := range batch {
				batch[i] = Alert{Fingerprint: fmt.Sprint(i), Status: "firing", Labels: map[string]string{"alertname": "Bench", "target": fmt.Sprint(i)}}
			}
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n.Add(1) <= int64(b.N) {
						if err := s.EnqueueAlerts(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
