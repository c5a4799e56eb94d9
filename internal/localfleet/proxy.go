package localfleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// proxy is a broker's client-facing Kafka listener. While the broker runs it
// accepts connections and relays them to kfake; while it is stopped the
// port is closed, so clients get "connection refused" as from a dead host.
type proxy struct {
	c      *cluster
	broker int32
	log    zerolog.Logger

	mu       sync.Mutex
	fixedAt  int // the port; chosen at the first open when configured as 0
	ln       net.Listener
	conns    map[*session]struct{}
	sessions sync.WaitGroup

	// quota is the broker's byte-rate quota sensors (quota_enforce.go).
	quota quotaManager
}

func newProxy(c *cluster, broker int32, port int) *proxy {
	return &proxy{
		c:       c,
		broker:  broker,
		log:     c.log.With().Int32("broker", broker).Str("component", "proxy").Logger(),
		fixedAt: port,
		conns:   map[*session]struct{}{},
	}
}

func (p *proxy) port() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fixedAt
}

func (p *proxy) addr() string { return net.JoinHostPort(proxyHost, strconv.Itoa(p.port())) }

// listenKeepingPort listens on *port (0: a free one) and keeps the port it
// got there, so that a node started again listens where it did, as a real
// broker or controller keeps its listener address.
//
// A free port is taken below the kernel's ephemeral range: while a node is
// down its port is unbound, and a port from that range is soon handed to
// some client's outgoing connection or another ":0" listener (seen when
// the tests ran in parallel: "bind: address already in use" at a crashed
// broker's restart).
func listenKeepingPort(port *int) (net.Listener, error) {
	if *port == 0 {
		for range freePortTries {
			p := freePortLow + rand.IntN(freePortHigh-freePortLow)
			if ln, err := net.Listen("tcp", net.JoinHostPort(proxyHost, strconv.Itoa(p))); err == nil {
				*port = p
				return ln, nil
			}
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(proxyHost, strconv.Itoa(*port)))
	if err != nil {
		return nil, err
	}
	*port = ln.Addr().(*net.TCPAddr).Port
	return ln, nil
}

// Free ports for nodes come from [freePortLow, freePortHigh): below Linux's
// ephemeral range (32768 on), above the ports `make run` fixes (19092 on).
const (
	freePortLow   = 20000
	freePortHigh  = 32768
	freePortTries = 50
)

// open starts listening on the broker's port (the same one across
// restarts, as a real broker keeps its listener address).
func (p *proxy) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := listenKeepingPort(&p.fixedAt)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: listen: %w", p.c.id, p.broker, err)
	}
	p.ln = ln
	p.sessions.Add(1)
	go p.accept(ln)
	return nil
}

// close stops listening, drops every client connection and waits for their
// goroutines. Safe to call when closed.
func (p *proxy) close() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	for s := range p.conns {
		s.shutdown()
	}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.sessions.Wait()
	// The process that measured its clients' rates is gone.
	p.quota.reset()
}

func (p *proxy) accept(ln net.Listener) {
	defer p.sessions.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed by p.close
		}
		p.mu.Lock()
		if p.ln != ln { // closed between Accept and here
			p.mu.Unlock()
			_ = conn.Close()
			return
		}
		s := &session{p: p, client: conn, upstream: map[int32]net.Conn{}, done: make(chan struct{})}
		p.conns[s] = struct{}{}
		p.sessions.Add(1) // legal: this goroutine's own count keeps the group non-zero
		p.mu.Unlock()
		go p.serve(s)
	}
}

// session is one client connection and its connection to kfake (one node,
// so one connection, which carries the client's SASL authentication).
// Requests are handled one at a time: read, forward, read the response,
// rewrite it if the model must, write it back. Kafka guarantees responses
// in request order per connection, and this keeps it trivially true.
type session struct {
	p      *proxy
	client net.Conn

	// mechanism and user are the SASL mechanism and the user the client
	// authenticates as (quotas.go), for the audit. Owned by the serve
	// goroutine.
	mechanism, user string
	// mutedUntil is when a client over its quota may be read from again
	// (quota_enforce.go). Owned by the serve goroutine.
	mutedUntil time.Time

	mu       sync.Mutex
	closed   bool
	done     chan struct{}      // closed at shutdown; ends a mute
	upstream map[int32]net.Conn // by kfake node
}

