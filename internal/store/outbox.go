package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// The outbox is separate from the records so that webhook intake, which
// must be durable before answering, never waits behind the engine's
// transactions: the embedded journal appends to its intake log
// (outboxlog.go), the PostgreSQL journal inserts into its outbox table.

// maxGroup bounds how many requests share one intake write.
const maxGroup = 256

type enqueueReq struct {
	alerts [][]byte // encoded before the commit loop takes the request
	errc   chan error
	// resent are the keys of the alerts the re-send index counts in
	// flight; settled marks them settled, under the index's lock.
	resent  []string
	settled bool
	// at is when the request's alerts were received: the re-send
	// index's clock (see receivedAt).
	at time.Time
}

// encodeBufs holds the buffers webhooks' alerts are encoded into.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// EnqueueAlerts appends alerts to the outbox and returns once they are
// durable. Concurrent callers are committed together with one write. Each
// alert's Seq is its position in the outbox, assigned in arrival order and
// filled in when the alert is read back.
//
// An alert identical to one the outbox made durable moments ago, save for
// its receive time, is not written again (outboxresend.go); when every
// alert of the call is such a re-send, EnqueueAlerts returns nil at once.
func (s *Store) EnqueueAlerts(ctx context.Context, alerts []Alert) error {
	if s.closed() {
		return ErrClosed
	}
	// One pooled buffer for the request's alerts, each record a slice of
	// it; the backend has copied them when submit returns.
	bp := encodeBufs.Get().(*[]byte)
	defer encodeBufs.Put(bp)
	buf := (*bp)[:0]
	ends := make([]int, 2*len(alerts))
	for i := range alerts {
		var recv int
		buf, recv = appendAlertSplit(buf, &alerts[i])
		ends[2*i], ends[2*i+1] = recv, len(buf)
	}
	*bp = buf
	ras := make([]resendAlert, len(alerts))
	recs := make([][]byte, len(alerts))
	start := 0
	for i := range alerts {
		recv, end := ends[2*i], ends[2*i+1]
		recs[i] = buf[start:end:end]
		ras[i] = resendAlert{key: resendKey(&alerts[i]), head: buf[start:recv], tail: buf[recv+timeLen(buf[recv]) : end]}
		start = end
	}
	at := receivedAt(alerts)
	write, tracked := s.resends.admit(ras, at)
	if write == nil {
		return nil
	}
	req := &enqueueReq{alerts: recs[:0], errc: make(chan error, 1), resent: tracked, at: at}
	for i, w := range write {
		if w {
			req.alerts = append(req.alerts, recs[i])
		}
	}
	// Whatever submit returns, the commit loop is done with the records:
	// it either wrote them, or never took the request.
	return s.submit(ctx, req)
}

// TrimOutbox asks the commit loop to delete what acknowledged alerts left
// behind. Intake commits trim as they go; the engine calls this when it
// has caught up, so that an idle outbox is emptied too.
func (s *Store) TrimOutbox(ctx context.Context) error {
	return s.submit(ctx, &enqueueReq{errc: make(chan error, 1)})
}

func (s *Store) submit(ctx context.Context, req *enqueueReq) error {
	err := s.submitOnce(ctx, req)
	// A request the commit loop never took has written nothing.
	s.resends.settle(req, false, time.Time{})
	return err
}

