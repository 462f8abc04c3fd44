package store

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestOpenReadOnly: an offline reader is refused, with ErrLocked, while a
// writer holds the journal; once the writer has closed it, the reader
// sees what was written, several readers share it, and nothing can be
// written through a read-only journal.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := Incident{Key: "k", State: IncidentOpen}
	if err := w.Update(func(tx *Tx) error { return tx.PutIncident(&in) }); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(dir, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenReadOnly while a writer holds the journal = %v, want ErrLocked", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r1, err := OpenReadOnly(dir, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := OpenReadOnly(dir, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	defer r2.Close()
	err = r2.View(func(tx *Tx) error {
		got, err := tx.Incident(in.ID)
		if err == nil && got.Key != "k" {
			t.Errorf("read incident %+v", got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"update": func() error { return r1.Update(func(tx *Tx) error { return tx.PutIncident(&Incident{Key: "x"}) }) },
		"enqueue": func() error {
			return r1.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: "f", Status: "firing"}})
		},
	} {
		if err := write(); err == nil {
			t.Errorf("%s through a read-only journal succeeded", name)
		}
	}
	if _, err := OpenReadOnly(t.TempDir(), 100*time.Millisecond); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly of an empty directory = %v, want not exist", err)
	}
}
