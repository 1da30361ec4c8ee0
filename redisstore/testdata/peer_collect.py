"""Times gunicorn-prometheus-exporter's own Redis collector (the Python sidecar's read) for
BenchmarkRead, from a source checkout of that project (it cannot be installed here):

    PEER_SRC=/path/to/gunicorn-prometheus-exporter/src python3 peer_collect.py PORT PASSWORD N

Prints "best_seconds B median_seconds M cpu_seconds C samples S": collect + generate_latest,
N runs (wall: best and median; CPU of this process: median).
"""
import os
import sys
import time
import types

sys.path.insert(0, os.environ["PEER_SRC"])
sys.modules.setdefault("psutil", types.ModuleType("psutil"))  # imported, unused by the read
port, password, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ.update({
    "REDIS_ENABLED": "true", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": port,
    "REDIS_PASSWORD": password, "PROMETHEUS_BIND_ADDRESS": "127.0.0.1",
    "PROMETHEUS_METRICS_PORT": "9999", "GUNICORN_WORKERS": "1",
    "PROMETHEUS_MULTIPROC_DIR": os.environ.get("TMPDIR", "/tmp"),
})
import logging  # noqa: E402

logging.disable(logging.CRITICAL)
import redis  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from gunicorn_prometheus_exporter.backend.core.collector import RedisMultiProcessCollector  # noqa: E402

client = redis.Redis(host="127.0.0.1", port=int(port), password=password)
reg = CollectorRegistry()
RedisMultiProcessCollector(reg, redis_client=client, redis_key_prefix="gunicorn")
times, cpus = [], []
for _ in range(n):
    t, c = time.perf_counter(), time.process_time()
    out = generate_latest(reg)
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
times.sort()
cpus.sort()
samples = sum(1 for line in out.splitlines() if line and not line.startswith(b"#"))
print("best_seconds %.4f median_seconds %.4f cpu_seconds %.4f samples %d" % (times[0], times[len(times) // 2], cpus[len(cpus) // 2], samples))
