package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Records of high availability and dead-man detection: the state of each
// watchdog, the index of firing detections that corroboration reads, and
// the policy runs waiting for corroboration.

var (
	bucketWatchdogs = []byte("watchdogs")
	// bucketFiring indexes the incidents whose alert is firing, by ID, so
	// that corroboration need not scan every incident ever journaled.
	bucketFiring = []byte("firing")
	// bucketAwaiting holds the policy runs that wait for corroboration,
	// by policy and incident.
	bucketAwaiting = []byte("awaiting")
)

func init() { allBuckets = append(allBuckets, bucketWatchdogs, bucketFiring, bucketAwaiting) }

// LeaseHeldError is ErrLeaseHeld with who holds the lease and for how much
// longer, by the journal database's clock.
type LeaseHeldError struct {
	Name, Holder string
	Epoch        uint64
	Expires      time.Time
	// Remaining is how long the lease has to run when it was read.
	Remaining time.Duration
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("%v: %q holds lease %q (epoch %d) until %s", ErrLeaseHeld, e.Holder, e.Name, e.Epoch, e.Expires.UTC().Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrLeaseHeld) true.
func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

// WatchdogState is what the journal knows of one watchdog.
type WatchdogState struct {
	Name string `json:"name"`
	// Since is when drguard began expecting the watchdog; a watchdog never
	// seen counts as missing from then.
	Since time.Time `json:"since,omitzero"`
	// LastSeen is when its newest firing notification was received.
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// Notifications counts the notifications received.
	Notifications int64 `json:"notifications,omitempty"`
	// Missing is the start of the open detection that says it is missing;
	// zero when there is none.
	Missing time.Time `json:"missing,omitzero"`
}

// Watchdog returns the state of the named watchdog; one never journaled
// is returned with its name and zero times.
func (t *Tx) Watchdog(name string) (WatchdogState, error) {
	var w WatchdogState
	err := t.get(bucketWatchdogs, name, &w)
	if errors.Is(err, ErrNotFound) {
		return WatchdogState{Name: name}, nil
	}
	return w, err
}

// PutWatchdog writes a watchdog's state.
func (t *Tx) PutWatchdog(w WatchdogState) error {
	if w.Name == "" {
		return errors.New("watchdog state without a name")
	}
	return t.put(bucketWatchdogs, []byte(w.Name), w)
}

// FiringDetection is an incident whose alert is firing, as corroboration
// sees it.
type FiringDetection struct {
	IncidentID string            `json:"incidentId"`
	Labels     map[string]string `json:"labels"`
	// StartsAt is when the condition began, as its source says (the
	// incident's first sighting when the source gave none).
	StartsAt time.Time `json:"startsAt"`
}

// PutFiring indexes a firing incident.
func (t *Tx) PutFiring(d FiringDetection) error {
	return t.put(bucketFiring, []byte(d.IncidentID), d)
}

// DeleteFiring removes an incident from the firing index; one not in it
// is no error.
func (t *Tx) DeleteFiring(incidentID string) error {
	return t.kv.del(bucketFiring, []byte(incidentID))
}

// ForEachFiring visits the firing incidents in ID order.
func (t *Tx) ForEachFiring(fn func(FiringDetection) error) error {
	return forEach(t, bucketFiring, fn)
}

// Awaiting is a policy's run that waits for corroboration of an incident.
type Awaiting struct {
	Policy     string    `json:"policy"`
	IncidentID string    `json:"incidentId"`
	Since      time.Time `json:"since"`
	// Until is when the wait ends without a run.
	Until time.Time `json:"until"`
}

func awaitingKey(policy, incidentID string) []byte {
	k, _ := json.Marshal([2]string{incidentID, policy})
	return k
}

// PutAwaiting records a wait for corroboration.
func (t *Tx) PutAwaiting(a Awaiting) error {
	return t.put(bucketAwaiting, awaitingKey(a.Policy, a.IncidentID), a)
}

// DeleteAwaiting ends a wait; one not recorded is no error.
func (t *Tx) DeleteAwaiting(policy, incidentID string) error {
	return t.kv.del(bucketAwaiting, awaitingKey(policy, incidentID))
}

// ForEachAwaiting visits the waits, by incident and policy.
func (t *Tx) ForEachAwaiting(fn func(Awaiting) error) error {
	return forEach(t, bucketAwaiting, fn)
}
