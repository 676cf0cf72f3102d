package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The configurations of compare (issue 6).
const (
	cfgSQLite   = "sqlite"   // one node on SQLite in its data directory
	cfgPostgres = "postgres" // one node on PostgreSQL, in-process fan-out
	cfgCluster  = "cluster"  // several nodes on PostgreSQL + NATS
)

// compareRate is compare's default open-loop rate (--rate) of the latency
// scenario: below the closed-loop throughput of every configuration on a
// two-core machine, so that the latency shows each configuration's path
// rather than its queue.
const compareRate = 2000

// compareDrain is compare's default --drain: the time the last fan-out
// round has to reach every member.
const compareDrain = 5 * time.Second

// describe returns a configuration's label for the table.
func (o *options) describe(cfg string) string {
	switch cfg {
	case cfgSQLite:
		return "1 node, SQLite"
	case cfgPostgres:
		return "1 node, PostgreSQL"
	default:
		return fmt.Sprintf("%d nodes, PostgreSQL + NATS", o.nodes)
	}
}

// forConfig returns the options that spawn cfg.
func (o *options) forConfig(cfg string) *options {
	c := *o
	c.store, c.fanout, c.nodes = "", "", 1
	switch cfg {
	case cfgPostgres:
		c.store = o.postgres
	case cfgCluster:
		c.store, c.fanout, c.nodes = o.postgres, o.nats, o.nodes
	}
	return &c
}

