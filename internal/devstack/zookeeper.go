// Package devstack starts the real infrastructure processes of the local
// development stack and of integration tests.
package devstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Paths of the Debian `zookeeper` package. zookeeper.jar names its
// dependencies in its manifest Class-Path, so it is the only jar we must
// list; slf4j-simple is added when present so the server log is not silent.
const (
	debianJavaDir   = "/usr/share/java"
	zooKeeperJar    = "zookeeper.jar"
	slf4jSimpleJar  = "slf4j-simple.jar"
	zooKeeperMain   = "org.apache.zookeeper.server.ZooKeeperServerMain"
	defaultJavaPath = "/usr/bin/java"
)

const (
	// zooKeeperReadyTimeout bounds how long StartZooKeeper waits for the
	// JVM to answer `ruok`; a cold JVM takes 1-3 s here.
	zooKeeperReadyTimeout = 30 * time.Second
	// zooKeeperStopGrace is how long Stop waits after SIGTERM before it
	// sends SIGKILL to the process group.
	zooKeeperStopGrace = 5 * time.Second
	logTailBytes       = 4 << 10
)

// ZooKeeper is a standalone ZooKeeper server running as a child process.
type ZooKeeper struct {
	// Addr is the client address, "127.0.0.1:<port>".
	Addr string
	// Dir holds zoo.cfg, the data directory and zookeeper.log.
	Dir string

	log  zerolog.Logger
	proc *process
}

// StartZooKeeper writes a standalone configuration under dir and starts a
// ZooKeeper server listening on 127.0.0.1:port (port 0 picks a free port).
// It returns once the server answers the `ruok` four-letter word (and
// `srvr` says it serves requests), or an error carrying the tail of
// dir/zookeeper.log.
//
// The JVM runs in its own process group with Pdeathsig set, so neither a
// crashed parent nor Stop leaves an orphan behind.
func StartZooKeeper(ctx context.Context, dir string, port int, log zerolog.Logger) (*ZooKeeper, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: resolve dir %q: %w", dir, err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("zookeeper: create data dir: %w", err)
	}
	if port != 0 {
		return startZooKeeperOn(ctx, dir, dataDir, port, log)
	}
	// A free port can be taken by another process between FreePort and
	// the server's bind (test binaries running side by side): another one
	// is tried then.
	for attempt := 1; ; attempt++ {
		if port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("zookeeper: %w", err)
		}
		z, err := startZooKeeperOn(ctx, dir, dataDir, port, log)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "BindException: Address already in use") {
			return z, err
		}
		log.Warn().Int("port", port).Msg("zookeeper: the free port was taken before the server bound it; trying another")
	}
}

// startZooKeeperOn starts the server on port.
func startZooKeeperOn(ctx context.Context, dir, dataDir string, port int, log zerolog.Logger) (*ZooKeeper, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(zooCfg(dataDir, port)), 0o644); err != nil {
		return nil, fmt.Errorf("zookeeper: write %s: %w", cfgPath, err)
	}
	java, classpath, err := javaCommand()
	if err != nil {
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	logPath := filepath.Join(dir, "zookeeper.log")
	proc, err := startProcess("zookeeper", dir, logPath, nil, java,
		// A fleet of thousands of clusters holds ~4 sessions each (its
		// brokers, kfleet's sensing): 256 MiB was too little for 2,000.
		"-Xms64m", "-Xmx1g",
		"-Dzookeeper.log.dir="+dir,
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-cp", classpath,
		zooKeeperMain, cfgPath)
	if err != nil {
		return nil, err
	}
	z := &ZooKeeper{
		Addr: addr,
		Dir:  dir,
		log:  log.With().Str("component", "zookeeper").Str("addr", addr).Logger(),
		proc: proc,
	}
	if err := z.waitReady(ctx); err != nil {
		_ = z.Stop()
		return nil, fmt.Errorf("zookeeper on %s: %w\n--- %s (tail) ---\n%s", addr, err, logPath, tail(logPath, logTailBytes))
	}
	z.log.Info().Int("pid", proc.cmd.Process.Pid).Str("dir", dir).Msg("zookeeper started")
	return z, nil
}

func zooCfg(dataDir string, port int) string {
	// tickTime=500 with minSessionTimeout=1000 lets tests use short
	// sessions, so an ephemeral node of a dead client vanishes quickly.
	return strings.Join([]string{
		"tickTime=500",
		"initLimit=10",
		"syncLimit=5",
		"dataDir=" + dataDir,
		fmt.Sprintf("clientPort=%d", port),
		"clientPortAddress=127.0.0.1",
		"minSessionTimeout=1000",
		"maxSessionTimeout=60000",
		"maxClientCnxns=0",
		// Thousands of sessions connect at once when a large local fleet
		// or a worker starts: the default backlog (50) drops them.
		"clientPortListenBacklog=1024",
		"admin.enableServer=false",
		"4lw.commands.whitelist=*",
		"autopurge.snapRetainCount=3",
		"autopurge.purgeInterval=1",
		"",
	}, "\n")
}

func javaCommand() (java, classpath string, err error) {
	java = defaultJavaPath
	if _, err := os.Stat(java); err != nil {
		if java, err = exec.LookPath("java"); err != nil {
			return "", "", fmt.Errorf("java not found (install the Debian package zookeeper): %w", err)
		}
	}
	jar := filepath.Join(debianJavaDir, zooKeeperJar)
	if _, err := os.Stat(jar); err != nil {
		return "", "", fmt.Errorf("%s not found (install the Debian package zookeeper): %w", jar, err)
	}
	classpath = jar
	if simple := filepath.Join(debianJavaDir, slf4jSimpleJar); fileExists(simple) {
		classpath += string(os.PathListSeparator) + simple
	}
	return java, classpath, nil
}

func (z *ZooKeeper) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, zooKeeperReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = z.probe(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-z.proc.exited:
			return fmt.Errorf("server exited before it was ready: %v", z.proc.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last probe: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// probe reports whether the server serves clients. `ruok` answers imok as
// soon as the socket is up, before the database is loaded (sessions are
// then refused), so `srvr` must also report a mode.
func (z *ZooKeeper) probe(ctx context.Context) error {
	ok, err := FourLetterWord(ctx, z.Addr, "ruok")
	if err != nil {
		return err
	}
	if ok != "imok" {
		return fmt.Errorf("ruok answered %q", ok)
	}
	srvr, err := FourLetterWord(ctx, z.Addr, "srvr")
	if err != nil {
		return err
	}
	if !strings.Contains(srvr, "Mode: ") {
		return fmt.Errorf("srvr answered %q", srvr)
	}
	return nil
}

// FourLetterWord sends a ZooKeeper four-letter command (ruok, stat, mntr …)
// to addr and returns the answer with surrounding whitespace trimmed.
func FourLetterWord(ctx context.Context, addr, word string) (string, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, word); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Stop terminates the server: SIGTERM to its process group, then SIGKILL
// if it has not exited within a few seconds. Safe to call more than once.
func (z *ZooKeeper) Stop() error {
	if err := z.proc.stop(zooKeeperStopGrace); err != nil {
		return fmt.Errorf("zookeeper on %s: %w", z.Addr, err)
	}
	z.log.Debug().Msg("zookeeper stopped")
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; that window is
// acceptable for tests and the dev stack.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tail returns up to n bytes from the end of the file at path.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
