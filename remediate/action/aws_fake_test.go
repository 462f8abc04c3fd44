package action

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// fakeAWS speaks the RDS query protocol (form-encoded Action=…, XML
// answers) and Route 53's REST XML protocol for the calls drguard makes,
// and records every request.
type fakeAWS struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	requests  []awsRequest
	instances map[string]*fakeInstance
	throttle  map[string]int  // operation → throttling answers still to give
	broken    map[string]bool // operation → always HTTP 500
	// changePolls is how many GetChange calls answer PENDING first.
	changePolls int
}

type awsRequest struct {
	Op     string
	Form   url.Values
	Path   string
	RRSets changeBatch
}

type fakeInstance struct {
	status       []string // statuses to report, one per describe; the last repeats
	source       string
	latest       time.Time
	endpointHost string
}

func newFakeAWS(t *testing.T) *fakeAWS {
	f := &fakeAWS{t: t, instances: map[string]*fakeInstance{}, throttle: map[string]int{}, broken: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	// Credentials from the default chain: the environment, nothing else.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDDRGUARDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "drguard-test-secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CA_BUNDLE", "")
	os.Unsetenv("AWS_CA_BUNDLE")
	t.Setenv("AWS_PROFILE", "")
	os.Unsetenv("AWS_PROFILE")
	return f
}

// config is a configuration with one aws target served by f.
func (f *fakeAWS) config() *config.Config {
	return &config.Config{Targets: config.Targets{AWS: []config.AWSTarget{{
		Name: "aws-dr", Service: "fruitfulplanet", Region: "eu-west-1", Endpoint: f.srv.URL,
		MaxAttempts: 3, MaxBackoff: model.Duration(20 * time.Millisecond),
	}}}}
}

func (f *fakeAWS) calls(op string) []awsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []awsRequest
	for _, r := range f.requests {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

type changeBatch struct {
	Comment string `xml:"ChangeBatch>Comment"`
	Changes []struct {
		Action string   `xml:"Action"`
		Name   string   `xml:"ResourceRecordSet>Name"`
		Type   string   `xml:"ResourceRecordSet>Type"`
		TTL    int      `xml:"ResourceRecordSet>TTL"`
		Values []string `xml:"ResourceRecordSet>ResourceRecords>ResourceRecord>Value"`
	} `xml:"ChangeBatch>Changes>Change"`
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := awsRequest{Path: r.URL.Path}
	route53 := strings.HasPrefix(r.URL.Path, "/2013-04-01/")
	switch {
	case route53 && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/rrset"):
		req.Op = "ChangeResourceRecordSets"
		if err := xml.Unmarshal(body, &req.RRSets); err != nil {
			f.t.Errorf("route53 body: %v\n%s", err, body)
		}
	case route53 && strings.Contains(r.URL.Path, "/change/"):
		req.Op = "GetChange"
	case route53:
		req.Op = "Route53?" + r.URL.Path
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			f.t.Errorf("rds body: %v", err)
		}
		req.Form, req.Op = form, form.Get("Action")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	ns := "http://rds.amazonaws.com/doc/2014-10-31/"
	if route53 {
		ns = "https://route53.amazonaws.com/doc/2013-04-01/"
	}
	if f.broken[req.Op] {
		writeAWSError(w, ns, http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error.")
		return
	}
	if f.throttle[req.Op] > 0 {
		f.throttle[req.Op]--
		writeAWSError(w, ns, http.StatusBadRequest, "Throttling", "Rate exceeded")
		return
	}
	switch req.Op {
	case "DescribeDBInstances":
		id := req.Form.Get("DBInstanceIdentifier")
		in, ok := f.instances[id]
		if !ok {
			writeAWSError(w, ns, http.StatusNotFound, "DBInstanceNotFound", "DBInstance "+id+" not found.")
			return
		}
		status := in.status[0]
		if len(in.status) > 1 {
			in.status = in.status[1:]
		}
		writeRDS(w, "DescribeDBInstances", "<DBInstances>"+instanceXML(id, status, in)+"</DBInstances>")
	case "PromoteReadReplica":
		id := req.Form.Get("DBInstanceIdentifier")
		in := f.instances[id]
		in.status, in.source = []string{"modifying", "available"}, ""
		writeRDS(w, "PromoteReadReplica", instanceXML(id, "modifying", in))
	case "RestoreDBInstanceToPointInTime":
		id := req.Form.Get("TargetDBInstanceIdentifier")
		in := &fakeInstance{status: []string{"creating", "creating", "backing-up", "available"}, endpointHost: id + ".rds.example"}
		f.instances[id] = in
		writeRDS(w, "RestoreDBInstanceToPointInTime", instanceXML(id, "creating", in))
	case "ChangeResourceRecordSets":
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsResponse xmlns="%s"><ChangeInfo><Id>/change/C0FFEE</Id><Status>PENDING</Status><SubmittedAt>2026-03-01T12:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`, ns)
	case "GetChange":
		status := "INSYNC"
		if f.changePolls > 0 {
			f.changePolls--
			status = "PENDING"
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><GetChangeResponse xmlns="%s"><ChangeInfo><Id>/change/C0FFEE</Id><Status>%s</Status><SubmittedAt>2026-03-01T12:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>`, ns, status)
	default:
		writeAWSError(w, ns, http.StatusBadRequest, "InvalidAction", "unexpected "+req.Op)
	}
}

func instanceXML(id, status string, in *fakeInstance) string {
	x := fmt.Sprintf("<DBInstance><DBInstanceIdentifier>%s</DBInstanceIdentifier><DBInstanceStatus>%s</DBInstanceStatus>", id, status)
	if in.source != "" {
		x += "<ReadReplicaSourceDBInstanceIdentifier>" + in.source + "</ReadReplicaSourceDBInstanceIdentifier>"
	}
	if !in.latest.IsZero() {
		x += "<LatestRestorableTime>" + in.latest.UTC().Format(time.RFC3339) + "</LatestRestorableTime>"
	}
	if in.endpointHost != "" {
		x += "<Endpoint><Address>" + in.endpointHost + "</Address><Port>5432</Port></Endpoint>"
	}
	return x + "</DBInstance>"
}

func writeRDS(w http.ResponseWriter, op, inner string) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><%sResult>%s</%sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%sResponse>`, op, op, inner, op, op)
}

func writeAWSError(w http.ResponseWriter, ns string, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-err</RequestId></ErrorResponse>`, ns, code, msg)
}