// shutdown closes the client connection and the kfake connections, which
// unblocks the session wherever it waits (a fetch can wait seconds).
func (s *session) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	_ = s.client.Close()
	for _, up := range s.upstream {
		_ = up.Close()
	}
}

func (p *proxy) serve(s *session) {
	conn := s.client
	defer func() {
		s.shutdown()
		p.mu.Lock()
		delete(p.conns, s)
		p.mu.Unlock()
		p.sessions.Done()
	}()
	r := bufio.NewReader(conn)
	for {
		frame, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug().Err(err).Msg("client connection ended")
			}
			return
		}
		out, err := s.handle(frame)
		if err != nil {
			p.log.Debug().Err(err).Msg("dropping client connection")
			return
		}
		// out is nil for an acks=0 produce: Kafka sends no response.
		if out != nil {
			if err := writeFrame(conn, out); err != nil {
				return
			}
		}
		// A client over its quota is muted: nothing more is read from
		// it until its throttle time has passed.
		if !s.sitOutMute() {
			return
		}
	}
}

func (s *session) handle(frame []byte) ([]byte, error) {
	req, err := parseRequest(frame)
	if err != nil {
		return nil, err
	}
	c := s.p.c
	if isAdminRequest(req.key) {
		// Controller load (storm.go).
		done, ok := s.enterAdmin()
		if !ok {
			return nil, net.ErrClosed
		}
		defer done()
	}
	if isMetadataChange(req.key) {
		defer c.metadataChanged() // dual-write (migration_dualwrite.go)
	}
	if c.kraftAnswers() {
		// KRaft APIs kfake has none of (kraft_api.go).
		if out, ok, err := s.answerKRaft(req); ok {
			return out, err
		}
	}
	switch kmsg.Key(req.key) {
	case kmsg.SASLAuthenticate:
		// kfake drops a failed authentication; Kafka answers it
		// (sasl_failure.go).
		return s.authenticate(req)
	case kmsg.ElectLeaders:
		// kfake answers success without electing; the model decides.
		return c.answerElectLeaders(req)
	case kmsg.DescribeLogDirs:
		// kfake lists every partition on every broker.
		return c.answerDescribeLogDirs(req, s.p.broker)
	case kmsg.AlterPartitionAssignments:
		// kfake answers success and moves nothing.
		return c.answerAlterPartitionAssignments(req, s.who())
	case kmsg.ListPartitionReassignments:
		return c.answerListPartitionReassignments(req)
	case kmsg.CreateTopics:
		// kfake stores one replica; the model keeps the requested ones.
		// KIP-599 quotas first (mutation_quota_proxy.go).
		return s.createTopicsQuota(req)
	case kmsg.CreatePartitions:
		return s.createPartitionsQuota(req)
	case kmsg.AlterClientQuotas:
		// kfake stores quotas; the brokers enforce the byte-rate ones.
		return s.alterClientQuotas(req)
	case kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs:
		// Replication throttles go to the model, the rest to kfake
		// (throttle_configs.go).
		return s.alterConfigs(req)
	case kmsg.DescribeConfigs:
		// kfake knows one broker, node 0; clients name broker ids.
		names, err := toKfakeBrokerResources(req, func(id int32) bool { _, err := c.broker(id); return err == nil })
		if err != nil {
			return nil, err
		}
		resp, err := s.roundTrip(req, true)
		if err != nil {
			return nil, err
		}
		if resp, err = restoreBrokerResources(req, resp, names); err != nil {
			return nil, err
		}
		// kfake knows none of a ZooKeeper broker's settings nor the
		// replication throttles: the model answers them.
		return c.amendDescribeConfigs(req, resp, c.serverPropertiesOf, c.throttlesOf)
	case kmsg.DeleteTopics:
		// A deleted topic leaves the model at once, its throttles and
		// reassignments with it.
		return s.deleteTopicsQuota(req)
	}

	expectResponse := true
	if req.kreq != nil {
		switch kmsg.Key(req.key) {
		case kmsg.ApiVersions:
			if req.version >= 5 {
				// KIP-1242: the client names the broker it expects; kfake
				// checks it against its own node id.
				if err := toKfakeNodeID(req, s.p.broker); err != nil {
					return nil, err
				}
				if err := c.toKfakeClusterID(req); err != nil { // migration_zk.go
					return nil, err
				}
			}
		case kmsg.SASLHandshake, kmsg.SASLAuthenticate:
			s.observeSASL(req)
		case kmsg.Produce:
			kreq, err := req.decode()
			if err != nil {
				return nil, err
			}
			produce := kreq.(*kmsg.ProduceRequest)
			expectResponse = produce.Acks != 0
			c.recordProduced(produce)
		case kmsg.Fetch:
			if err := s.limitFetch(req); err != nil {
				return nil, err
			}
		}
	}

	resp, err := s.roundTrip(req, expectResponse)
	if err != nil {
		return nil, err
	}
	if req.kreq != nil {
		// Byte-rate quotas (quota_enforce.go).
		switch kmsg.Key(req.key) {
		case kmsg.Produce:
			return s.meterProduce(req, resp)
		case kmsg.Fetch:
			return s.meterFetch(req, resp)
		}
	}
	if !expectResponse {
		return nil, nil
	}
	return c.rewriteResponseFor(req, resp, s.p.broker)
}

