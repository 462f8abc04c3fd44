package testharness

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestS3(t *testing.T) {
	srv := S3(t)
	srv.CreateBucket("backups")
	c := srv.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	put := func(key, body string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key),
			Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	put("db/fresh", "hello")
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("backups"), Key: aws.String("db/fresh")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("get = %q, want hello", b)
	}

	// Backdating: an object written with the clock 3 days back lists as 3 days old.
	old := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	srv.SetNow(old)
	put("db/old", "stale")
	srv.UseRealTime()
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("backups"), Prefix: aws.String("db/")})
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]time.Duration{}
	for _, o := range list.Contents {
		ages[*o.Key] = time.Since(*o.LastModified)
	}
	if len(ages) != 2 || ages["db/old"] < 71*time.Hour || ages["db/fresh"] > time.Minute {
		t.Fatalf("listed ages = %v", ages)
	}

	// A multipart upload whose second part fails (retries included).
	srv.FailUploadParts(1)
	defer srv.ClearFailures()
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("backups"), Key: aws.String("db/big")})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("x"), 5<<20)
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	up := func(n int32) (*s3.UploadPartOutput, error) {
		return c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("backups"), Key: aws.String("db/big"),
			UploadId: mp.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(part)}, noRetry)
	}
	p1, err := up(1)
	if err != nil {
		t.Fatalf("part 1: %v", err)
	}
	if _, err := up(2); err == nil {
		t.Fatal("part 2 succeeded; want injected 500")
	}
	srv.ClearFailures()
	p2, err := up(2)
	if err != nil {
		t.Fatalf("part 2 after ClearFailures: %v", err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("backups"),
		Key: aws.String("db/big"), UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{
			Parts: []types.CompletedPart{{ETag: p1.ETag, PartNumber: aws.Int32(1)}, {ETag: p2.ETag, PartNumber: aws.Int32(2)}}}})
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("backups"), Key: aws.String("db/big")})
	if err != nil || *head.ContentLength != int64(2*len(part)) {
		t.Fatalf("head big = %v, %v", head, err)
	}
}
