package testharness

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

// AWS is a protocol-level fake of the AWS APIs drguard calls: RDS's query
// protocol (form-encoded Action=…, XML answers: DescribeDBInstances,
// PromoteReadReplica, RestoreDBInstanceToPointInTime) and Route 53's REST
// XML protocol (ChangeResourceRecordSets, GetChange, GetHostedZone). It
// records every request. RDS and Route 53 cannot run here; everything
// above the HTTP exchange (the SDK, its signing, retries and waiters) is
// real.
type AWS struct {
	// URL is the endpoint to put in an aws target's endpoint.
	URL string

	t           testing.TB
	mu          sync.Mutex
	requests    []AWSRequest
	instances   map[string]*AWSInstance
	zones       map[string]string // id → name
	throttle    map[string]int    // operation → throttling answers still to give
	broken      map[string]bool   // operation → always HTTP 500
	changePolls int               // GetChange calls that answer PENDING first
}

// AWSRequest is one request the fake received.
type AWSRequest struct {
	Op     string
	Form   url.Values
	Path   string
	RRSets AWSChangeBatch
}

// AWSChangeBatch is a ChangeResourceRecordSets body.
type AWSChangeBatch struct {
	Comment string `xml:"ChangeBatch>Comment"`
	Changes []struct {
		Action string   `xml:"Action"`
		Name   string   `xml:"ResourceRecordSet>Name"`
		Type   string   `xml:"ResourceRecordSet>Type"`
		TTL    int      `xml:"ResourceRecordSet>TTL"`
		Values []string `xml:"ResourceRecordSet>ResourceRecords>ResourceRecord>Value"`
	} `xml:"ChangeBatch>Changes>Change"`
}

// AWSInstance is a DB instance of the fake.
type AWSInstance struct {
	// Statuses are reported one per describe; the last repeats.
	Statuses []string
	// Source is the instance this one is a read replica of ("" for none).
	Source string
	// LatestRestorable is the latest time it can be restored to.
	LatestRestorable time.Time
	EndpointHost     string
}

// AWSFake starts the fake for t and points the SDK's default credential
// chain at the environment only (fixed test credentials, no shared files,
// no instance metadata).
func AWSFake(t testing.TB) *AWS {
	t.Helper()
	f := &AWS{t: t, instances: map[string]*AWSInstance{}, zones: map[string]string{}, throttle: map[string]int{}, broken: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDDRGUARDTEST", "AWS_SECRET_ACCESS_KEY": "drguard-test-secret",
		"AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CA_BUNDLE": "", "AWS_PROFILE": "", "AWS_SESSION_TOKEN": "",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_SESSION_TOKEN"} {
		os.Unsetenv(k)
	}
	return f
}

// Target returns an aws target named name served by the fake, with
// retries quick enough for tests.
func (f *AWS) Target(name, region string) config.AWSTarget {
	return config.AWSTarget{Name: name, Service: "fruitfulplanet", Region: region, Endpoint: f.URL,
		MaxAttempts: 3, MaxBackoff: model.Duration(20 * time.Millisecond)}
}

// AddInstance adds (or replaces) a DB instance.
func (f *AWS) AddInstance(id string, in AWSInstance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[id] = &in
}

// AddHostedZone adds a Route 53 hosted zone.
func (f *AWS) AddHostedZone(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zones[id] = name
}

// Throttle makes the next n calls of op answer Throttling.
func (f *AWS) Throttle(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle[op] = n
}

// Break makes every call of op answer HTTP 500.
func (f *AWS) Break(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken[op] = true
}

// PendingChanges makes the next n GetChange calls answer PENDING.
func (f *AWS) PendingChanges(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changePolls = n
}

