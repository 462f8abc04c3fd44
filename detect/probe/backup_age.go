package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/awsclient"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
	"github.com/prometheus/common/model"
)

// DefaultManifestSuffix ends the names of drguard's backup manifests.
const DefaultManifestSuffix = ".manifest.json"

// maxManifestBytes bounds how much of a manifest is read.
const maxManifestBytes = 1 << 20

// backupParams is the params of backup_age.
type backupParams struct {
	// MaxAge is the oldest the newest backup may be; required.
	MaxAge model.Duration `param:"max_age"`
	// ManifestSuffix marks manifest objects (default .manifest.json);
	// their "end" field is the backup's time. Without manifests the
	// newest object's LastModified is used.
	ManifestSuffix string `param:"manifest_suffix"`
	// SkipPosture skips the bucket posture calls (versioning, default
	// encryption, replication).
	SkipPosture bool `param:"skip_posture"`
	// RequireVersioning, RequireEncryption and RequireReplication turn
	// the matching posture observation into a failure.
	RequireVersioning  bool `param:"require_versioning"`
	RequireEncryption  bool `param:"require_encryption"`
	RequireReplication bool `param:"require_replication"`
}

func (c *backupParams) defaults() { c.ManifestSuffix = DefaultManifestSuffix }

func (c *backupParams) check() error {
	if c.MaxAge <= 0 {
		return params.Required("max_age", "the oldest the newest backup may be, e.g. 26h")
	}
	return nil
}

func compileBackupAge(p config.Probe, cfg *config.Config) (Runner, error) {
	return compileKind(p, cfg, &backupParams{}, bucketTarget,
		func(ctx context.Context, env Env, t config.S3Target, c *backupParams) detect.Result {
			return backupAge(ctx, env, p.Service, t, c)
		})
}

// bucketTarget resolves a backup_age probe's s3 target, which must name a
// bucket.
func bucketTarget(c *config.Config, name string) (config.S3Target, error) {
	t, err := s3Target(c, name)
	if err == nil && t.Bucket == "" {
		err = fmt.Errorf("s3 target %q has no bucket", t.Name)
	}
	return t, err
}

// manifest is the part of a drguard backup manifest this probe reads.
type manifest struct {
	End time.Time `json:"end"`
}

// backupAge finds the newest backup under the target's bucket and prefix
// (the newest manifest's end time, else the newest object's LastModified),
// fails when it is older than max_age, and reports the bucket's posture:
// versioning, default encryption and replication.
func backupAge(ctx context.Context, env Env, service string, t config.S3Target, c *backupParams) detect.Result {
	client, err := env.s3Client(ctx, t)
	if err != nil {
		return fail("s3 target %s: %v", t.Name, err)
	}
	where := "s3://" + t.Bucket + "/" + t.Prefix
	r := newResult()
	r.detail("location", where)
	newest, newestManifest, objects, err := newestObjects(ctx, client, t, c.ManifestSuffix)
	if err != nil {
		r.failf("listing %s: %s", where, awsclient.ErrorMessage(err))
		return r.done()
	}
	r.observe("objects", float64(objects))
	var end time.Time
	switch {
	case newestManifest != nil:
		end = aws.ToTime(newestManifest.LastModified)
		r.detail("newest", aws.ToString(newestManifest.Key))
		r.detail("time_source", "manifest")
		if m, err := readManifest(ctx, client, t.Bucket, aws.ToString(newestManifest.Key)); err != nil {
			r.detail("manifest_error", err.Error())
			r.detail("time_source", "last_modified (manifest unreadable)")
		} else if !m.End.IsZero() {
			end = m.End
		}
	case newest != nil:
		end = aws.ToTime(newest.LastModified)
		r.detail("newest", aws.ToString(newest.Key))
		r.detail("time_source", "last_modified")
	default:
		r.failf("no backups under %s", where)
	}
	if !end.IsZero() {
		age := env.now().Sub(end)
		r.observe("age_seconds", age.Seconds())
		r.observe("last_success_timestamp_seconds", float64(end.UnixNano())/1e9)
		if m := env.Metrics; m != nil {
			m.BackupAge.WithLabelValues(service, t.Name).Set(age.Seconds())
			m.BackupLastSuccess.WithLabelValues(service, t.Name).Set(float64(end.UnixNano()) / 1e9)
		}
		if age > time.Duration(c.MaxAge) {
			r.failf("newest backup under %s is %s old, over max_age %s", where, age.Round(time.Second), c.MaxAge)
		}
	}
	if !c.SkipPosture {
		bucketPosture(ctx, client, t.Bucket, c, r)
	}
	return r.done()
}

