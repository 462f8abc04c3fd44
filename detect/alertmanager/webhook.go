// Package alertmanager decodes Alertmanager webhook notifications (payload
// version 4) into detections, one per alert.
package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
)

// Version is the webhook payload version drguard understands.
const Version = "4"

// Message is the body Alertmanager posts to a webhook receiver. It mirrors
// notify/webhook.Message without pulling in the notifier's dependencies.
type Message struct {
	*template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// ErrMalformed wraps every decoding and validation failure, so that callers
// can answer 400.
var ErrMalformed = errors.New("malformed webhook")

// Decode reads one webhook body and returns its alerts as detections.
// Every error wraps ErrMalformed and says what is wrong.
func Decode(r io.Reader) (*Message, []detect.Detection, error) {
	dec := json.NewDecoder(r)
	var msg Message
	if err := dec.Decode(&msg); err != nil {
		return nil, nil, fmt.Errorf("%w: invalid JSON: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	if msg.Version != Version {
		return nil, nil, fmt.Errorf("%w: unsupported version %q (want %q)", ErrMalformed, msg.Version, Version)
	}
	if msg.Data == nil || len(msg.Alerts) == 0 {
		return nil, nil, fmt.Errorf("%w: no alerts", ErrMalformed)
	}
	out := make([]detect.Detection, 0, len(msg.Alerts))
	for i, a := range msg.Alerts {
		d, err := toDetection(a)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: alerts[%d]: %v", ErrMalformed, i, err)
		}
		out = append(out, d)
	}
	return &msg, out, nil
}

func toDetection(a template.Alert) (detect.Detection, error) {
	status := detect.Status(a.Status)
	if status != detect.StatusFiring && status != detect.StatusResolved {
		return detect.Detection{}, fmt.Errorf("status %q is neither firing nor resolved", a.Status)
	}
	if len(a.Labels) == 0 {
		return detect.Detection{}, errors.New("no labels")
	}
	if a.StartsAt.IsZero() {
		return detect.Detection{}, errors.New("no startsAt")
	}
	fp := a.Fingerprint
	if fp == "" {
		fp = fingerprint(a.Labels)
	}
	return detect.Detection{
		Source:       detect.SourceAlertmanager,
		Fingerprint:  fp,
		Status:       status,
		StartsAt:     a.StartsAt.UTC(),
		EndsAt:       a.EndsAt.UTC(),
		Labels:       map[string]string(a.Labels),
		Annotations:  map[string]string(a.Annotations),
		GeneratorURL: a.GeneratorURL,
	}, nil
}

// fingerprint computes Alertmanager's fingerprint of a label set, for
// senders that omit it.
func fingerprint(kv template.KV) string {
	ls := make(model.LabelSet, len(kv))
	for k, v := range kv {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}
