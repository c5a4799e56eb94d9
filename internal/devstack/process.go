package devstack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a child process in its own process group, killed with its
// parent (Pdeathsig) and stopped as a group, so no server of the local stack
// outlives it.
type process struct {
	name    string
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// startProcess runs argv with stdout and stderr appended to logPath, with
// this process's environment plus env.
func startProcess(name, dir, logPath string, env []string, argv ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	// Not exec.CommandContext: the server outlives the start context; Stop
	// (and Pdeathsig) bound its life.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	p := &process{name: name, cmd: cmd, logFile: logFile, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// exitedEarly reports, without blocking, an exit before Stop.
// errExitedEarly marks a process that exited before it was ready.
var errExitedEarly = errors.New("exited")

func (p *process) exitedEarly() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s %w: %v", p.name, errExitedEarly, p.waitErr)
	default:
		return nil
	}
}

// stop sends SIGTERM to the group, SIGKILL after grace. Safe to call twice.
func (p *process) stop(grace time.Duration) error {
	return p.signal(syscall.SIGTERM, grace)
}

// kill is kill -9 of the group: no chance to clean up, as in a crash.
func (p *process) kill() error { return p.signal(syscall.SIGKILL, 0) }

func (p *process) signal(first syscall.Signal, grace time.Duration) error {
	p.stopOnce.Do(func() {
		defer p.logFile.Close()
		pgid := p.cmd.Process.Pid
		if err := syscall.Kill(-pgid, first); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = fmt.Errorf("%s: %s: %w", p.name, first, err)
		}
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
		}
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = fmt.Errorf("%s: SIGKILL: %w", p.name, err)
		}
		<-p.exited
	})
	return p.stopErr
}