func (s *Store) submitOnce(ctx context.Context, req *enqueueReq) error {
	if s.closed() {
		return ErrClosed
	}
	select {
	case s.enqueue <- req:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the request is committed or failed by the loop; wait for
	// the verdict even if ctx ends, so that a 200 is never lost nor an
	// alert committed after its caller was told it failed. A request that
	// slipped in after the loop stopped was never committed.
	select {
	case err := <-req.errc:
		return err
	case <-s.loopDone:
		select {
		case err := <-req.errc:
			return err
		default:
			return ErrClosed
		}
	}
}

// commitTimeout bounds one group's durable write, so that a journal that
// stops answering fails intake (503, Alertmanager retries) instead of
// holding every webhook.
const commitTimeout = 10 * time.Second

// commitLoop takes the requests queued while the previous group was being
// written and writes them as one group. The backend says how many loops
// run at once: several overlap their groups' round trips to PostgreSQL.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*enqueueReq, 0, maxGroup)
	var payloads [][]byte
	for {
		batch, payloads = batch[:0], payloads[:0]
		select {
		case req := <-s.enqueue:
			batch = append(batch, req)
		case <-s.done:
			s.drainClosed()
			return
		}
	fill:
		for len(batch) < maxGroup {
			select {
			case req := <-s.enqueue:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		for _, req := range batch {
			payloads = append(payloads, req.alerts...)
		}
		var err error
		if len(payloads) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			err = s.b.appendAlerts(ctx, payloads)
			cancel()
		}
		// Acknowledged segments left behind cost disk, not correctness:
		// a failed deletion fails only a request that asked for nothing
		// else, and the next commit retries it.
		if terr := s.b.trimOutbox(); len(payloads) == 0 {
			err = terr
		}
		for _, req := range batch {
			// Before the answer, so that a re-send sent after it is
			// compared with what this group wrote.
			s.resends.settle(req, err == nil, req.at)
			req.errc <- err
		}
	}
}

// drainClosed fails requests queued after Close began.
func (s *Store) drainClosed() {
	for {
		select {
		case req := <-s.enqueue:
			s.resends.settle(req, false, time.Time{})
			req.errc <- ErrClosed
		default:
			return
		}
	}
}

// PendingAlerts returns up to limit (0: all) unacknowledged alerts in
// sequence order.
func (s *Store) PendingAlerts(limit int) ([]Alert, error) {
	if s.closed() {
		return nil, ErrClosed
	}
	raws, err := s.b.pendingAlerts(limit)
	if err != nil {
		return nil, err
	}
	out := make([]Alert, len(raws))
	for i, raw := range raws {
		a, err := decodeAlert(raw.payload)
		if err != nil {
			return nil, fmt.Errorf("decode outbox alert %d: %w", raw.seq, err)
		}
		a.Seq = raw.seq
		out[i] = a
	}
	return out, nil
}

// AckAlert marks an outbox alert as processed. Do it in the transaction
// that records the alert's effects: the acknowledgement and the effects
// become durable together, so an alert is processed exactly once across
// crashes. Acknowledge every alert processed, one by one. A repeat within
// the transaction is harmless; an alert that another transaction already
// acknowledged fails with ErrAlreadyAcked.
func (t *Tx) AckAlert(seq uint64) error {
	return t.kv.ackAlert(seq)
}

// DeadLetter moves an outbox alert that cannot be processed into the
// journal's dead-letter bucket, with the reason, and acknowledges it.
// A missing or already acknowledged alert is ErrNotFound.
func (t *Tx) DeadLetter(seq uint64, reason string) error {
	raw, err := t.kv.outboxAlert(seq)
	if err != nil {
		return err
	}
	// The alert is kept as JSON, readable whatever the outbox encoding.
	a, derr := decodeAlert(raw)
	a.Seq = seq
	var alert any = a
	if derr != nil {
		alert = map[string]string{"undecodable": fmt.Sprintf("%x", raw), "error": derr.Error()}
	}
	rec, err := json.Marshal(struct {
		Alert  any       `json:"alert"`
		Reason string    `json:"reason"`
		Time   time.Time `json:"time"`
	}{alert, reason, time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := t.kv.put(bucketDeadLetter, u64(seq), rec); err != nil {
		return err
	}
	return t.AckAlert(seq)
}

// DeadLetters counts the alerts in the dead-letter bucket.
func (t *Tx) DeadLetters() int {
	n, _ := t.kv.count(bucketDeadLetter)
	return n
}
