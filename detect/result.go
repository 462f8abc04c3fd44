package detect

import (
	"context"
	"time"
)

// Result is the structured outcome of one check: whether it passed, why not,
// and the numbers it observed (lag in bytes, age in seconds, …).
type Result struct {
	OK           bool               `json:"ok"`
	Reason       string             `json:"reason,omitempty"`
	Observations map[string]float64 `json:"observations,omitempty"`
	Details      map[string]string  `json:"details,omitempty"`
	Duration     time.Duration      `json:"duration"`
	CheckedAt    time.Time          `json:"checkedAt"`
}

// Verifier answers whether a named check passes right now. Remediation
// steps use it for their `verify: {probe, within}` hook; the probe scheduler
// implements it, and so can any other detector.
type Verifier interface {
	Verify(ctx context.Context, check string, labels map[string]string) (Result, error)
}

// VerifierFunc adapts a function to the Verifier interface.
type VerifierFunc func(ctx context.Context, check string, labels map[string]string) (Result, error)

// Verify calls f.
func (f VerifierFunc) Verify(ctx context.Context, check string, labels map[string]string) (Result, error) {
	return f(ctx, check, labels)
}
