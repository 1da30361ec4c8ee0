package collector

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgi-exporter/wsgi_exporter/multiproc"
)

// mpLivePython writes a multiprocess directory with forked worker processes, then prints
// the exact merge of it (testdata/mp_expect.py: the client's own MultiProcessCollector with
// math.fsum sums, which also checks that the client's own merge is within the stated bound).
const mpLivePython = `
import glob, os, random, sys
out = sys.argv[1]
workers = int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
os.environ["PROMETHEUS_MULTIPROC_DIR"] = out
import mp_expect

from prometheus_client import Counter, Gauge, Histogram, Summary, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

VALUES = ["plain", "ünïcödé", 'quote"d', "back\\slash", "new\nline", "emoji 🚀", "", "{braces}=,"]
MODES = ["all", "liveall", "min", "max", "sum", "livesum", "livemin", "livemax"]

def work(n):
    rnd = random.Random(n)
    c = Counter("live_requests", "Requests \"served\" \\ by\nworkers ✓", ["path", "code"])
    c0 = Counter("live_plain_total", "No labels.")
    h = Histogram("live_latency_seconds", "Latency.", ["path"])
    hc = Histogram("live_custom", "Custom buckets.", buckets=(-1, 0, 0.5, 2, float("inf")))
    s = Summary("live_size_bytes", "Sizes.", ["path"])
    gauges = [Gauge("live_gauge_" + m, "Gauge in mode " + m, ["path"], multiprocess_mode=m) for m in MODES]
    for i in range(40 + 7 * n):
        p = rnd.choice(VALUES)
        c.labels(p, str(rnd.choice([200, 404, 500]))).inc(rnd.choice([1, 0.5, 0.1, 3]))
        c0.inc()
        h.labels(p).observe(rnd.random() * 3)
        hc.observe(rnd.uniform(-2, 3))
        s.labels(p).observe(rnd.randint(0, 10000) / 7)
        for g in gauges:
            g.labels(p).set(rnd.uniform(-100, 100))
            if i % 5 == 0:
                g.labels(p).inc(1.25)
    os._exit(0)

pids = []
for n in range(workers):
    pid = os.fork()
    if pid == 0:
        work(n)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
mark_process_dead(pids[0], out)

exact, _ = mp_expect.exact(sorted(glob.glob(os.path.join(out, "*.db"))))
sys.stdout.buffer.write(exact)
`

// TestMultiprocLiveConformance: Debian's Python and prometheus_client write a directory
// with real worker processes and merge it (sums exact); our merge of the same files must be
// the same to the bit.
func TestMultiprocLiveConformance(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s (with python3-prometheus-client) is required: %v", python, err)
	}
	dir := filepath.Join(t.TempDir(), "mp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", mpLivePython, dir, "5", testdata)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	expo, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	want, err := p.TextToMetricFamilies(bytes.NewReader(expo))
	if err != nil {
		t.Fatalf("parsing Python's exposition: %v\n%s", err, expo)
	}
	if len(want) != 13 || !strings.Contains(string(expo), `path="new\nline"`) {
		t.Fatalf("unexpected Python output (%d families):\n%s", len(want), expo)
	}
	m := newTestMultiproc(dir, multiproc.Options{})
	fams := mpGather(t, m)
	mpCompareFamilies(t, mpAppFamilies(fams), want)
	mpCompareFamilies(t, mpAppFamilies(mpTextRoundTrip(t, fams)), want)
}
