package localfleet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ctrlListener is a KRaft controller's listener. It answers the
// controller-facing APIs kfleet uses (ApiVersions, DescribeQuorum,
// DescribeCluster, UpdateFeatures, UnregisterBroker) from the quorum
// model; there is no kfake behind it. A request of any other key closes
// the connection, as a controller does for APIs it does not serve.
type ctrlListener struct {
	c   *cluster
	id  int32
	log zerolog.Logger

	mu      sync.Mutex
	fixedAt int // the port; chosen at the first open when 0
	ln      net.Listener
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newCtrlListener(c *cluster, id int32, port int) *ctrlListener {
	return &ctrlListener{c: c, id: id, fixedAt: port, conns: map[net.Conn]struct{}{},
		log: c.log.With().Int32("controller", id).Str("component", "controller").Logger()}
}

func (l *ctrlListener) port() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fixedAt
}

func (l *ctrlListener) addr() string { return net.JoinHostPort(proxyHost, strconv.Itoa(l.port())) }

// open listens on the controller's port, the same across restarts.
func (l *ctrlListener) open() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return nil
	}
	ln, err := listenKeepingPort(&l.fixedAt)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: controller %d: listen: %w", l.c.id, l.id, err)
	}
	l.ln = ln
	l.wg.Add(1)
	go l.accept(ln)
	return nil
}

// close stops listening and drops every connection: a stopped or crashed
// controller refuses connections.
func (l *ctrlListener) close() {
	l.mu.Lock()
	ln := l.ln
	l.ln = nil
	for conn := range l.conns {
		_ = conn.Close()
	}
	l.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	l.wg.Wait()
}

func (l *ctrlListener) accept(ln net.Listener) {
	defer l.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.ln != ln {
			l.mu.Unlock()
			_ = conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(conn)
	}
}

func (l *ctrlListener) serve(conn net.Conn) {
	defer func() {
		_ = conn.Close()
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
		l.wg.Done()
	}()
	r := bufio.NewReader(conn)
	for {
		frame, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				l.log.Debug().Err(err).Msg("client connection ended")
			}
			return
		}
		req, err := parseRequest(frame)
		if err != nil {
			return
		}
		out, err := l.c.answerController(req, l.id)
		if err != nil {
			l.log.Debug().Err(err).Str("request", kmsg.NameForKey(req.key)).Msg("dropping client connection")
			return
		}
		if err := writeFrame(conn, out); err != nil {
			return
		}
	}
}
