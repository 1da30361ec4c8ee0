package collector

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

type mpPhase struct {
	Phase         string `json:"phase"`
	Exact         string `json:"exact"`
	ExactDrop     string `json:"exact_drop"`
	Files         int    `json:"files"`
	DeadFiles     int    `json:"dead_files"`
	DeadLiveFiles int    `json:"dead_live_files"`
	DeadWriters   int    `json:"dead_writers"`
}

func mpParseText(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing Python's exposition: %v\n%s", err, text)
	}
	return fams
}

// mpHealth returns the value of one of the directory's own metrics (the first series whose
// labels include the given name=value pairs).
func mpHealth(t *testing.T, fams []*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

// TestMultiprocDeadWriters: real worker processes of Debian's client write a directory while
// writers die, a dead writer's pid is reused, and the directory is wiped and refilled (see
// testdata/mp_scenario.py). At every phase each source's merge equals the exact merge Python
// computes (math.fsum sums; the script also checks that the client's own merge is within the
// stated bound of it), with the dead writers' files folded into the store: the store holds
// exactly their files, a writer that dies moves to the store with every series unchanged to
// the bit, the files of a reused pid are taken back and read again (no counter counted
// twice), and a wiped directory leaves nothing of the old files.
func TestMultiprocDeadWriters(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s (with python3-prometheus-client) is required: %v", python, err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test forks a worker with a chosen pid (/proc/sys/kernel/ns_last_pid): run it as root, as make test does")
	}
	dir := filepath.Join(t.TempDir(), "mp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/mp_scenario.py", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("python: %v", err)
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill() // the script we started, by its pid
			<-done
		}
	}()
	lines := bufio.NewReader(stdout)

	src := func(o multiproc.Options) *Multiproc {
		o.ProcRoot = "/proc"
		return newMP(dir, MultiprocOptions{Options: o})
	}
	// Every read a full recheck (relist, every folded pid looked up, every folded file
	// stated): the scenario rewinds the pid counter to reuse a pid, which the handed-out pid
	// ranges of a normal read do not see (a real reuse comes after a wrap-around, which they
	// do; TestMultiprocStorePIDReuse covers that path).
	plain := src(multiproc.Options{RecheckInterval: time.Nanosecond})
	drop := src(multiproc.Options{RecheckInterval: time.Nanosecond, DropDeadLiveGauges: true})
	fast := src(multiproc.Options{})
	noStore := src(multiproc.Options{NoStore: true})

	var prev map[string]*dto.MetricFamily
	var prevFolded, backs float64
	for _, name := range []string{"start", "mortal", "reuse", "wipe"} {
		line, err := lines.ReadString('\n')
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		var ph mpPhase
		if err := json.Unmarshal([]byte(line), &ph); err != nil || ph.Phase != name {
			t.Fatalf("phase %s: %v: %q", name, err, line)
		}
		want, wantDrop := mpParseText(t, ph.Exact), mpParseText(t, ph.ExactDrop)
		for i := 0; i < 2; i++ { // a first and a warm scrape
			fams := mpGather(t, plain)
			app := mpAppFamilies(fams)
			mpCompareFamilies(t, app, want)
			mpCompareFamilies(t, mpAppFamilies(mpTextRoundTrip(t, fams)), want)
			if got := mpHealth(t, fams, "multiproc_store_files"); got != float64(ph.DeadFiles) {
				t.Errorf("%s: store holds %v files, want the dead writers' %d", name, got, ph.DeadFiles)
			}
			if got := mpHealth(t, fams, "multiproc_store_processes"); got != float64(ph.DeadWriters) {
				t.Errorf("%s: store holds %v writers, want %d", name, got, ph.DeadWriters)
			}
			if got := mpHealth(t, fams, "multiproc_files_skipped"); got != float64(ph.DeadFiles) {
				t.Errorf("%s: %v files skipped, want %d", name, got, ph.DeadFiles)
			}
			if got := mpHealth(t, fams, "multiproc_processes", "state", "dead"); got != float64(ph.DeadWriters) {
				t.Errorf("%s: %v dead processes, want %d", name, got, ph.DeadWriters)
			}
			if i == 0 {
				switch name {
				case "mortal":
					// The mortal writers died without writing: every series is what it was.
					mpCompareFamilies(t, app, prev)
				case "reuse":
					// The reborn writer's files (all the mortal's) come back out of the store.
					back := mpHealth(t, fams, "multiproc_store_takebacks_total", "reason", "alive")
					if back != prevFolded-float64(ph.DeadFiles) || back == 0 {
						t.Errorf("reuse: %v files taken back (alive), want %v", back, prevFolded-float64(ph.DeadFiles))
					}
				case "wipe":
					// Every folded file is taken back (removed; or replaced, when a new worker
					// got a folded writer's pid: the scenario's pid rewind makes that likely).
					got := -backs
					for _, r := range []string{"removed", "replaced", "alive", "changed"} {
						got += mpHealth(t, fams, "multiproc_store_takebacks_total", "reason", r)
					}
					if got != prevFolded {
						t.Errorf("wipe: %v files taken back, want %v", got, prevFolded)
					}
				}
			}
			prev, prevFolded = app, float64(ph.DeadFiles)
			backs = 0
			for _, r := range []string{"removed", "replaced", "alive", "changed"} {
				backs += mpHealth(t, fams, "multiproc_store_takebacks_total", "reason", r)
			}
		}
		fams := mpGather(t, drop)
		mpCompareFamilies(t, mpAppFamilies(fams), wantDrop)
		if got := mpHealth(t, fams, "multiproc_store_files"); got != float64(ph.DeadFiles-ph.DeadLiveFiles) {
			t.Errorf("%s, live gauges dropped: store holds %v files, want %d", name, got, ph.DeadFiles-ph.DeadLiveFiles)
		}
		if got := mpHealth(t, fams, "multiproc_files_skipped"); got != float64(ph.DeadFiles) {
			t.Errorf("%s, live gauges dropped: %v files skipped, want %d", name, got, ph.DeadFiles)
		}
		if got := mpHealth(t, fams, "multiproc_dead_live_files_skipped"); got != float64(ph.DeadLiveFiles) {
			t.Errorf("%s, live gauges dropped: %v dead writers' live gauges left out, want %d", name, got, ph.DeadLiveFiles)
		}
		fams = mpGather(t, noStore)
		mpCompareFamilies(t, mpAppFamilies(fams), want)
		if got := mpHealth(t, fams, "multiproc_store_files"); got != 0 {
			t.Errorf("%s, no store: %v files in the store", name, got)
		}
		if name != "reuse" {
			mpCompareFamilies(t, mpAppFamilies(mpGather(t, fast)), want)
		}
		if _, err := io.WriteString(stdin, "next\n"); err != nil {
			t.Fatal(err)
		}
	}
}
