package backup

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// nullS3 speaks just enough of the S3 protocol for a backup (multipart and
// single uploads, HEAD, abort) and discards the bytes, like pg_dump's
// > /dev/null: the benchmark then measures drguard, not an S3 server
// sharing the same two CPUs.
type nullS3 struct {
	URL   string
	mu    sync.Mutex
	sizes map[string]int64 // object or upload → bytes received
}

func newNullS3(tb testing.TB) *nullS3 {
	n := &nullS3{sizes: map[string]int64{}}
	srv := httptest.NewServer(http.HandlerFunc(n.serve))
	tb.Cleanup(srv.Close)
	n.URL = srv.URL
	return n
}

func (n *nullS3) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := strings.TrimPrefix(r.URL.Path, "/")
	count := func(name string) int64 {
		c, _ := io.Copy(io.Discard, r.Body)
		n.mu.Lock()
		n.sizes[name] += c
		n.mu.Unlock()
		return c
	}
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		fmt.Fprintf(w, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, key, key)
	case r.Method == http.MethodPut && q.Has("partNumber"):
		count("upload:" + q.Get("uploadId"))
		w.Header().Set("ETag", `"`+q.Get("partNumber")+`"`)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		_, _ = io.Copy(io.Discard, r.Body)
		n.mu.Lock()
		n.sizes[key] = n.sizes["upload:"+q.Get("uploadId")]
		n.mu.Unlock()
		fmt.Fprintf(w, `<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>%s</Key><ETag>"x"</ETag></CompleteMultipartUploadResult>`, key)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut:
		n.mu.Lock()
		delete(n.sizes, key)
		n.mu.Unlock()
		count(key)
		w.Header().Set("ETag", `"x"`)
	case r.Method == http.MethodHead:
		n.mu.Lock()
		size, ok := n.sizes[key]
		n.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}
