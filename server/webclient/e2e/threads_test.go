package e2e_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ, the unit of /proc's CPU times.
const clockTicks = 100

// threadCPU returns the CPU time, in seconds, of every thread of the
// Chromium whose user data directory is dir, summed by process type
// ("browser", or the process's --type: "renderer", "gpu-process", …)
// and thread name, as "renderer/CrRendererMain". It reads /proc (Linux
// only; nil elsewhere). Threads that ended in between are not counted.
func threadCPU(dir string) map[string]float64 {
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
	out := map[string]float64{}
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
			name, err1 := os.ReadFile(filepath.Join(task, "comm"))
			stat, err2 := os.ReadFile(filepath.Join(task, "stat"))
			if err1 != nil || err2 != nil {
				continue
			}
			if s, ok := taskSeconds(stat); ok {
				out[typ+"/"+strings.TrimSpace(string(name))] += s
			}
		}
	}
	return out
}

// taskSeconds returns utime+stime of a /proc/PID/task/TID/stat line in
// seconds. Its fields after the name, which is in parentheses and may
// hold any character, start with the state: utime and stime are the
// 12th and 13th of them.
func taskSeconds(stat []byte) (float64, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(u+s) / clockTicks, true
}

// cpuPer returns, per thread of after, its CPU time since before divided
// by n, in milliseconds, largest first, dropping those under 0.05 ms.
func cpuPer(before, after map[string]float64, n int) []threadCost {
	var out []threadCost
	for k, v := range after {
		if ms := (v - before[k]) * 1000 / float64(n); ms >= 0.05 {
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