// compare runs throughput, latency and fan-out on each configuration in
// turn, every scenario on freshly spawned servers (and, on PostgreSQL, a
// fresh schema), and adds the comparison to the report. A configuration
// whose services are unreachable or whose scenario fails is reported and
// the others still run.
func compare(ctx context.Context, o *options, rep *report, log io.Writer) error {
	var errs []error
	cmp := &comparison{}
	for _, cfg := range o.configs {
		co := o.forConfig(cfg)
		col := compareColumn{Config: cfg, Label: o.describe(cfg), Store: redact(co.store), Fanout: co.fanout, Nodes: co.nodes}
		fail := func(err error) {
			col.Errors = append(col.Errors, err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", cfg, err))
		}
		var unreachable bool
		if isPostgres(co.store) {
			if err := checkPostgres(ctx, co.store); err != nil {
				fail(err)
				unreachable = true
			}
		}
		if isNATS(co.fanout) {
			if err := checkNATS(ctx, co.fanout); err != nil {
				fail(err)
				unreachable = true
			}
		}
		if !unreachable {
			start := time.Now()
			for _, sc := range []struct {
				name string
				f    func(context.Context, *options, io.Writer) ([]result, error)
			}{
				{"throughput", func(ctx context.Context, o *options, log io.Writer) ([]result, error) {
					return messaging(ctx, o, log, false)
				}},
				{"latency", func(ctx context.Context, o *options, log io.Writer) ([]result, error) {
					return messaging(ctx, o, log, true)
				}},
				{"fanout", fanout},
			} {
				if ctx.Err() != nil {
					fail(ctx.Err())
					break
				}
				fmt.Fprintf(log, "parley-bench: %s (%s): scenario %s\n", cfg, col.Label, sc.name)
				rs, err := sc.f(ctx, co, log)
				for i := range rs {
					rs[i].Config = cfg
				}
				rep.Results = append(rep.Results, rs...)
				if err != nil {
					fail(fmt.Errorf("%s: %w", sc.name, err))
				}
			}
			col.Seconds = time.Since(start).Seconds()
		}
		cmp.Configs = append(cmp.Configs, col)
	}
	cmp.fill(o, rep.Results)
	rep.Comparison = cmp
	return errors.Join(errs...)
}

// comparison is compare's table: one column per configuration.
type comparison struct {
	Configs []compareColumn `json:"configs"`
	Rows    []compareRow    `json:"rows"`
}

// compareColumn is one configuration of a comparison.
type compareColumn struct {
	Config  string   `json:"config"`
	Label   string   `json:"label"`
	Store   string   `json:"store,omitempty"`
	Fanout  string   `json:"fanout,omitempty"`
	Nodes   int      `json:"nodes"`
	Seconds float64  `json:"seconds"` // Seconds is the wall time of the configuration's scenarios.
	Errors  []string `json:"errors,omitempty"`
}

// compareRow is one figure of every configuration; a nil value is
// missing (the scenario failed or did not run).
type compareRow struct {
	Name   string     `json:"name"`
	Unit   string     `json:"unit,omitempty"`
	Values []*float64 `json:"values"`
}

// rowSpec selects a metric of a scenario's result for a row.
type rowSpec struct {
	name, unit string
	scenario   string
	members    int // fanout: the conversation size
	metric     string
}

// fill builds the rows from the results.
func (c *comparison) fill(o *options, results []result) {
	specs := []rowSpec{
		{"throughput: accepted durably (closed loop)", "msg/s", "throughput", 0, "accepted durably (sent acks)"},
		{"throughput: delivered", "msg/s", "throughput", 0, "delivered to online recipients"},
		{"throughput: sent-ack latency p50", "ms", "throughput", 0, "sent-ack latency p50"},
		{"throughput: delivery latency p50", "ms", "throughput", 0, "delivery latency p50"},
		{"throughput: entries per group commit", "", "throughput", 0, "entries per group commit (mean)"},
		{"throughput: group-commit transaction", "ms", "throughput", 0, "group-commit transaction (mean)"},
		{"throughput: server CPU (all nodes)", "cores", "throughput", 0, ""},
		{"throughput: PostgreSQL CPU (all backends)", "cores", "throughput", 0, "PostgreSQL CPU in the window"},
		{"throughput: NATS server CPU", "cores", "throughput", 0, "NATS server CPU in the window"},
		{"throughput: bench workers' CPU", "cores", "throughput", 0, "bench workers' CPU in the window"},
		{fmt.Sprintf("latency: delivered at %.0f msg/s offered", o.rate), "msg/s", "latency", 0, "delivered to online recipients"},
		{"latency: delivery p50", "ms", "latency", 0, "delivery latency p50"},
		{"latency: delivery p99", "ms", "latency", 0, "delivery latency p99"},
		{"latency: delivery p99.9", "ms", "latency", 0, "delivery latency p99.9"},
		{"latency: sent-ack p50", "ms", "latency", 0, "sent-ack latency p50"},
		{"latency: server CPU (all nodes)", "cores", "latency", 0, ""},
		{"latency: PostgreSQL CPU (all backends)", "cores", "latency", 0, "PostgreSQL CPU in the window"},
		{"latency: NATS server CPU", "cores", "latency", 0, "NATS server CPU in the window"},
	}
	for _, sz := range o.sizes {
		p := fmt.Sprintf("fan-out %d: ", sz)
		specs = append(specs,
			rowSpec{p + "submit → last receipt, median", "ms", "fanout", sz, "fan-out time, median of rounds"},
			rowSpec{p + "submit → last receipt, worst", "ms", "fanout", sz, "fan-out time, worst round"},
			rowSpec{p + "per-receipt latency p50", "ms", "fanout", sz, "per-receipt latency p50 (all rounds)"},
			rowSpec{p + fmt.Sprintf("rounds reaching all %d others (of %d)", sz-1, o.rounds), "", "fanout", sz, "rounds delivered to every member"})
	}
	specs = append(specs,
		rowSpec{"ack storm: every device acks once", "ack/s", "ack storm", 0, "acks per second"},
		rowSpec{fmt.Sprintf("setup: register and log in %d devices", maxSize(o.sizes)), "s", "fanout", o.sizes[len(o.sizes)-1], "@register_seconds"},
		rowSpec{"setup: build the fan-out conversations", "s", "fanout", o.sizes[len(o.sizes)-1], "@conversations_seconds"},
		rowSpec{"setup: connect and subscribe", "s", "fanout", o.sizes[len(o.sizes)-1], "@connect_seconds"},
	)
	for _, sp := range specs {
		row := compareRow{Name: sp.name, Unit: sp.unit}
		for _, col := range c.Configs {
			row.Values = append(row.Values, lookup(results, col.Config, sp))
		}
		c.Rows = append(c.Rows, row)
	}
	// Errors and lost connections over every scenario of a configuration.
	errRow := compareRow{Name: "errors and lost connections (all scenarios)"}
	for _, col := range c.Configs {
		var n float64
		found := false
		for _, r := range results {
			if r.Config != col.Config {
				continue
			}
			found = true
			for _, m := range r.Metrics {
				if strings.HasPrefix(m.Name, "errors: ") || m.Name == "connections lost" {
					n += m.Value
				}
			}
		}
		if found {
			errRow.Values = append(errRow.Values, ptr(n))
		} else {
			errRow.Values = append(errRow.Values, nil)
		}
	}
	c.Rows = append(c.Rows, errRow)
}

// maxSize returns the largest size.
func maxSize(sizes []int) int {
	m := 0
	for _, s := range sizes {
		m = max(m, s)
	}
	return m
}

// lookup finds a row's value in a configuration's results: a metric by
// name (a prefix match, since CPU metrics name the core count), the sum of
// the server CPU metric when metric is empty, or a setup figure when it
// starts with "@".
func lookup(results []result, cfg string, sp rowSpec) *float64 {
	for _, r := range results {
		if r.Config != cfg || r.Scenario != sp.scenario {
			continue
		}
		if sp.members > 0 {
			if m := paramInt(r.Params["members"]); m != sp.members {
				continue
			}
		}
		if name, ok := strings.CutPrefix(sp.metric, "@"); ok {
			if v, ok := r.Setup[name]; ok {
				return ptr(v)
			}
			return nil
		}
		want := sp.metric
		if want == "" {
			want = "server CPU in the window"
		}
		for _, m := range r.Metrics {
			if strings.HasPrefix(m.Name, want) {
				return ptr(m.Value)
			}
		}
	}
	return nil
}

// paramInt returns a numeric parameter (an int when built here, a
// float64 when decoded from JSON).
func paramInt(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return -1
}

// writeTable prints the comparison.
func (c *comparison) writeTable(w io.Writer) {
	fmt.Fprintf(w, "\n== comparison\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "\t")
	for _, col := range c.Configs {
		fmt.Fprintf(tw, "%s\t", col.Label)
	}
	fmt.Fprintln(tw, "unit\t")
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%s\t", r.Name)
		for _, v := range r.Values {
			if v == nil {
				fmt.Fprint(tw, "—\t")
			} else {
				fmt.Fprintf(tw, "%s\t", format(*v))
			}
		}
		fmt.Fprintf(tw, "%s\t\n", r.Unit)
	}
	tw.Flush()
	for _, col := range c.Configs {
		fmt.Fprintf(w, "%s: %s", col.Config, col.Label)
		if col.Store != "" {
			fmt.Fprintf(w, "; store %s", col.Store)
		}
		if col.Fanout != "" {
			fmt.Fprintf(w, "; fanout %s", col.Fanout)
		}
		fmt.Fprintf(w, "; %.0f s\n", col.Seconds)
		for _, e := range col.Errors {
			fmt.Fprintf(w, "  FAILED: %s\n", e)
		}
	}
}
