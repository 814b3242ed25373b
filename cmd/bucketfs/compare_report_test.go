package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/bucketfs/bucketfs/backend/miniotest"
)

// The output of TestCompare: a markdown table per workload on stdout and
// in results.md, the raw numbers in results.json, a bar chart per
// workload. The chart code lives in a test file so that the binary does
// not depend on gonum.

// result is one workload: its rows are systems.
type result struct {
	ID    string `json:"id"` // names the chart file
	Title string `json:"title"`
	// Unit is that of the samples' Rate: "MiB/s" (computed from Bytes),
	// "IOPS" (the tool's; the best run is then the highest rate), or "".
	Unit  string `json:"unit,omitempty"`
	Bytes int64  `json:"bytes,omitempty"` // read per run
	// Reads: the workload reads data, so each run starts with the page
	// cache dropped (the mount's and MinIO's); for listings and writes a
	// fresh mount is cold enough, and MinIO's metadata stays cached as on
	// a server in use.
	Reads bool     `json:"page_cache_dropped"`
	Rows  []*row   `json:"rows"`
	Notes []string `json:"notes,omitempty"`
}

type row struct {
	System  string   `json:"system"`
	Skipped string   `json:"skipped,omitempty"`
	Note    string   `json:"note,omitempty"`
	Runs    []sample `json:"runs,omitempty"`
}

// add records a sample of sys, or only its row when sys is skipped.
func (res *result) add(sys *system, s sample) {
	r := res.row(sys.name)
	if r == nil {
		r = &row{System: sys.name, Skipped: sys.skip}
		res.Rows = append(res.Rows, r)
	}
	if sys.skip != "" {
		return
	}
	if res.Unit == "MiB/s" && s.Seconds > 0 {
		s.Rate = float64(res.Bytes) / (1 << 20) / s.Seconds
	}
	r.Runs = append(r.Runs, s)
}

// row returns the row of the system called name, or nil.
func (res *result) row(name string) *row {
	i := slices.IndexFunc(res.Rows, func(r *row) bool { return r.System == name })
	if i < 0 {
		return nil
	}
	return res.Rows[i]
}

// bestOf returns the best run of the system called name; false when it
// has none.
func (res *result) bestOf(name string) (sample, bool) {
	r := res.row(name)
	if r == nil || len(r.Runs) == 0 {
		return sample{}, false
	}
	return res.best(r), true
}

// byRate tells whether the best run is the highest rate rather than the
// shortest time: so for a tool that runs for a fixed time.
func (res *result) byRate() bool { return res.Unit == "IOPS" }

