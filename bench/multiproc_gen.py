#!/usr/bin/python3
"""Benchmark helper for bench/multiproc.sh (run with Debian's /usr/bin/python3).

gen:  write a prometheus_client multiprocess directory of W workers x about S series, one
      file per pid and type, with the client's own MmapedDict and mmap_key (what forked
      workers would write, without forking).
time: time the client's MultiProcessCollector + generate_latest on a directory; prints
      "python_seconds <best of N>" and the exposition's size.
dead: the directory of an app with --live live workers and --dead dead ones, 53 entries each
      (a Flask-like app: requests_total by method, endpoint and status, 16 series; a
      request latency histogram for 2 label sets, 32 entries; an in-progress gauge in livesum
      mode, 5 series), one counter, histogram and gauge file per worker. Every worker is a
      forked process that creates its metrics with the client after the fork, as gunicorn
      and uWSGI workers do. The dead ones use a process identifier above any pid_max (2^22),
      so they can never be alive, and exit; the live ones stay alive (paused) until killed:
      their pids are printed as "live_pids P1,P2,...".
"""
import argparse
import glob
import os
import random
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0",
           "2.5", "5.0", "7.5", "10.0", "+Inf"]
METHODS = ["GET", "POST", "PUT", "DELETE"]


def keys(series):
    """Return {file kind: [keys]} totalling about `series` entries per worker."""
    out = {"counter": [], "histogram": [], "summary": [], "gauge_livesum": [], "gauge_all": []}
    n_counter = series * 4 // 10
    n_hist = series * 4 // 10 // (len(BUCKETS) + 1)
    n_summary = series // 20 // 2
    n_gauge = series // 10
    n_all = series // 100
    for i in range(n_counter):
        fam = "app_requests_%d" % (i % 40)
        labels = {"method": METHODS[i % 4], "path": "/api/v1/resource%d/{id}" % i, "status": str(200 + i % 5)}
        out["counter"].append(mmap_key(fam, fam + "_total", list(labels), list(labels.values()), "Requests of family %d." % (i % 40)))
    for i in range(n_hist):
        fam = "app_latency_%d_seconds" % (i % 10)
        base = {"method": METHODS[i % 4], "path": "/api/v1/resource%d/{id}" % i}
        for le in BUCKETS:
            labels = dict(base, le=le)
            out["histogram"].append(mmap_key(fam, fam + "_bucket", list(labels), list(labels.values()), "Latency %d." % (i % 10)))
        out["histogram"].append(mmap_key(fam, fam + "_sum", list(base), list(base.values()), "Latency %d." % (i % 10)))
    for i in range(n_summary):
        fam = "app_size_%d_bytes" % (i % 5)
        labels = {"path": "/p%d" % i}
        for suffix in ("_count", "_sum"):
            out["summary"].append(mmap_key(fam, fam + suffix, list(labels), list(labels.values()), "Sizes."))
    for i in range(n_gauge):
        fam = "app_in_progress_%d" % (i % 10)
        labels = {"path": "/g%d" % i}
        out["gauge_livesum"].append(mmap_key(fam, fam, list(labels), list(labels.values()), "In progress."))
    for i in range(n_all):
        labels = {"slot": str(i)}
        out["gauge_all"].append(mmap_key("app_worker_memory_bytes", "app_worker_memory_bytes", list(labels), list(labels.values()), "Memory."))
    return out


def gen(args):
    os.makedirs(args.out, exist_ok=True)
    for f in glob.glob(os.path.join(args.out, "*.db")):
        os.remove(f)
    ks = keys(args.series)
    rnd = random.Random(1)
    pid0 = 100000
    for w in range(args.workers):
        for kind, klist in ks.items():
            d = MmapedDict(os.path.join(args.out, "%s_%d.db" % (kind, pid0 + w)))
            for k in klist:
                d.write_value(k, float(rnd.randint(0, 1000)) if kind != "gauge_all" else rnd.random() * 1e8)
            d.close()
    total = sum(len(v) for v in ks.values())
    size = sum(os.path.getsize(f) for f in glob.glob(os.path.join(args.out, "*.db")))
    print("entries_per_worker %d files %d dir_bytes %d" % (total, args.workers * len(ks), size))


def timeit(args):
    best = None
    cpu_best = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        cpu_start = time.process_time()
        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=args.out)
        body = generate_latest(reg)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        best = elapsed if best is None else min(best, elapsed)
        cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
    print("python_seconds %.4f python_cpu_seconds %.4f exposition_bytes %d" % (best, cpu_best, len(body)))


ENDPOINTS = ["/", "/api/items", "/api/items/{id}", "/login", "/health"]


def app_metrics():
    from prometheus_client import Counter, Gauge, Histogram
    return (Counter("app_requests", "Requests.", ["method", "endpoint", "status"]),
            Histogram("app_request_duration_seconds", "Request latency.", ["method", "endpoint"]),
            Gauge("app_requests_in_progress", "Requests in progress.", ["endpoint"], multiprocess_mode="livesum"))


def app_work(seed):
    """Writes one worker's 53 entries."""
    reqs, lat, prog = app_metrics()
    rnd = random.Random(seed)
    for i in range(16):
        reqs.labels(METHODS[i % 2], ENDPOINTS[i % 4], str([200, 404][i // 8])).inc(rnd.randint(1, 500))
    for method, endpoint in (("GET", "/api/items"), ("POST", "/api/items")):
        for _ in range(20):
            lat.labels(method, endpoint).observe(rnd.random() * 2)
    for e in ENDPOINTS:
        prog.labels(e).set(rnd.randint(0, 3))


def dead(args):
    import signal
    from prometheus_client import values
    os.makedirs(args.out, exist_ok=True)
    for f in glob.glob(os.path.join(args.out, "*.db")):
        os.remove(f)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = args.out
    for d in range(args.dead):
        pid = os.fork()
        if pid == 0:
            ident = 5000000 + d  # above any pid_max: never alive
            values.ValueClass = values.MultiProcessValue(lambda: ident)
            app_work(d)
            os._exit(0)
        os.waitpid(pid, 0)
    live = []
    for w in range(args.live):
        r, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            values.ValueClass = values.MultiProcessValue()
            app_work(1000000 + w)
            os.write(wr, b"k")
            os.close(wr)
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            while True:
                signal.pause()
        os.close(wr)
        os.read(r, 1)
        os.close(r)
        live.append(pid)
    files = glob.glob(os.path.join(args.out, "*.db"))
    size = sum(os.path.getsize(f) for f in files)
    print("files %d dir_bytes %d live_pids %s" % (len(files), size, ",".join(map(str, live))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["gen", "time", "dead"])
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--series", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--live", type=int, default=4)
    p.add_argument("--dead", type=int, default=0)
    args = p.parse_args()
    {"gen": gen, "time": timeit, "dead": dead}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
