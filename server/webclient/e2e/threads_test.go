package e2e_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// threads are the threads of one Chromium (its browser process and every
// helper under it), found once: what cpu reads, by "type/name" as in
// "renderer/DedicatedWorker" (the process's --type, or "browser"; the
// thread's name as the kernel keeps it, at most 15 bytes, the page's
// main thread bearing the process's name, "chromium").
type threads map[string][]string // key → /proc/PID/task/TID directories

// findThreads returns the threads of the Chromium whose user data
// directory is dir, from /proc (Linux only; empty elsewhere). Threads that
// start later are not in it.
func findThreads(dir string) threads {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	parent := map[string]string{}
	cmdline := map[string][]byte{}
	ours := map[string]bool{}
	for _, p := range procs {
		pid := filepath.Base(p)
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		stat, err2 := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil || err2 != nil {
			continue
		}
		cmdline[pid] = cmd
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				parent[pid] = f[1]
			}
		}
		if bytes.Contains(cmd, []byte("--user-data-dir="+dir+"\x00")) {
			ours[pid] = true
		}
	}
	// The browser's helpers (zygotes, renderers, the GPU process) are its
	// descendants and do not name the directory.
	of := func(pid string) bool {
		for range 8 {
			if ours[pid] {
				return true
			}
			if pid = parent[pid]; pid == "" || pid == "0" || pid == "1" {
				return false
			}
		}
		return false
	}
	out := threads{}
	for pid, cmd := range cmdline {
		if !of(pid) {
			continue
		}
		typ := "browser"
		// A helper's title may be its arguments joined by spaces.
		for _, arg := range strings.FieldsFunc(string(cmd), func(r rune) bool { return r == 0 || r == ' ' }) {
			if t, ok := strings.CutPrefix(arg, "--type="); ok {
				typ = t
			}
		}
		tasks, _ := filepath.Glob(filepath.Join("/proc", pid, "task", "[0-9]*"))
		for _, task := range tasks {
			name, err := os.ReadFile(filepath.Join(task, "comm"))
			if err != nil {
				continue
			}
			k := typ + "/" + strings.TrimSpace(string(name))
			out[k] = append(out[k], task)
		}
	}
	return out
}

// cpu returns the CPU time, in milliseconds, that each key's threads have
// used since they started, from the first field of their schedstat (the
// time on a CPU, in nanoseconds). Threads that ended are left out.
func (t threads) cpu() map[string]float64 {
	out := make(map[string]float64, len(t))
	for k, tasks := range t {
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join(task, "schedstat"))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				continue
			}
			if ns, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				out[k] += float64(ns) / 1e6
			}
		}
	}
	return out
}

// The threads that run Parley's code in the page's renderer: the page's
// main thread (the DOM, rendering) and the worker's (the program:
// network, decryption, the store). pageThread also counts the main
// thread of any other renderer of the browser (a spare one, idle).
const (
	pageThread   = "renderer/chromium"
	workerThread = "renderer/DedicatedWorker"
)

// cpuPer returns, per key of after, its CPU time since before divided by
// n, in milliseconds, largest first, dropping those under 0.05 ms.
func cpuPer(before, after map[string]float64, n int) []threadCost {
	var out []threadCost
	for k, v := range after {
		if ms := (v - before[k]) / float64(n); ms >= 0.05 {
			out = append(out, threadCost{k, ms})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ms > out[j].ms })
	return out
}

// threadCost is one thread's CPU per message.
type threadCost struct {
	thread string
	ms     float64
}