// toKfakeNodeID rewrites the broker id an ApiVersions request names into
// kfake's node id when it names the broker the client reached. A client
// that reached the wrong broker names another node, and kfake answers
// REBOOTSTRAP_REQUIRED as Kafka does.
func toKfakeNodeID(req *request, broker int32) error {
	kreq, err := req.decode()
	if err != nil {
		return err
	}
	av := kreq.(*kmsg.ApiVersionsRequest)
	if av.NodeID < 0 {
		return nil
	}
	if av.NodeID == broker {
		av.NodeID = kfakeNode
	} else {
		av.NodeID = kfakeNode + 1 // no such kfake node
	}
	req.reencode(av)
	return nil
}

// upstreamDialTimeout bounds connecting to a kfake node on loopback.
const upstreamDialTimeout = 5 * time.Second

// roundTrip forwards the request frame verbatim to kfake and returns the
// response frame (nil when none is expected).
func (s *session) roundTrip(req *request, expectResponse bool) ([]byte, error) {
	node := kfakeNode
	up, err := s.upstreamConn(node)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(up, req.frame); err != nil {
		return nil, fmt.Errorf("forward %s to kfake node %d: %w", kmsg.NameForKey(req.key), node, err)
	}
	if !expectResponse {
		return nil, nil
	}
	resp, err := readFrame(up)
	if err != nil {
		return nil, fmt.Errorf("read %s response from kfake node %d: %w", kmsg.NameForKey(req.key), node, err)
	}
	return resp, nil
}

func (s *session) upstreamConn(node int32) (net.Conn, error) {
	s.mu.Lock()
	up, ok := s.upstream[node]
	s.mu.Unlock()
	if ok {
		return up, nil
	}
	c := s.p.c
	if node < 0 || int(node) >= len(c.kfAddrs) {
		return nil, fmt.Errorf("no kfake node %d", node)
	}
	ctx, cancel := context.WithTimeout(c.life, upstreamDialTimeout)
	defer cancel()
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", c.kfAddrs[node])
	if err != nil {
		return nil, fmt.Errorf("dial kfake node %d: %w", node, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = up.Close()
		return nil, net.ErrClosed
	}
	s.upstream[node] = up
	return up, nil
}
