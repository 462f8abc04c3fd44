package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Object names under "<s3 prefix><backup name>/". The backup_age probe finds
// backups by ManifestSuffix and reads their "end".
const (
	DataSuffix         = ".pgdump.zst.enc"
	ManifestSuffix     = ".manifest.json"
	VerificationSuffix = ".verify.json"
)

// manifestFormat is the version of the manifest and verification layouts.
const manifestFormat = 1

// idLayout is the time part of a backup ID; IDs sort in time order.
const idLayout = "20060102T150405Z"

// maxRecordBytes bounds how much of a manifest or verification is read.
const maxRecordBytes = 1 << 20

// Manifest describes one complete backup. It is written only after the data
// object is fully uploaded, so a manifest's existence means the backup is
// whole; its sha256 and the AEAD prove the bytes are the ones written.
type Manifest struct {
	Format  int    `json:"format"`
	ID      string `json:"id"`
	Backup  string `json:"backup"`
	Target  string `json:"target"`
	Service string `json:"service,omitempty"`
	// Start is when pg_dump started (its snapshot is taken then); End is
	// when the upload completed.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Sizes Sizes     `json:"sizes"`
	// SHA256 is the hex digest of the stored (encrypted) object.
	SHA256          string `json:"sha256"`
	PostgresVersion string `json:"postgres_version"`
	KeyID           string `json:"key_id"`
	Encryption      string `json:"encryption"`
	Compression     string `json:"compression"`
	DumpFormat      string `json:"dump_format"`
	// Heartbeat is the newest heartbeat seen just before pg_dump started:
	// the dump holds at least the data up to it. Nil when the target has
	// no heartbeat table.
	Heartbeat      *time.Time `json:"heartbeat,omitempty"`
	HeartbeatTable string     `json:"heartbeat_table,omitempty"`
	// Bucket and Object locate the data object.
	Bucket string `json:"bucket"`
	Object string `json:"object"`
	SSE    string `json:"sse,omitempty"`
}

// Sizes are the byte counts at each stage of the pipeline.
type Sizes struct {
	Raw        int64 `json:"raw"`        // pg_dump's output
	Compressed int64 `json:"compressed"` // after zstd
	Stored     int64 `json:"stored"`     // after encryption: the object's size
}

// RecoveryPoint is the newest moment the backup's data is known to contain:
// its heartbeat, or the dump's start when there is none.
func (m Manifest) RecoveryPoint() time.Time {
	if m.Heartbeat != nil && !m.Heartbeat.IsZero() {
		return *m.Heartbeat
	}
	return m.Start
}

