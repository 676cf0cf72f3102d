package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// workerEnv marks a process started as a bench worker (also in tests,
// where the executable is the test binary).
const workerEnv = "PARLEY_BENCH_WORKER"

// workerProc is a worker child process and the devices it holds.
type workerProc struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	enc     *json.Encoder
	out     *bufio.Scanner
	devices []int
}

// pool is the set of worker processes.
type pool struct {
	procs []*workerProc
}

// startPool starts n workers with the configuration.
func startPool(ctx context.Context, n int, cfg workerConfig, stderr io.Writer) (*pool, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &pool{}
	// Every worker's stderr is copied by its own goroutine; a shared
	// writer that is not a file (a buffer in tests) needs a lock.
	if _, isFile := stderr.(*os.File); !isFile {
		stderr = &lockedWriter{w: stderr}
	}
	for range n {
		cmd := exec.Command(exe, "worker")
		cmd.Env = append(os.Environ(), workerEnv+"=1")
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			p.close()
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			p.close()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			p.close()
			return nil, fmt.Errorf("start worker: %v", err)
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		wp := &workerProc{cmd: cmd, in: in, enc: json.NewEncoder(in), out: sc}
		p.procs = append(p.procs, wp)
		if err := wp.enc.Encode(&cfg); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// assign spreads devices over the workers in contiguous ranges.
func (p *pool) assign(devices []int) {
	per := (len(devices) + len(p.procs) - 1) / len(p.procs)
	for i, wp := range p.procs {
		lo, hi := min(i*per, len(devices)), min((i+1)*per, len(devices))
		wp.devices = devices[lo:hi]
	}
}

// owner returns the worker holding a device.
func (p *pool) owner(dev int) int {
	for i, wp := range p.procs {
		for _, d := range wp.devices {
			if d == dev {
				return i
			}
		}
	}
	return -1
}

// all sends each worker its command (nil: none) and waits for every
// reply.
func (p *pool) all(ctx context.Context, cmds func(i int, wp *workerProc) *command) ([]reply, error) {
	replies := make([]reply, len(p.procs))
	errs := make([]error, len(p.procs))
	var wg sync.WaitGroup
	for i, wp := range p.procs {
		cmd := cmds(i, wp)
		if cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := wp.enc.Encode(cmd); err != nil {
				errs[i] = fmt.Errorf("worker %d: %v", i, err)
				return
			}
			if !wp.out.Scan() {
				errs[i] = fmt.Errorf("worker %d ended: %v", i, wp.out.Err())
				return
			}
			if err := json.Unmarshal(wp.out.Bytes(), &replies[i]); err != nil {
				errs[i] = fmt.Errorf("worker %d: reply: %v", i, err)
				return
			}
			if replies[i].Err != "" {
				errs[i] = fmt.Errorf("worker %d: %s", i, replies[i].Err)
			}
		}()
	}
	wg.Wait()
	return replies, errors.Join(errs...)
}

// close ends the workers (closing stdin makes them exit).
func (p *pool) close() {
	for _, wp := range p.procs {
		wp.in.Close()
	}
	for _, wp := range p.procs {
		wp.cmd.Wait()
	}
}

// conv is a bench conversation.
type conv struct {
	ID      protocol.ConversationID `json:"id"`
	GroupID []byte                  `json:"group_id"`
	Epoch   uint64                  `json:"epoch"`
	Head    uint64                  `json:"head"`
	Members []int                   `json:"-"`
	Commits int                     `json:"commits"`
	// TreeBytes is the size of the final ratchet tree.
	TreeBytes int `json:"tree_bytes"`
}

// buildConv creates a conversation with members[0] as creator (token is
// its session) and adds the other members with real MLS commits of at most
// batch Adds each, from KeyPackages generated locally for the simulated
// devices. Commits are posted without Welcomes (nobody joins for real:
// the devices only route ciphertext).
func buildConv(ctx context.Context, a *api, serverName, run, token string, members []int, batch int) (*conv, error) {
	cfg := &mls.Config{}
	creator := newIdent(run, members[0])
	signer, err := creator.signer()
	if err != nil {
		return nil, err
	}
	cred, err := creator.credential(serverName)
	if err != nil {
		return nil, err
	}
	gid := make([]byte, 16)
	rand.Read(gid)
	g, err := mls.CreateGroup(cfg, suite, gid, signer, cred, mls.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create group: %v", err)
	}
	gi, err := g.GroupInfo(mls.GroupInfoOptions{})
	if err != nil {
		return nil, err
	}
	tree, err := g.RatchetTree()
	if err != nil {
		return nil, err
	}
	var ci protocol.ConversationInfo
	if err := a.do(ctx, "POST", "/v1/conversations", token, protocol.CreateConversationRequest{GroupID: gid, CipherSuite: uint16(suite), GroupInfo: gi, RatchetTree: tree}, &ci); err != nil {
		return nil, err
	}
	c := &conv{ID: ci.ID, GroupID: gid, Members: members}
	kps := make([][]byte, len(members))
	pos := make([]int, len(members)-1)
	for i := range pos {
		pos[i] = i + 1
	}
	if err := parallel(ctx, runtime.GOMAXPROCS(0), pos, func(ctx context.Context, p int) error {
		i := members[p]
		d := newIdent(run, i)
		s, err := d.signer()
		if err != nil {
			return err
		}
		cr, err := d.credential(serverName)
		if err != nil {
			return err
		}
		kp, err := mls.NewKeyPackage(cfg, suite, s, cr, mls.KeyPackageOptions{})
		if err != nil {
			return fmt.Errorf("KeyPackage of device %d: %v", i, err)
		}
		kps[p] = kp.KeyPackage
		return nil
	}); err != nil {
		return nil, err
	}
	for lo := 1; lo < len(members); lo += batch {
		hi := min(lo+batch, len(members))
		pc, err := g.Commit(mls.CommitOptions{Add: kps[lo:hi]})
		if err != nil {
			return nil, fmt.Errorf("commit adding members %d to %d: %v", lo, hi, err)
		}
		var hr protocol.HandshakeResponse
		if err := a.do(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", ci.ID), token,
			protocol.HandshakeRequest{Epoch: g.Epoch(), Message: pc.Message, GroupInfo: pc.GroupInfo}, &hr); err != nil {
			return nil, fmt.Errorf("commit adding members %d to %d (%d bytes): %v", lo, hi, len(pc.Message), err)
		}
		if err := g.MergePendingCommit(pc); err != nil {
			return nil, err
		}
		c.Head, c.Epoch = hr.Seq, hr.Epoch
		c.Commits++
	}
	if t, err := g.RatchetTree(); err == nil {
		c.TreeBytes = len(t)
	}
	return c, nil
}

// lockedWriter serialises writes to w from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
