"""A test writer of gunicorn-prometheus-exporter's Redis store.

Written for wsgi_exporter's tests from a reading of gunicorn-prometheus-exporter v0.2.4
(github.com/Agent-Hellboy/gunicorn-prometheus-exporter, commit 5a6baca), files
src/gunicorn_prometheus_exporter/backend/core/{values,client,dict}.py: the key names, the
hash fields, the Python float text of the values, the metadata written once, the TTL set on
every write, and the order in which a value is created, read and written (which leaves a
bare "gauge" key for livesum, livemin and livemax gauges). It is not that project's code;
the project cannot be installed here.

Like that project it replaces prometheus_client's value class, so that real
prometheus_client metrics (Debian's python3-prometheus-client) drive it. With --files DIR
every value is also written to a multiprocess directory by prometheus_client's own class,
from the same process: the two stores then hold the same samples.

Usage: gpe_writer.py --socket PATH | --url URL  [--db N] [--password-file FILE]
                     [--prefix gunicorn] [--ttl 300] [--files DIR]
Commands on stdin, one per line; each is answered with one line on stdout:
    pid                  -> the process id
    count N              -> N requests of the fixed e2e set (see count below); "ok"
    work SEED ROUNDS     -> a seeded random mix over every metric type and mode; "ok"
    exit                 -> exits at once (os._exit), like a killed worker
"""

import argparse
import hashlib
import json
import os
import random
import sys
import time

import redis

ap = argparse.ArgumentParser()
ap.add_argument("--socket")
ap.add_argument("--url")
ap.add_argument("--db", type=int, default=0)
ap.add_argument("--password-file")
ap.add_argument("--prefix", default="gunicorn")
ap.add_argument("--ttl", type=int, default=300)
ap.add_argument("--files")
args = ap.parse_args()

if args.files:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = args.files

from prometheus_client import Counter, Gauge, Histogram, Summary, values  # noqa: E402

password = None
if args.password_file:
    with open(args.password_file) as f:
        password = f.read().rstrip("\n")
if args.socket:
    R = redis.Redis(unix_socket_path=args.socket, db=args.db, password=password)
else:
    R = redis.Redis.from_url(args.url, db=args.db, password=password)
PREFIX = args.prefix.rstrip(":")  # the storage manager strips trailing colons
TTL = args.ttl  # 0: no expiry (REDIS_TTL_DISABLED)


def server_now():
    sec, usec = R.time()
    return sec + usec / 1_000_000.0


def name_of(key, typ, mode, kind):
    digest = hashlib.md5(key.encode("utf-8")).hexdigest()
    type_mode = f"{typ}_{mode}" if typ == "gauge" and mode else typ
    return f"{PREFIX}:{type_mode}:{os.getpid()}:{kind}:{digest}"


def expire(name):
    if TTL > 0:
        R.expire(name, TTL)


def ensure_metadata(key, typ, mode):
    meta = name_of(key, typ, mode, "meta")
    if R.hgetall(meta):
        return
    R.hset(meta, mapping={"typ": typ, "multiprocess_mode": mode, "created_at": str(server_now())})
    expire(meta)


def mode_from_metadata(key, typ):
    found = R.hgetall(name_of(key, typ, "", "meta"))
    if found and found.get(b"multiprocess_mode"):
        return found[b"multiprocess_mode"].decode()
    if typ == "gauge":
        # The writer tries these modes only: livesum, livemin and livemax are not found.
        for mode in ["all", "liveall", "live", "max", "min", "sum"]:
            if R.hgetall(name_of(key, typ, mode, "meta")):
                return mode
    return ""


def touch_metadata(key, typ, mode):
    meta = name_of(key, typ, mode, "meta")
    R.hsetnx(meta, "original_key", key)
    R.hsetnx(meta, "created_at", str(server_now()))
    expire(meta)


def init_value(key, typ):
    mode = mode_from_metadata(key, typ)
    metric = name_of(key, typ, mode, "metric")
    R.hset(metric, mapping={"value": 0.0, "timestamp": 0.0, "updated_at": server_now()})
    expire(metric)
    touch_metadata(key, typ, mode)


def read_value(key, typ, mode):
    if not mode:
        mode = mode_from_metadata(key, typ)
    metric = name_of(key, typ, mode, "metric")
    v, ts = R.hget(metric, "value"), R.hget(metric, "timestamp")
    if v is None or ts is None:
        init_value(key, typ)
        return 0.0, 0.0
    return float(v), float(ts)


