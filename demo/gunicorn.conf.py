"""The demo's gunicorn configuration (gunicorn -c gunicorn.conf.py app:app).

scripts/demo.sh sets DEMO_STATE (its state directory), DEMO_GUNICORN_BIND and DEMO_STATSD in
the environment.
"""
import os
import shutil

state = os.environ["DEMO_STATE"]
bind = os.environ["DEMO_GUNICORN_BIND"]
workers = 4
# the pidfile wsgi_exporter reads the master and its workers from (--gunicorn.pidfile)
pidfile = os.path.join(state, "run", "gunicorn.pid")
# gunicorn's own statsd output, sent to wsgi_exporter (--gunicorn.statsd-listen-address)
statsd_host = os.environ["DEMO_STATSD"]
timeout = 30

# prometheus_client's multiprocess directory, read by wsgi_exporter --multiproc.dir. Set here,
# in the master, so that every worker inherits it.
multiproc_dir = os.path.join(state, "multiproc", "gunicorn")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir


def on_starting(server):
    # Wipe the directory at every start, before any worker writes into it.
    shutil.rmtree(multiproc_dir, ignore_errors=True)
    os.makedirs(multiproc_dir)


def child_exit(server, worker):
    # prometheus_client's advice for live* gauges: forget a dead worker's values.
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
