package localfleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

// open starts listening on the broker's port (the same one across
// restarts, as a real broker keeps its listener address).
func (p *proxy) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(proxyHost, strconv.Itoa(p.fixedAt)))
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: listen: %w", p.c.id, p.broker, err)
	}
	p.fixedAt = ln.Addr().(*net.TCPAddr).Port
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
		s := &session{p: p, client: conn, upstream: map[int32]net.Conn{}}
		p.conns[s] = struct{}{}
		p.sessions.Add(1) // legal: this goroutine's own count keeps the group non-zero
		p.mu.Unlock()
		go p.serve(s)
	}
}

// session is one client connection and its connections to kfake nodes.
// Requests are handled one at a time: read, forward, read the response,
// rewrite it if the model must, write it back. Kafka guarantees responses
// in request order per connection, and this keeps it trivially true.
type session struct {
	p      *proxy
	client net.Conn

	mu       sync.Mutex
	closed   bool
	upstream map[int32]net.Conn // by kfake node
}

// shutdown closes the client connection and the kfake connections, which
// unblocks the session wherever it waits (a fetch can wait seconds).
func (s *session) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
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
		if out == nil {
			continue // acks=0 produce: Kafka sends no response
		}
		if err := writeFrame(conn, out); err != nil {
			return
		}
	}
}

// controllerBound lists requests a ZooKeeper-mode client sends to the
// controller, besides those kmsg marks as admin requests. kfake refuses
// some of them anywhere but on its own (fixed) controller node.
var controllerBound = map[kmsg.Key]bool{
	kmsg.CreateTopics:               true,
	kmsg.DeleteTopics:               true,
	kmsg.CreatePartitions:           true,
	kmsg.CreateACLs:                 true,
	kmsg.DeleteACLs:                 true,
	kmsg.AlterConfigs:               true,
	kmsg.IncrementalAlterConfigs:    true,
	kmsg.AlterPartitionAssignments:  true,
	kmsg.ListPartitionReassignments: true,
	kmsg.AlterClientQuotas:          true,
	kmsg.AlterUserSCRAMCredentials:  true,
	kmsg.UpdateFeatures:             true,
}

func (s *session) handle(frame []byte) ([]byte, error) {
	req, err := parseRequest(frame)
	if err != nil {
		return nil, err
	}
	c := s.p.c
	switch kmsg.Key(req.key) {
	case kmsg.ElectLeaders:
		// kfake answers success without electing; the model decides.
		return c.answerElectLeaders(req)
	case kmsg.DescribeLogDirs:
		// kfake lists every partition on every broker.
		return c.answerDescribeLogDirs(req, s.p.broker)
	case kmsg.AlterPartitionAssignments:
		// kfake answers success and moves nothing.
		return c.answerAlterPartitionAssignments(req)
	case kmsg.ListPartitionReassignments:
		return c.answerListPartitionReassignments(req)
	}

	node := nodeOfBroker(s.p.broker)
	expectResponse := true
	if req.kreq != nil {
		_, admin := req.kreq.(kmsg.AdminRequest)
		switch {
		case admin || controllerBound[kmsg.Key(req.key)]:
			node = c.kfakeControllerNode()
		case kmsg.Key(req.key) == kmsg.ApiVersions && req.version >= 5:
			// KIP-1242: the client names the broker it expects; kfake
			// checks it against its own node id.
			if err := toKfakeNodeID(req); err != nil {
				return nil, err
			}
		case kmsg.Key(req.key) == kmsg.Produce:
			kreq, err := req.decode()
			if err != nil {
				return nil, err
			}
			produce := kreq.(*kmsg.ProduceRequest)
			expectResponse = produce.Acks != 0
			c.recordProduced(produce)
		default:
			if key, ok := coordinatorKey(req); ok {
				// The model may advertise a different coordinator than
				// kfake's (kfake's may be a stopped broker); kfake only
				// accepts group and transaction requests on its own.
				if n := c.coordinatorNode(key); n >= 0 {
					node = n
				}
			}
		}
	}

	resp, err := s.roundTrip(node, req, expectResponse)
	if err != nil || !expectResponse {
		return nil, err
	}
	return c.rewriteResponse(req, resp)
}

// toKfakeNodeID rewrites the broker id an ApiVersions request names into
// kfake's node id. A client that reached the wrong broker still names a
// different node, and kfake answers REBOOTSTRAP_REQUIRED as Kafka does.
func toKfakeNodeID(req *request) error {
	kreq, err := req.decode()
	if err != nil {
		return err
	}
	av := kreq.(*kmsg.ApiVersionsRequest)
	if av.NodeID < 0 {
		return nil
	}
	av.NodeID = nodeOfBroker(av.NodeID)
	req.reencode(av)
	return nil
}

// coordinatorKey returns the group or transactional id a coordinator
// request is about. Requests naming several groups are routed by the first
// one, which is what kgo sends (it shards them per coordinator).
func coordinatorKey(req *request) (string, bool) {
	_, group := req.kreq.(kmsg.GroupCoordinatorRequest)
	_, txn := req.kreq.(kmsg.TxnCoordinatorRequest)
	if !group && !txn {
		if kmsg.Key(req.key) != kmsg.InitProducerID {
			return "", false
		}
	}
	kreq, err := req.decode()
	if err != nil {
		return "", false // let kfake answer the malformed request
	}
	first := func(ss []string) (string, bool) {
		if len(ss) == 0 {
			return "", false
		}
		return ss[0], true
	}
	switch r := kreq.(type) {
	case *kmsg.OffsetCommitRequest:
		return r.Group, true
	case *kmsg.OffsetFetchRequest:
		if len(r.Groups) > 0 {
			return r.Groups[0].Group, true
		}
		return r.Group, true
	case *kmsg.JoinGroupRequest:
		return r.Group, true
	case *kmsg.HeartbeatRequest:
		return r.Group, true
	case *kmsg.LeaveGroupRequest:
		return r.Group, true
	case *kmsg.SyncGroupRequest:
		return r.Group, true
	case *kmsg.DescribeGroupsRequest:
		return first(r.Groups)
	case *kmsg.DeleteGroupsRequest:
		return first(r.Groups)
	case *kmsg.OffsetDeleteRequest:
		return r.Group, true
	case *kmsg.ConsumerGroupHeartbeatRequest:
		return r.Group, true
	case *kmsg.ConsumerGroupDescribeRequest:
		return first(r.Groups)
	case *kmsg.TxnOffsetCommitRequest:
		return r.Group, true
	case *kmsg.InitProducerIDRequest:
		if r.TransactionalID != nil {
			return *r.TransactionalID, true
		}
	case *kmsg.AddPartitionsToTxnRequest:
		if len(r.Transactions) > 0 {
			return r.Transactions[0].TransactionalID, true
		}
		return r.TransactionalID, true
	case *kmsg.AddOffsetsToTxnRequest:
		return r.TransactionalID, true
	case *kmsg.EndTxnRequest:
		return r.TransactionalID, true
	case *kmsg.DescribeTransactionsRequest:
		return first(r.TransactionalIDs)
	}
	return "", false
}

// upstreamDialTimeout bounds connecting to a kfake node on loopback.
const upstreamDialTimeout = 5 * time.Second

// roundTrip forwards the request frame verbatim to a kfake node and returns
// the response frame (nil when none is expected).
func (s *session) roundTrip(node int32, req *request, expectResponse bool) ([]byte, error) {
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
