"""The demo's Flask application, served by uWSGI (behind nginx) and by gunicorn.

It counts its requests with prometheus_client in multiprocess mode: every worker process
writes its own files under PROMETHEUS_MULTIPROC_DIR (set by uwsgi.ini and gunicorn.conf.py),
and wsgi_exporter merges them. The application serves no /metrics route of its own.

Routes: /            answers at once
        /slow?s=0.5  sleeps s seconds (at most 10)
        /error       raises: Flask answers 500
        /raise       raises out of the WSGI callable: the server counts an exception
        anything else: 404
"""
import time

from flask import Flask, abort, request
from prometheus_client import Counter, Histogram

app = Flask(__name__)

REQUESTS = Counter("app_requests", "Requests answered by the demo application.", ["route", "code"])
LATENCY = Histogram("app_request_duration_seconds", "Time the demo application took to answer.",
                    ["route"], buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


@app.before_request
def start_timer():
    request.environ["demo.start"] = time.perf_counter()


@app.after_request
def count(response):
    route = request.url_rule.rule if request.url_rule else "unknown"
    REQUESTS.labels(route=route, code=str(response.status_code)).inc()
    LATENCY.labels(route=route).observe(time.perf_counter() - request.environ["demo.start"])
    return response


@app.route("/")
def index():
    return "hello from the wsgi_exporter demo\n"


@app.route("/slow")
def slow():
    time.sleep(min(float(request.args.get("s", "0.5")), 10.0))
    return "slept\n"


@app.route("/error")
def error():
    abort(500)


class RaiseMiddleware:
    """/raise raises out of the WSGI callable, past Flask's error handling, as a crashing
    application would: uWSGI counts it in uwsgi_worker_exceptions_total, gunicorn logs it
    (gunicorn_statsd_log_messages_total{level="exception"}) and answers 500."""

    def __init__(self, wrapped):
        self.wrapped = wrapped

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/raise":
            raise RuntimeError("demo: /raise")
        return self.wrapped(environ, start_response)


app.wsgi_app = RaiseMiddleware(app.wsgi_app)