// newestObjects lists every object under the prefix and returns the newest
// object, the newest manifest and the count.
func newestObjects(ctx context.Context, client *s3.Client, t config.S3Target, suffix string) (newest, newestManifest *types.Object, n int, err error) {
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket: aws.String(t.Bucket), Prefix: aws.String(t.Prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, nil, n, err
		}
		for i := range page.Contents {
			o := &page.Contents[i]
			n++
			if newest == nil || aws.ToTime(o.LastModified).After(aws.ToTime(newest.LastModified)) {
				newest = o
			}
			if strings.HasSuffix(aws.ToString(o.Key), suffix) &&
				(newestManifest == nil || aws.ToTime(o.LastModified).After(aws.ToTime(newestManifest.LastModified))) {
				newestManifest = o
			}
		}
	}
	return newest, newestManifest, n, nil
}

// readManifest reads and decodes one manifest.
func readManifest(ctx context.Context, client *s3.Client, bucket, key string) (manifest, error) {
	var m manifest
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return m, errors.New(awsclient.ErrorMessage(err))
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxManifestBytes))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode %s: %v", key, err)
	}
	return m, nil
}

// bucketPosture reports versioning, default encryption and replication.
// A posture call the store does not support or allow is reported as
// "unknown", not as a failure.
func bucketPosture(ctx context.Context, client *s3.Client, bucket string, c *backupParams, r *result) {
	b := aws.String(bucket)
	versioning := "unknown"
	if out, err := client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}); err == nil {
		versioning = "off"
		if out.Status != "" {
			versioning = strings.ToLower(string(out.Status))
		}
		r.observe("versioning_enabled", boolf(out.Status == types.BucketVersioningStatusEnabled))
	} else {
		r.detail("versioning_error", awsclient.ErrorMessage(err))
	}
	r.detail("versioning", versioning)

	encryption := "unknown"
	out, err := client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b})
	switch {
	case err == nil && out.ServerSideEncryptionConfiguration != nil && len(out.ServerSideEncryptionConfiguration.Rules) > 0:
		encryption = "on"
		if d := out.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault; d != nil {
			encryption = string(d.SSEAlgorithm)
		}
		r.observe("encryption_enabled", 1)
	case err == nil || awsclient.ErrorCode(err) == "ServerSideEncryptionConfigurationNotFoundError":
		encryption = "off"
		r.observe("encryption_enabled", 0)
	default:
		r.detail("encryption_error", awsclient.ErrorMessage(err))
	}
	r.detail("encryption", encryption)

	replication := "unknown"
	rout, err := client.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: b})
	switch {
	case err == nil && rout.ReplicationConfiguration != nil && len(rout.ReplicationConfiguration.Rules) > 0:
		replication = "configured"
		r.observe("replication_configured", 1)
	case err == nil || awsclient.ErrorCode(err) == "ReplicationConfigurationNotFoundError":
		replication = "off"
		r.observe("replication_configured", 0)
	default:
		r.detail("replication_error", awsclient.ErrorMessage(err))
	}
	r.detail("replication", replication)

	if c.RequireVersioning && versioning != "enabled" {
		r.failf("bucket %s versioning is %s, require_versioning is set", bucket, versioning)
	}
	if c.RequireEncryption && (encryption == "off" || encryption == "unknown") {
		r.failf("bucket %s default encryption is %s, require_encryption is set", bucket, encryption)
	}
	if c.RequireReplication && replication != "configured" {
		r.failf("bucket %s replication is %s, require_replication is set", bucket, replication)
	}
}

// s3Client returns the cached client for t, creating it on first use with
// the default credential chain, the target's region and endpoint
// (path-style for S3-compatible stores), checksums only when required, and
// an HTTP client of its own set on the S3 options.
func (e Env) s3Client(ctx context.Context, t config.S3Target) (*s3.Client, error) {
	s := e.sharedOrNew()
	s.mu.Lock()
	client, ok := s.s3[t.Name]
	s.mu.Unlock()
	if ok {
		return client, nil
	}
	// Building a client reads files and the environment but does no
	// network I/O, so it runs outside the cache lock.
	client, err := awsclient.S3(ctx, t, &http.Client{Transport: newTransport()})
	if err != nil {
		return nil, err
	}
	return cached(e, func(s *shared) map[string]*s3.Client { return s.s3 }, t.Name,
		func() (*s3.Client, error) { return client, nil })
}