// Calls returns the requests of operation op, in order.
func (f *AWS) Calls(op string) []AWSRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AWSRequest
	for _, r := range f.requests {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

const (
	rdsNS     = "http://rds.amazonaws.com/doc/2014-10-31/"
	route53NS = "https://route53.amazonaws.com/doc/2013-04-01/"
)

func (f *AWS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := AWSRequest{Path: r.URL.Path}
	route53 := strings.HasPrefix(r.URL.Path, "/2013-04-01/")
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case route53 && strings.HasSuffix(path, "/rrset"):
		req.Op = "ChangeResourceRecordSets"
		if err := xml.Unmarshal(body, &req.RRSets); err != nil {
			f.t.Errorf("route53 body: %v\n%s", err, body)
		}
	case route53 && strings.Contains(path, "/change/"):
		req.Op = "GetChange"
	case route53 && strings.HasPrefix(path, "/2013-04-01/hostedzone/") && r.Method == http.MethodGet:
		req.Op = "GetHostedZone"
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
	ns := rdsNS
	if route53 {
		ns = route53NS
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
	if route53 {
		f.serveRoute53(w, req)
		return
	}
	f.serveRDS(w, req)
}

// serveRDS answers an RDS call; f.mu is held.
func (f *AWS) serveRDS(w http.ResponseWriter, req AWSRequest) {
	switch req.Op {
	case "DescribeDBInstances":
		id := req.Form.Get("DBInstanceIdentifier")
		in, ok := f.instances[id]
		if !ok {
			noInstance(w, id)
			return
		}
		status := in.Statuses[0]
		if len(in.Statuses) > 1 {
			in.Statuses = in.Statuses[1:]
		}
		writeRDS(w, "DescribeDBInstances", "<DBInstances>"+instanceXML(id, status, in)+"</DBInstances>")
	case "PromoteReadReplica":
		id := req.Form.Get("DBInstanceIdentifier")
		in, ok := f.instances[id]
		if !ok {
			noInstance(w, id)
			return
		}
		in.Statuses, in.Source = []string{"modifying", "available"}, ""
		writeRDS(w, "PromoteReadReplica", instanceXML(id, "modifying", in))
	case "RestoreDBInstanceToPointInTime":
		id := req.Form.Get("TargetDBInstanceIdentifier")
		in := &AWSInstance{Statuses: []string{"creating", "creating", "backing-up", "available"}, EndpointHost: id + ".rds.example"}
		f.instances[id] = in
		writeRDS(w, "RestoreDBInstanceToPointInTime", instanceXML(id, "creating", in))
	default:
		writeAWSError(w, rdsNS, http.StatusBadRequest, "InvalidAction", "unexpected "+req.Op)
	}
}

// serveRoute53 answers a Route 53 call; f.mu is held.
func (f *AWS) serveRoute53(w http.ResponseWriter, req AWSRequest) {
	switch req.Op {
	case "ChangeResourceRecordSets":
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsResponse xmlns="%s"><ChangeInfo><Id>/change/C0FFEE</Id><Status>PENDING</Status><SubmittedAt>2026-03-01T12:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`, route53NS)
	case "GetChange":
		status := "INSYNC"
		if f.changePolls > 0 {
			f.changePolls--
			status = "PENDING"
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><GetChangeResponse xmlns="%s"><ChangeInfo><Id>/change/C0FFEE</Id><Status>%s</Status><SubmittedAt>2026-03-01T12:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>`, route53NS, status)
	case "GetHostedZone":
		id := strings.TrimPrefix(strings.TrimSuffix(req.Path, "/"), "/2013-04-01/hostedzone/")
		name, ok := f.zones[id]
		if !ok {
			writeAWSError(w, route53NS, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+id)
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><GetHostedZoneResponse xmlns="%s"><HostedZone><Id>/hostedzone/%s</Id><Name>%s</Name><CallerReference>drguard-test</CallerReference><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone></GetHostedZoneResponse>`, route53NS, id, name)
	default:
		writeAWSError(w, route53NS, http.StatusBadRequest, "InvalidInput", "unexpected "+req.Op)
	}
}

func instanceXML(id, status string, in *AWSInstance) string {
	x := fmt.Sprintf("<DBInstance><DBInstanceIdentifier>%s</DBInstanceIdentifier><DBInstanceStatus>%s</DBInstanceStatus>", id, status)
	if in.Source != "" {
		x += "<ReadReplicaSourceDBInstanceIdentifier>" + in.Source + "</ReadReplicaSourceDBInstanceIdentifier>"
	}
	if !in.LatestRestorable.IsZero() {
		x += "<LatestRestorableTime>" + in.LatestRestorable.UTC().Format(time.RFC3339) + "</LatestRestorableTime>"
	}
	if in.EndpointHost != "" {
		x += "<Endpoint><Address>" + in.EndpointHost + "</Address><Port>5432</Port></Endpoint>"
	}
	return x + "</DBInstance>"
}

// noInstance answers RDS's error for an unknown DB instance.
func noInstance(w http.ResponseWriter, id string) {
	writeAWSError(w, rdsNS, http.StatusNotFound, "DBInstanceNotFound", "DBInstance "+id+" not found.")
}

func writeRDS(w http.ResponseWriter, op, inner string) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%sResponse>`, op, rdsNS, op, inner, op, op)
}

func writeAWSError(w http.ResponseWriter, ns string, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-err</RequestId></ErrorResponse>`, ns, code, msg)
}