// Verification is the outcome of the latest restore test of one backup,
// stored beside its manifest so that a restarted drguard (or another
// replica) knows which backups are proven restorable.
type Verification struct {
	Format      int       `json:"format"`
	BackupID    string    `json:"backup_id"`
	Backup      string    `json:"backup"`
	Target      string    `json:"target"`
	Service     string    `json:"service,omitempty"`
	RestoreTest string    `json:"restore_test,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	// DurationSeconds is the whole restore test: download, authenticate,
	// decrypt, decompress, pg_restore, checks.
	DurationSeconds float64 `json:"duration_seconds"`
	OK              bool    `json:"ok"`
	Error           string  `json:"error,omitempty"`
	// RecoveryPoint is the newest heartbeat found inside the restored
	// data (RecoveryPointSource "heartbeat"), else the dump's start
	// ("dump_start").
	RecoveryPoint       time.Time         `json:"recovery_point"`
	RecoveryPointSource string            `json:"recovery_point_source"`
	Checks              map[string]string `json:"checks,omitempty"`
}

// newID returns a backup ID for a backup starting at t: its UTC time and a
// random suffix, e.g. 20260102T150405Z-1a2b.
func newID(t time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format(idLayout) + "-" + hex.EncodeToString(b[:])
}

// catalog is what object storage holds for one backup: its manifests
// (oldest first), the verification of each backup that has one, and data
// objects without a manifest (failed or interrupted runs).
type catalog struct {
	Manifests     []Manifest
	Verifications map[string]Verification
	Orphans       []orphan
}

// orphan is a data object that has no manifest.
type orphan struct {
	Key          string
	LastModified time.Time
}

// latest returns the newest manifest, or false.
func (c *catalog) latest() (Manifest, bool) {
	if len(c.Manifests) == 0 {
		return Manifest{}, false
	}
	return c.Manifests[len(c.Manifests)-1], true
}

// find returns the manifest with id ("latest" or "" for the newest).
func (c *catalog) find(id string) (Manifest, bool) {
	if id == "" || id == "latest" {
		return c.latest()
	}
	for _, m := range c.Manifests {
		if m.ID == id {
			return m, true
		}
	}
	return Manifest{}, false
}

// lastVerification returns the most recent verification, passed or not.
func (c *catalog) lastVerification() (Verification, bool) {
	var last Verification
	for _, v := range c.Verifications {
		if v.End.After(last.End) {
			last = v
		}
	}
	return last, !last.End.IsZero()
}

// recordCache keeps decoded manifests and verifications by key and ETag,
// so a refresh reads only objects that are new or changed.
type recordCache struct {
	mu sync.Mutex
	m  map[string]cachedRecord
}

type cachedRecord struct {
	etag string
	raw  []byte
}

// readCatalog lists the store and reads every manifest and verification.
func readCatalog(ctx context.Context, o *objectStore, cache *recordCache) (*catalog, error) {
	objs, err := o.list(ctx)
	if err != nil {
		return nil, err
	}
	c := &catalog{Verifications: map[string]Verification{}}
	data := map[string]orphan{}
	manifests := map[string]bool{}
	for _, obj := range objs {
		key := aws.ToString(obj.Key)
		name := strings.TrimPrefix(key, o.prefix)
		switch {
		case strings.HasSuffix(name, DataSuffix):
			data[strings.TrimSuffix(name, DataSuffix)] = orphan{Key: key, LastModified: aws.ToTime(obj.LastModified)}
		case strings.HasSuffix(name, ManifestSuffix):
			var m Manifest
			if err := readRecord(ctx, o, cache, key, aws.ToString(obj.ETag), &m); err != nil {
				return nil, err
			}
			manifests[m.ID] = true
			c.Manifests = append(c.Manifests, m)
		case strings.HasSuffix(name, VerificationSuffix):
			var v Verification
			if err := readRecord(ctx, o, cache, key, aws.ToString(obj.ETag), &v); err != nil {
				return nil, err
			}
			c.Verifications[v.BackupID] = v
		}
	}
	sort.Slice(c.Manifests, func(i, j int) bool {
		a, b := c.Manifests[i], c.Manifests[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.ID < b.ID
	})
	for id, d := range data {
		if !manifests[id] {
			c.Orphans = append(c.Orphans, d)
		}
	}
	sort.Slice(c.Orphans, func(i, j int) bool { return c.Orphans[i].Key < c.Orphans[j].Key })
	return c, nil
}

// readRecord reads a small JSON object, from the cache when its ETag is
// unchanged.
func readRecord(ctx context.Context, o *objectStore, cache *recordCache, key, etag string, into any) error {
	var raw []byte
	if cache != nil && etag != "" {
		cache.mu.Lock()
		if r, ok := cache.m[key]; ok && r.etag == etag {
			raw = r.raw
		}
		cache.mu.Unlock()
	}
	if raw == nil {
		body, _, err := o.get(ctx, key)
		if err != nil {
			return err
		}
		raw, err = io.ReadAll(io.LimitReader(body, maxRecordBytes))
		_ = body.Close()
		if err != nil {
			return fmt.Errorf("read %s: %v", o.url(key), err)
		}
		if cache != nil && etag != "" {
			cache.mu.Lock()
			if cache.m == nil {
				cache.m = map[string]cachedRecord{}
			}
			cache.m[key] = cachedRecord{etag: etag, raw: raw}
			cache.mu.Unlock()
		}
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("decode %s: %v", o.url(key), err)
	}
	return nil
}

// writeRecord stores a small JSON object.
func writeRecord(ctx context.Context, o *objectStore, key string, v any, sse, kmsKey string) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return o.put(ctx, key, append(raw, '\n'), sse, kmsKey)
}
