package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/fruitfulplanet/drguard/internal/awsclient"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// S3ClientFunc returns the client for an s3 target. Tests and embedders may
// supply their own; the default is NewS3Client.
type S3ClientFunc func(ctx context.Context, t config.S3Target) (*s3.Client, error)

// NewS3Client builds a client for t (see awsclient.New).
func NewS3Client(ctx context.Context, t config.S3Target) (*s3.Client, error) {
	return awsclient.S3(ctx, t, nil)
}

// objectStore is a bucket and prefix, with the few calls backups need.
type objectStore struct {
	client *s3.Client
	bucket string
	prefix string // the s3 target's prefix plus "<backup name>/"
}

// url names an object for messages.
func (o *objectStore) url(key string) string { return "s3://" + o.bucket + "/" + key }

// upload streams body to key as a multipart upload (a single PUT when it
// fits in one part). On failure the multipart upload is aborted, so no
// partial object remains.
func (o *objectStore) upload(ctx context.Context, key string, body io.Reader, partSize int64, concurrency int, sse, kmsKey string) error {
	// The transfer manager's uploader streams a non-seekable body as a
	// multipart upload with bounded memory (part size × concurrency).
	//lint:ignore SA1019 its successor, feature/s3/transfermanager, is not yet a stable module; this one is maintained.
	up := manager.NewUploader(o.client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = concurrency
		u.LeavePartsOnError = false
		u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		// Parts are sent unsigned, as the SDK already does over HTTPS:
		// hashing every part for the signature would be a second SHA-256
		// pass over the stream, and the AEAD authenticates every byte.
		u.ClientOptions = append(u.ClientOptions, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	})
	in := &s3.PutObjectInput{
		Bucket: aws.String(o.bucket), Key: aws.String(key), Body: body,
		ContentType: aws.String("application/octet-stream"),
	}
	setSSE(in, sse, kmsKey)
	//lint:ignore SA1019 see NewUploader above.
	if _, err := up.Upload(ctx, in); err != nil {
		return fmt.Errorf("upload %s: %s", o.url(key), awsclient.ErrorMessage(err))
	}
	return nil
}

// setSSE asks for server-side encryption.
func setSSE(in *s3.PutObjectInput, sse, kmsKey string) {
	switch sse {
	case config.SSEAES256:
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	case config.SSEKMS:
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		if kmsKey != "" {
			in.SSEKMSKeyId = aws.String(kmsKey)
		}
	}
}

// put writes a small object.
func (o *objectStore) put(ctx context.Context, key string, data []byte, sse, kmsKey string) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(o.bucket), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentType: aws.String("application/json"), ContentLength: aws.Int64(int64(len(data))),
	}
	setSSE(in, sse, kmsKey)
	if _, err := o.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("write %s: %s", o.url(key), awsclient.ErrorMessage(err))
	}
	return nil
}

// get opens an object for reading.
func (o *objectStore) get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %s", o.url(key), awsclient.ErrorMessage(err))
	}
	return out.Body, aws.ToInt64(out.ContentLength), nil
}

// size returns an object's length.
func (o *objectStore) size(ctx context.Context, key string) (int64, error) {
	out, err := o.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("stat %s: %s", o.url(key), awsclient.ErrorMessage(err))
	}
	return aws.ToInt64(out.ContentLength), nil
}

// list returns every object under the store's prefix.
func (o *objectStore) list(ctx context.Context) ([]types.Object, error) {
	var out []types.Object
	pages := s3.NewListObjectsV2Paginator(o.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(o.bucket), Prefix: aws.String(o.prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %s", o.url(o.prefix), awsclient.ErrorMessage(err))
		}
		out = append(out, page.Contents...)
	}
	return out, nil
}

// remove deletes an object; a missing one is not an error.
func (o *objectStore) remove(ctx context.Context, key string) error {
	_, err := o.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key)})
	if err != nil && awsclient.ErrorCode(err) != "NoSuchKey" {
		return fmt.Errorf("delete %s: %s", o.url(key), awsclient.ErrorMessage(err))
	}
	return nil
}