// best returns the row's best run.
func (res *result) best(r *row) sample {
	return slices.MinFunc(r.Runs, func(a, b sample) int {
		if res.byRate() {
			return cmpFloat(b.Rate, a.Rate)
		}
		return cmpFloat(a.Seconds, b.Seconds)
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// noteEach sets each measured row's note from its best run.
func (res *result) noteEach(f func(name string, best sample) string) {
	for _, r := range res.Rows {
		if len(r.Runs) > 0 {
			r.Note = f(r.System, res.best(r))
		}
	}
}

// rangeOf returns the least and greatest of a field over the runs.
func rangeOf(runs []sample, f func(sample) float64) (lo, hi float64) {
	for i, s := range runs {
		if v := f(s); i == 0 || v < lo {
			lo = v
		}
		if v := f(s); i == 0 || v > hi {
			hi = v
		}
	}
	return lo, hi
}

// num formats a figure with three significant digits or so.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// thousands formats a count as 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// opOrder is the order of the proxy's operations in a table.
var opOrder = []string{"HEAD", "GET", "LIST", "PUT", "COPY", "DELETE", "POST", "START", "PART", "COMPLETE", "ABORT"}

func requestsCell(m map[string]int) string {
	ops := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		ia, ib := slices.Index(opOrder, a), slices.Index(opOrder, b)
		if ia < 0 || ib < 0 {
			return strings.Compare(a, b) // an unknown one last
		}
		return ia - ib
	})
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %d", op, m[op]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// markdown renders the workload as a table: systems by rows; the ratio is
// to the first raw SDK row.
func (res *result) markdown() string {
	rateHead, ratioHead := "", "time ÷ raw (>1: slower)"
	switch res.Unit {
	case "MiB/s":
		rateHead = "MiB/s (best)"
	case "IOPS":
		rateHead, ratioHead = "IOPS: best (range)", "IOPS ÷ raw (>1: faster)"
	}
	var raw *row
	for _, r := range res.Rows {
		if raw == nil && len(r.Runs) > 0 && r.System == "raw SDK" {
			raw = r
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", res.Title)
	head := []string{"system", "time: best (range)"}
	if rateHead != "" {
		head = append(head, rateHead)
	}
	head = append(head, "requests (best run)", "peak RSS", ratioHead, "notes")
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range res.Rows {
		if len(r.Runs) == 0 {
			cells := append([]string{r.System, r.Skipped}, make([]string, len(head)-2)...)
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
			continue
		}
		best := res.best(r)
		lo, hi := rangeOf(r.Runs, func(s sample) float64 { return s.Seconds })
		cells := []string{r.System, fmt.Sprintf("%s s (%s-%s s)", num(best.Seconds), num(lo), num(hi))}
		switch res.Unit {
		case "MiB/s":
			cells = append(cells, num(best.Rate))
		case "IOPS":
			lo, hi := rangeOf(r.Runs, func(s sample) float64 { return s.Rate })
			cells = append(cells, fmt.Sprintf("%s (%s-%s)", num(best.Rate), num(lo), num(hi)))
		}
		rss := "-"
		if _, hi := rangeOf(r.Runs, func(s sample) float64 { return float64(s.PeakRSS) }); hi > 0 {
			rss = fmt.Sprintf("%.0f MiB", hi/(1<<20))
		}
		ratio := "-"
		if raw != nil {
			rb := res.best(raw)
			if res.byRate() {
				ratio = fmt.Sprintf("%.2f×", best.Rate/rb.Rate)
			} else {
				ratio = fmt.Sprintf("%.2f×", best.Seconds/rb.Seconds)
			}
		}
		note := r.Note
		for _, s := range r.Runs {
			for _, e := range s.Errors {
				note = "**wrong: " + e + "** " + note
			}
		}
		cells = append(cells, requestsCell(best.Requests), rss, ratio, note)
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	return b.String()
}

// report is the whole run.
type report struct {
	Date     string            `json:"date"`
	Machine  string            `json:"machine"`
	Versions map[string]string `json:"versions"`
	Command  string            `json:"command"`
	GoTest   string            `json:"go_test"` // what Command ran
	Quick    bool              `json:"quick"`
	Seconds  float64           `json:"total_seconds"`
	Results  []*result         `json:"workloads"`
}

func newReport(quick bool, command, goTest string) *report {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			return "not installed"
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(line)
	}
	var memKB int64
	fmt.Sscan(procInfo("/proc/meminfo", "MemTotal"), &memKB) // "24683584 kB"
	machine := fmt.Sprintf("%d CPUs (nproc), Linux %s (uname -r), %s, %.0f GiB of memory",
		runtime.NumCPU(), first("uname", "-r"), procInfo("/proc/cpuinfo", "model name"), float64(memKB)/(1<<20))
	return &report{
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Machine: machine,
		Versions: map[string]string{
			"MinIO":     "module " + miniotest.Version,
			"versitygw": miniotest.VersityVersion,
			"bucketfs":  first("git", "describe", "--always", "--dirty"),
			"s3fs":      first("s3fs", "--version"),
			"rclone":    first("rclone", "version"),
			"fio":       first("fio", "--version"),
			"geesefs":   "not available (not served by the Go module proxy here)",
			"Go":        runtime.Version(),
		},
		Command: command,
		GoTest:  goTest,
		Quick:   quick,
	}
}

// procInfo returns the value of the first "key: value" line of a /proc file.
func procInfo(path, key string) string {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown " + key
}

func (rep *report) markdown() string {
	var b strings.Builder
	kind := "full"
	if rep.Quick {
		kind = "quick (BENCH_QUICK=1: smaller sizes)"
	}
	fmt.Fprintf(&b, "# bucketfs compared with s3fs, rclone and the raw SDK\n\n")
	fmt.Fprintf(&b, "- date: %s; run: %s, %.0f s\n- machine: %s\n- command: `%s`", rep.Date, kind, rep.Seconds, rep.Machine, rep.Command)
	if rep.GoTest != rep.Command {
		fmt.Fprintf(&b, ", which runs `%s`", rep.GoTest)
	}
	b.WriteString("\n")
	for _, k := range slices.Sorted(maps.Keys(rep.Versions)) {
		fmt.Fprintf(&b, "- %s: %s\n", k, rep.Versions[k])
	}
	b.WriteString("\nOne MinIO (versitygw for the last table) on this machine; every system, the raw SDK\n" +
		"included, talks to it through the same counting proxy, which gives the requests.\n" +
		"Each run is on a fresh mount; before each run of a workload that reads data (first byte,\n" +
		"sequential, parallel and random reads) the page cache is dropped, MinIO's included.\n" +
		"Time is the best run, the range that over all runs; peak RSS is the mount process's\n" +
		"high-water mark; the requests are those of the best run.\n\n")
	for _, res := range rep.Results {
		b.WriteString(res.markdown() + "\n")
	}
	return b.String()
}

// write saves results.md, results.json and the charts in dir.
func (rep *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	for _, res := range rep.Results {
		if err := res.chart(filepath.Join(dir, res.ID+".png")); err != nil {
			return fmt.Errorf("chart %s: %w", res.ID, err)
		}
	}
	return nil
}

// chart draws one bar per measured system: its best time, or its best
// rate for a workload that has one.
func (res *result) chart(path string) error {
	var names []string
	var values plotter.Values
	var labels []string
	for _, r := range res.Rows {
		if len(r.Runs) == 0 {
			continue
		}
		best := res.best(r)
		v := best.Seconds
		if res.Unit != "" {
			v = best.Rate
		}
		// One line per part of a long name, so that bars' names do not overlap.
		name := strings.NewReplacer(", ", ",\n", " --", "\n--").Replace(r.System)
		names, values, labels = append(names, name), append(values, v), append(labels, num(v))
	}
	p := plot.New()
	// The table's title, without its markdown or what the raw side does.
	title, _, _ := strings.Cut(strings.ReplaceAll(res.Title, "`", ""), " (")
	p.Title.Text = title
	switch res.Unit {
	case "":
		p.Y.Label.Text = "seconds, best run (lower is better)"
	default:
		p.Y.Label.Text = res.Unit + ", best run (higher is better)"
	}
	bars, err := plotter.NewBarChart(values, vg.Points(40))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 70, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" { // 50000, not 50000.00
				ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
			}
		}
		return ticks
	})
	p.NominalX(names...)
	xys := make(plotter.XYs, len(values))
	for i, v := range values {
		xys[i] = plotter.XY{X: float64(i), Y: v}
	}
	text, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return err
	}
	for i := range text.TextStyle {
		text.TextStyle[i].XAlign, text.TextStyle[i].YAlign = draw.XCenter, draw.YBottom
	}
	p.Add(text)
	_, _, _, ymax := bars.DataRange()
	p.Y.Min, p.Y.Max = 0, ymax*1.15 // room for the labels
	return p.Save(max(6*vg.Inch, vg.Length(110+90*len(values))), 4*vg.Inch, path)
}
