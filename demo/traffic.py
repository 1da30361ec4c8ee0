#!/usr/bin/python3
"""Bounded traffic for the demo: a fixed mix of requests sent to each target in turn.

Every cycle of 20 requests holds 14 to /, 2 to /slow (0.3 s and 1 s), 2 to an unknown path
(404), 1 to /error (500) and 1 to /raise (an exception out of the WSGI callable). Every
--burst-every seconds, 6 slow requests at once hold every uWSGI worker for 3 s. It stops after
--requests requests or --duration seconds, whichever comes first, and writes the status codes
it received per target and path to --summary (JSON) when it ends:
{"sent": N, "codes": {"uwsgi": {"/": {"200": 70}, "/raise": {"502": 5}, ...}, "burst": {...}}}.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

MIX = ["/"] * 7 + ["/slow?s=0.3", "/nope"] + ["/"] * 7 + ["/error", "/slow?s=1", "/nope/again", "/raise"]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            r.read()
            return str(r.status)
    except urllib.error.HTTPError as e:
        return str(e.code)
    except Exception:  # refused, reset, timed out
        return "error"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", action="append", required=True, help="name=base URL; repeatable")
    p.add_argument("--rate", type=float, default=5, help="requests per second, all targets together")
    p.add_argument("--requests", type=int, default=0, help="stop after this many (0: no limit)")
    p.add_argument("--duration", type=float, default=3600, help="stop after this many seconds")
    p.add_argument("--burst-every", type=float, default=60, help="seconds between bursts of slow requests (0: none)")
    p.add_argument("--burst-target", default="", help="name of the target the bursts go to (default: the first)")
    p.add_argument("--summary", required=True)
    a = p.parse_args()
    targets = [t.split("=", 1) for t in a.target]
    burst_to = dict(targets).get(a.burst_target) or targets[0][1]

    counts = {name: {} for name, _ in targets}
    counts["burst"] = {}  # the bursts' slow requests, counted apart
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(32)  # requests in flight at most
    threads = []

    def send(name, base, path):
        try:
            code = get(base + path)
            with lock:
                by_code = counts[name].setdefault(path.split("?")[0], {})
                by_code[code] = by_code.get(code, 0) + 1
        finally:
            slots.release()

    def launch(name, base, path):
        slots.acquire()
        t = threading.Thread(target=send, args=(name, base, path), daemon=True)
        t.start()
        threads.append(t)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start = time.monotonic()
    next_burst = start + a.burst_every if a.burst_every > 0 else float("inf")
    n = 0
    while not stop.is_set():
        now = time.monotonic()
        if now - start >= a.duration or (a.requests and n >= a.requests):
            break
        if now >= next_burst:
            for _ in range(6):
                launch("burst", burst_to, "/slow?s=3")
            next_burst += a.burst_every
        name, base = targets[n % len(targets)]
        launch(name, base, MIX[(n // len(targets)) % len(MIX)])
        n += 1
        stop.wait(max(0.0, start + n / a.rate - time.monotonic()))
    for t in threads:
        t.join(timeout=20)
    with open(a.summary + ".tmp", "w") as f:
        json.dump({"sent": n, "codes": counts}, f, indent=1, sort_keys=True)
    os.replace(a.summary + ".tmp", a.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
