// Package connpool keeps one long-lived connection per managed cluster, so
// activities reuse connections instead of dialing on every call, and redial
// when a cluster's addresses change.
package connpool

import "sync"

// Pool holds one T per cluster id, valid for the address it was dialed with.
type Pool[T any] struct {
	closeFn func(T)
	mu      sync.Mutex
	conns   map[string]entry[T]
}

type entry[T any] struct {
	addr string
	conn T
}

// New returns a pool that closes connections with closeFn.
func New[T any](closeFn func(T)) *Pool[T] {
	return &Pool[T]{closeFn: closeFn, conns: make(map[string]entry[T])}
}

// Get returns the cluster's connection for addr, dialing it when there is
// none or when the cluster was known under another address.
func (p *Pool[T]) Get(cluster, addr string, dial func() (T, error)) (T, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.conns[cluster]; ok {
		if e.addr == addr {
			return e.conn, nil
		}
		p.closeFn(e.conn)
		delete(p.conns, cluster)
	}
	conn, err := dial()
	if err != nil {
		return conn, err
	}
	p.conns[cluster] = entry[T]{addr: addr, conn: conn}
	return conn, nil
}

// Close closes every connection.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, e := range p.conns {
		p.closeFn(e.conn)
		delete(p.conns, id)
	}
}
