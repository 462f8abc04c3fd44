package testharness

import (
	"context"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TCPProxy is a TCP proxy between a component and its server, run by
// toxiproxy as a library in the test process, to cut the path and restore
// it.
type TCPProxy struct {
	t     testing.TB
	proxy *toxiproxy.Proxy
	// Addr is the address (host:port) to connect to instead of the
	// server's.
	Addr string
}

// NewTCPProxy starts a proxy on a free local port forwarding to upstream
// (host:port), stopped when the test ends.
func NewTCPProxy(t testing.TB, name, upstream string) *TCPProxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("testharness: start proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &TCPProxy{t: t, proxy: p, Addr: p.Listen}
}

// cutToxics drop every byte in both directions and keep the connections
// open, as a network partition does; removing them closes the
// connections that were cut.
var cutToxics = []string{
	`{"name":"cut-up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`,
	`{"name":"cut-down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`,
}

// Cut partitions the path: nothing gets through either way until Restore.
func (p *TCPProxy) Cut() {
	p.t.Helper()
	for _, tox := range cutToxics {
		if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(tox)); err != nil {
			p.t.Fatalf("testharness: cut proxy %s: %v", p.proxy.Name, err)
		}
	}
}

// Restore heals the partition: the connections that were cut are closed,
// new ones get through.
func (p *TCPProxy) Restore() {
	p.t.Helper()
	for _, name := range []string{"cut-up", "cut-down"} {
		if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
			p.t.Fatalf("testharness: restore proxy %s: %v", p.proxy.Name, err)
		}
	}
}
