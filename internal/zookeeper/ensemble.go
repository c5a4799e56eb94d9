package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Ensemble asks each server of a cluster's ZooKeeper ensemble how it is,
// with the four-letter words ruok and srvr, and asks the leader mntr
// whether its followers are in sync (the servers must allow them:
// 4lw.commands.whitelist). It needs no session, so it sees a server that
// refuses sessions (no quorum) as well as one that is down.
//
// go-zookeeper's FLWSrvr is not used: its parser expects the build date
// format of ZooKeeper 3.4 ("built on 03/06/2019 ...") and matches nothing
// from 3.5 on ("built on 2024-12-29 17:54 UTC").
type Ensemble struct {
	// Timeout bounds each server's answer. Default 2 s.
	Timeout time.Duration
}

const defaultFLWTimeout = 2 * time.Second

// maxFLWAnswer bounds a four-letter word's answer; srvr's is a few lines.
const maxFLWAnswer = 64 << 10

// ServerHealth asks every server of spec's connect string, concurrently,
// and returns one entry per server in connect-string order. A server that
// does not answer, or answers that it does not serve, is reported in its
// entry (OK false, Error); only a bad connect string is an error.
func (e Ensemble) ServerHealth(ctx context.Context, spec fleet.ClusterSpec) ([]fleet.ZooKeeperServer, error) {
	servers, _, err := ParseConnect(spec.ZooKeeper)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", spec.ID, err)
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = defaultFLWTimeout
	}
	out := make([]fleet.ZooKeeperServer, len(servers))
	var wg sync.WaitGroup
	for i, addr := range servers {
		wg.Go(func() { out[i] = serverHealth(ctx, addr, timeout) })
	}
	wg.Wait()
	return out, nil
}

func serverHealth(ctx context.Context, addr string, timeout time.Duration) fleet.ZooKeeperServer {
	s := fleet.ZooKeeperServer{Address: addr}
	ruok, err := FourLetterWord(ctx, addr, "ruok", timeout)
	if err != nil {
		s.Error = fmt.Sprintf("ruok: %v", err)
		return s
	}
	if ruok != "imok" {
		s.Error = fmt.Sprintf("ruok answered %q", ruok)
		return s
	}
	srvr, err := FourLetterWord(ctx, addr, "srvr", timeout)
	if err != nil {
		s.Error = fmt.Sprintf("srvr: %v", err)
		return s
	}
	st, err := ParseSrvr(srvr)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Mode, s.Outstanding, s.MaxLatency = st.Mode, st.Outstanding, st.MaxLatency
	switch st.Mode {
	case "leader", "follower", "standalone":
		s.OK = true
	default:
		s.Error = fmt.Sprintf("mode %q: not serving", st.Mode)
		return s
	}
	if st.Mode != "leader" {
		return s
	}
	// Only the leader knows whether its followers keep up: mntr says.
	mntr, err := FourLetterWord(ctx, addr, "mntr", timeout)
	if err != nil {
		s.Warning = fmt.Sprintf("mntr: %v", err)
		return s
	}
	m := ParseMntr(mntr)
	s.Followers, s.SyncedFollowers = m["zk_followers"], m["zk_synced_followers"]
	if s.SyncedFollowers < s.Followers {
		s.Warning = fmt.Sprintf("leader: %d of %d followers in sync", s.SyncedFollowers, s.Followers)
	}
	return s
}

// ParseMntr reads the numeric fields of an mntr answer (tab-separated
// "zk_key\tvalue" lines); other lines and values are skipped.
func ParseMntr(answer string) map[string]int64 {
	out := map[string]int64{}
	for line := range strings.SplitSeq(answer, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[strings.TrimSpace(k)] = n
		}
	}
	return out
}

// SrvrStats are the fields of a srvr answer kfleet reads.
type SrvrStats struct {
	Mode        string // leader, follower, standalone (observer, read-only ...)
	Outstanding int64  // requests queued
	MaxLatency  int64  // ms
	Connections int64
	NodeCount   int64
}

// ParseSrvr parses the answer to srvr ("Key: value" lines). A server that
// is not serving (no quorum) or does not allow srvr answers with a
// sentence instead, which is an error.
func ParseSrvr(answer string) (SrvrStats, error) {
	var st SrvrStats
	fields := map[string]string{}
	for line := range strings.SplitSeq(answer, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	mode, ok := fields["Mode"]
	if !ok {
		return st, fmt.Errorf("srvr answered %q", firstLine(answer))
	}
	st.Mode = mode
	var errs []error
	num := func(key string, dst *int64) {
		v, ok := fields[key]
		if !ok {
			return
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("srvr %s %q: %w", key, v, err))
			return
		}
		*dst = n
	}
	num("Outstanding", &st.Outstanding)
	num("Connections", &st.Connections)
	num("Node count", &st.NodeCount)
	// "Latency min/avg/max: 0/0.5/12"; newer servers may print decimals.
	if v, ok := fields["Latency min/avg/max"]; ok {
		parts := strings.Split(v, "/")
		f, err := strconv.ParseFloat(parts[len(parts)-1], 64)
		if len(parts) != 3 || err != nil {
			errs = append(errs, fmt.Errorf("srvr latency %q: want min/avg/max", v))
		} else {
			st.MaxLatency = int64(f)
		}
	}
	return st, errors.Join(errs...)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	const n = 120
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// FourLetterWord sends a four-letter word to addr and returns the answer,
// trimmed; the server closes the connection after answering. timeout
// bounds the whole exchange.
func FourLetterWord(ctx context.Context, addr, word string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, word); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(c, maxFLWAnswer))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
