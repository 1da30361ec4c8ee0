"""Expected merges of a prometheus_client multiprocess directory, for the Go tests.

exact(files) merges the files (in the order given: sorted file names) as the client's
MultiProcessCollector does (its own _read_metrics parses the files), but adds each sum's terms
with math.fsum: the exact sum rounded once, which is what wsgi_exporter serves. It also checks
that the client's own merge of the same files stays within the bound docs/multiproc.md states:
a sum of n terms x_i differs from the exact one by at most gamma(n) * sum(|x_i|), with
gamma(n) = n * 2^-53 / (1 - n * 2^-53); whole-number sums (bucket counts, counters incremented
by whole numbers) must be equal. It raises AssertionError otherwise.
"""
import math
from collections import defaultdict

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

U = 2.0 ** -53


def gamma(n):
    return n * U / (1 - n * U)


class _Fixed:
    def __init__(self, metrics):
        self.metrics = metrics

    def collect(self):
        return self.metrics


def _check(what, exact, seq, terms):
    if math.isnan(exact) and math.isnan(seq):
        return
    if exact == seq:
        return
    if all(float(x).is_integer() for x in terms) and abs(math.fsum(terms)) < 2 ** 53:
        raise AssertionError("%s: whole-number sum %r, Python %r" % (what, exact, seq))
    bound = gamma(len(terms)) * math.fsum(abs(x) for x in terms)
    if not abs(exact - seq) <= bound:
        raise AssertionError("%s: exact %r, Python %r, bound %r" % (what, exact, seq, bound))


def _seq(terms):
    acc = 0.0
    for x in terms:
        acc += x
    return acc


def exact(files):
    """Returns (exposition of the exact merge, exposition of the client's own merge)."""
    reg = CollectorRegistry()
    reg.register(_Fixed(list(MultiProcessCollector.merge(files, accumulate=True))))
    python = generate_latest(reg)

    metrics = MultiProcessCollector._read_metrics(files)
    for metric in metrics.values():
        terms = defaultdict(list)
        values = {}
        buckets = defaultdict(lambda: defaultdict(list))
        for s in metric.samples:
            name, labels, value = s.name, s.labels, s.value
            if metric.type == "gauge":
                key = (name, tuple(l for l in labels if l[0] != "pid"))
                mode = metric._multiprocess_mode
                if mode in ("min", "livemin"):
                    cur = values.setdefault(key, value)
                    if value < cur:
                        values[key] = value
                elif mode in ("max", "livemax"):
                    cur = values.setdefault(key, value)
                    if value > cur:
                        values[key] = value
                elif mode in ("sum", "livesum"):
                    terms[key].append(value)
                else:
                    values[(name, labels)] = value
            elif metric.type == "histogram":
                le = [v for n, v in labels if n == "le"]
                if le:
                    buckets[tuple(l for l in labels if l[0] != "le")][float(le[0])].append(value)
                else:
                    terms[(name, labels)].append(value)
            else:
                terms[(name, labels)].append(value)
        samples = dict(values)
        for key, ts in terms.items():
            samples[key] = math.fsum(ts)
            _check("%s%s" % key, samples[key], _seq(ts), ts)
        for labels, per_le in buckets.items():
            acc = 0.0
            for le, ts in sorted(per_le.items()):
                total = math.fsum(ts)
                _check("%s_bucket%s le=%r" % (metric.name, labels, le), total, _seq(ts), ts)
                acc += total
                samples[(metric.name + "_bucket", labels + (("le", floatToGoString(le)),))] = acc
            samples[(metric.name + "_count", labels)] = acc
        metric.samples = [Sample(n, dict(l), v) for (n, l), v in samples.items()]
    reg = CollectorRegistry()
    reg.register(_Fixed(list(metrics.values())))
    return generate_latest(reg), python
