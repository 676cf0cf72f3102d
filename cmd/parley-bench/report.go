package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// metric is one reported figure.
type metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// result is the outcome of one scenario.
type result struct {
	Scenario string             `json:"scenario"`
	Config   string             `json:"config,omitempty"` // Config is compare's configuration.
	Params   map[string]any     `json:"params"`
	Metrics  []metric           `json:"metrics"`
	Setup    map[string]float64 `json:"setup,omitempty"`
	Memory   []memSample        `json:"memory,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// add appends a metric.
func (r *result) add(name string, v float64, unit, target string, met *bool) {
	r.Metrics = append(r.Metrics, metric{Name: name, Value: v, Unit: unit, Target: target, Met: met})
}

// report is the whole output.
type report struct {
	Time      time.Time `json:"time"`
	Command   string    `json:"command"`
	Machine   machine   `json:"machine"`
	Results   []result  `json:"results"`
	StoreDesc string    `json:"store"`
	// Parleyd is the SHA-256 of the spawned parleyd binary (which build
	// ran).
	Parleyd string `json:"parleyd_sha256,omitempty"`
	// Comparison is compare's table (nil for the other scenarios).
	Comparison *comparison `json:"comparison,omitempty"`
}

// machine describes where the bench ran.
type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// newReport starts a report for the options.
func newReport(o *options) *report {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	store := "sqlite (spawned)"
	switch {
	case !o.spawn:
		store = "running server " + strings.Join(o.servers, ",")
	case o.scenario == "compare":
		var cs []string
		for _, c := range o.configs {
			cs = append(cs, o.describe(c))
		}
		store = "compare: " + strings.Join(cs, "; ")
	case o.store != "":
		store = fmt.Sprintf("%s, fanout %q, %d node(s)", o.store, o.fanout, o.nodes)
	}
	return &report{Time: time.Now().UTC().Truncate(time.Second), Command: "parley-bench " + strings.Join(os.Args[1:], " "), Machine: m, StoreDesc: store}
}

// writeJSON prints the report as indented JSON.
func (r *report) writeJSON(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(r)
}

// writeTable prints the report as aligned tables.
func (r *report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "parley-bench %s  (%d CPUs %s, %s; server: %s)\n", r.Time.Format(time.RFC3339), r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion, r.StoreDesc)
	if r.Parleyd != "" {
		fmt.Fprintf(w, "parleyd sha256 %s\n", r.Parleyd)
	}
	for _, res := range r.Results {
		cfg := ""
		if res.Config != "" {
			cfg = "[" + res.Config + "] "
		}
		fmt.Fprintf(w, "\n== %s%s %s\n", cfg, res.Scenario, params(res.Params))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "metric\tvalue\tunit\ttarget\t")
		for _, m := range res.Metrics {
			met := ""
			if m.Met != nil {
				met = "MISSED"
				if *m.Met {
					met = "met"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t\n", m.Name, format(m.Value), m.Unit, m.Target, met)
		}
		tw.Flush()
		for _, n := range res.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	if r.Comparison != nil {
		r.Comparison.writeTable(w)
	}
}

// params formats parameters in a stable order.
func params(p map[string]any) string {
	b, _ := json.Marshal(p) // maps marshal with sorted keys
	return string(b)
}

// format prints a value with sensible precision.
func format(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e12 && v > -1e12:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// fileSHA256 returns the hex SHA-256 of a file, or "" if unreadable.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
