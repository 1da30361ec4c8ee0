"""Real prometheus_client worker processes writing a multiprocess directory phase by phase,
for collector/multiproc_dead_test.go (run with Debian's /usr/bin/python3).

usage: mp_scenario.py DIR

Workers are forked processes that create their metrics after the fork (so each writes its own
files, as gunicorn and uWSGI workers do) and then wait for commands on a pipe. "Dead" workers
write and exit; most of them use a process identifier above any pid_max (2^22), so their pid
can never be alive. After each phase the script prints one JSON line (the phase's name, the
exact merge of the directory as mp_expect.exact computes it, once with every file and once
without the live* gauge files of dead writers, and counts of the dead writers' files) and
waits for a line on stdin before the next phase. Phases:

  start    3 live workers, 6 dead workers (ids above pid_max), 2 "mortal" live workers
  mortal   the 2 mortal workers exit without writing anything more
  reuse    a new worker is forked with the first mortal's pid (written to ns_last_pid, as
           root), reopens its files and writes on; the live workers write more
  wipe     every worker exits, every file is deleted; 2 live and 3 dead workers start afresh
"""
import glob
import json
import os
import random
import sys

out = sys.argv[1]
os.environ["PROMETHEUS_MULTIPROC_DIR"] = out
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from prometheus_client import Counter, Gauge, Histogram, Summary, values  # noqa: E402

import mp_expect  # noqa: E402

MODES = ["all", "liveall", "min", "max", "sum", "livesum", "livemin", "livemax"]
PATHS = ["plain", "ünïcödé", 'quote"d', "back\\slash", "new\nline", ""]
DEAD = 5000000  # above any pid_max
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def metrics():
    return {
        "c": Counter("sc_requests", "Requests.", ["path", "code"]),
        "f": Counter("sc_seconds", "Float counter.", ["path"]),
        "h": Histogram("sc_latency_seconds", "Latency.", ["path"]),
        "hn": Histogram("sc_signed", "Signed buckets.", buckets=(-1, 0, 0.5, 2, float("inf"))),
        "s": Summary("sc_size_bytes", "Sizes.", ["path"]),
        "g": [Gauge("sc_gauge_" + m, "Gauge " + m, ["path"], multiprocess_mode=m) for m in MODES],
    }


def work(ms, rnd, n):
    for _ in range(n):
        p = rnd.choice(PATHS)
        ms["c"].labels(p, str(rnd.choice([200, 404, 500]))).inc(rnd.choice([1, 2, 5]))
        ms["f"].labels(p).inc(rnd.choice([0.1, 0.25, 1.7, 3e-9]))
        ms["h"].labels(p).observe(rnd.random() * 3)
        ms["hn"].observe(rnd.uniform(-2, 3))
        ms["s"].labels(p).observe(rnd.randint(0, 10000) / 7)
        for g in ms["g"]:
            g.labels(p).set(rnd.uniform(-100, 100))


class Worker:
    def __init__(self, ident=None, seed=0, n=20, pid=None):
        self.ident = ident
        cr, self.cw = os.pipe()
        self.ar, aw = os.pipe()
        child = self._fork(pid)
        if child == 0:
            os.close(self.cw)
            os.close(self.ar)
            if ident is not None:
                values.ValueClass = values.MultiProcessValue(lambda: ident)
            ms = metrics()
            rnd = random.Random(seed)
            work(ms, rnd, n)
            os.write(aw, b"k")
            f = os.fdopen(cr)
            for line in f:
                cmd = line.split()
                if cmd[0] == "work":
                    work(ms, rnd, int(cmd[1]))
                    os.write(aw, b"k")
                else:
                    os._exit(0)
            os._exit(0)
        os.close(cr)
        os.close(aw)
        self.pid = child
        self.wait_ack()

    def _fork(self, want):
        if want is None:
            return os.fork()
        # Rewind the kernel's pid counter to want - 1 and fork; put the counter back right
        # after, so that the processes forked later (ours and the machine's) do not land on
        # the other dead writers' pids. Another process may fork in between and take want:
        # try again.
        with open(NS_LAST_PID) as f:
            saved = int(f.read())
        try:
            for _ in range(2000):
                with open(NS_LAST_PID, "w") as f:
                    f.write(str(want - 1))
                child = os.fork()
                if child == 0:
                    if os.getpid() != want:
                        os._exit(3)
                    return 0
                if child == want:
                    return child
                os.waitpid(child, 0)
        finally:
            if os.getpid() != want:
                with open(NS_LAST_PID) as f:
                    now = int(f.read())
                with open(NS_LAST_PID, "w") as f:
                    f.write(str(max(saved, now)))
        sys.stderr.write("mp_scenario: could not fork with pid %d (taken by another process?)\n" % want)
        raise SystemExit(1)

    def wait_ack(self):
        if os.read(self.ar, 1) != b"k":
            raise SystemExit("worker %d died" % self.pid)

    def cmd(self, line):
        os.write(self.cw, (line + "\n").encode())

    def work(self, n):
        self.cmd("work %d" % n)
        self.wait_ack()

    def exit(self):
        self.cmd("exit")
        os.waitpid(self.pid, 0)
        os.close(self.cw)
        os.close(self.ar)

    def id(self):
        return str(self.ident if self.ident is not None else self.pid)


dead_ids = set()


def report(phase):
    files = sorted(glob.glob(os.path.join(out, "*.db")))
    dead_files = [f for f in files if os.path.basename(f)[:-3].split("_")[-1] in dead_ids]
    dead_live = [f for f in dead_files if os.path.basename(f).startswith("gauge_live")]
    exact, _ = mp_expect.exact(files)
    exact_drop, _ = mp_expect.exact([f for f in files if f not in dead_live])
    print(json.dumps({
        "phase": phase,
        "exact": exact.decode(),
        "exact_drop": exact_drop.decode(),
        "files": len(files),
        "dead_files": len(dead_files),
        "dead_live_files": len(dead_live),
        "dead_writers": len({os.path.basename(f)[:-3].split("_")[-1] for f in dead_files}),
    }), flush=True)
    if sys.stdin.readline().strip() != "next":
        raise SystemExit("stopped")


def main():
    live = [Worker(seed=i) for i in range(3)]
    for i in range(6):
        w = Worker(ident=DEAD + i, seed=10 + i, n=15 + i)
        w.exit()
        dead_ids.add(w.id())
    mortal = [Worker(seed=20 + i, n=25) for i in range(2)]
    report("start")

    for w in mortal:
        w.exit()
        dead_ids.add(w.id())
    report("mortal")

    reborn = Worker(seed=30, n=10, pid=mortal[0].pid)
    dead_ids.discard(reborn.id())
    for w in live:
        w.work(7)
    report("reuse")

    for w in live + [reborn]:
        w.exit()
    for f in glob.glob(os.path.join(out, "*.db")):
        os.remove(f)
    dead_ids.clear()
    live = [Worker(seed=40 + i, n=12) for i in range(2)]
    for i in range(3):
        w = Worker(ident=DEAD + 100 + i, seed=50 + i, n=9)
        w.exit()
        dead_ids.add(w.id())
    report("wipe")
    for w in live:
        w.exit()


main()