def write_value(key, v, ts, typ, mode):
    if not mode:
        mode = mode_from_metadata(key, typ)
    metric = name_of(key, typ, mode, "metric")
    R.hset(metric, mapping={"value": v, "timestamp": ts, "updated_at": server_now()})
    expire(metric)
    touch_metadata(key, typ, mode)


class RedisValue:
    _multiprocess = True

    def __init__(self, typ, metric_name, name, labelnames, labelvalues, help_text,
                 multiprocess_mode="", **_kwargs):
        self._typ, self._mode = typ, multiprocess_mode
        labels = dict(zip(labelnames, labelvalues))
        self._key = json.dumps([metric_name, name, labels, help_text], sort_keys=True)
        ensure_metadata(self._key, typ or "counter", multiprocess_mode or "all")
        self._value, self._timestamp = read_value(self._key, typ, multiprocess_mode)

    def inc(self, amount=1):
        self._value += amount
        self._timestamp = 0.0
        write_value(self._key, self._value, self._timestamp, self._typ, self._mode)

    def set(self, value, timestamp=None):
        self._value = value
        self._timestamp = time.time() if timestamp is None else float(timestamp)
        write_value(self._key, self._value, self._timestamp, self._typ, self._mode)

    def set_exemplar(self, _exemplar):
        return

    def get(self):
        return self._value

    def get_timestamp(self):
        return self._timestamp

    def get_exemplar(self):
        return None


FileValue = values.ValueClass  # prometheus_client's: mmap files with --files, else in memory


class TeeValue:
    """Writes every value to the files and to Redis."""

    _multiprocess = True

    def __init__(self, *a, **kw):
        self._f = FileValue(*a, **kw)
        self._r = RedisValue(*a, **kw)

    def inc(self, amount=1):
        self._f.inc(amount)
        self._r.inc(amount)

    def set(self, value, timestamp=None):
        self._f.set(value)
        self._r.set(value, timestamp)

    def set_exemplar(self, exemplar):
        return

    def get(self):
        return self._f.get()

    def get_exemplar(self):
        return None


values.ValueClass = TeeValue if args.files else RedisValue

VALUES = ["plain", "ünïcödé", 'quote"d', "back\\slash", "new\nline", "emoji 🚀", "", "{braces}=,"]
MODES = ["all", "liveall", "min", "max", "sum", "livesum", "livemin", "livemax"]

# The fixed e2e set: one request is one increment of each.
requests = Counter("gpe_requests", "Requests served.", ["path", "code"])
latency = Histogram("gpe_latency_seconds", "Request latency.", ["path"], buckets=(0.1, 0.5, 1.0))
in_flight = Gauge("gpe_in_flight", "Requests in progress.", multiprocess_mode="livesum")
last_seen = Gauge("gpe_last_request", "Request count seen by this worker.", multiprocess_mode="all")
# The random mix.
c = Counter("mix_requests", "Requests \"served\" \\ by\nworkers ✓", ["path", "code"])
c0 = Counter("mix_plain_total", "No labels.")
h = Histogram("mix_latency_seconds", "Latency.", ["path"])
hc = Histogram("mix_custom", "Custom buckets.", buckets=(-1, 0, 0.5, 2, float("inf")))
s = Summary("mix_size_bytes", "Sizes.", ["path"])
gauges = [Gauge("mix_gauge_" + m, "Gauge in mode " + m, ["path"], multiprocess_mode=m) for m in MODES]
served = 0


def count(n):
    """n requests: each adds 1 to gpe_requests{path="/a",code="200"}, observes 0.25 in
    gpe_latency_seconds{path="/a"}, and sets gpe_last_request to the worker's total."""
    global served
    for _ in range(n):
        in_flight.inc()
        requests.labels("/a", "200").inc()
        latency.labels("/a").observe(0.25)
        served += 1
        last_seen.set(served)
        in_flight.dec()


def work(seed, rounds):
    rnd = random.Random(seed)
    for i in range(rounds):
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


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "pid":
        print(os.getpid(), flush=True)
    elif cmd[0] == "count":
        count(int(cmd[1]))
        print("ok", flush=True)
    elif cmd[0] == "work":
        work(int(cmd[1]), int(cmd[2]))
        print("ok", flush=True)
    elif cmd[0] == "exit":
        sys.stdout.flush()
        os._exit(0)
    else:
        print("unknown command", cmd[0], flush=True)
os._exit(0)
