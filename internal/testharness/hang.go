package testharness

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// HangingServer is a TCP server that accepts connections and never
// answers: it reads and discards what it is sent and writes nothing, as a
// dependency that hangs does (an S3 endpoint stuck behind a load balancer,
// an SMTP relay that never greets). Connections stay open until the test
// ends.
type HangingServer struct {
	// Addr is host:port.
	Addr     string
	accepted atomic.Int64
}

// NewHangingServer listens on 127.0.0.1 until the test ends.
func NewHangingServer(t testing.TB) *HangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &HangingServer{Addr: ln.Addr().String()}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return h
}

// Accepted is how many connections the server has accepted.
func (h *HangingServer) Accepted() int { return int(h.accepted.Load()) }
