// Package gunicorn reads what a running gunicorn exposes without any change to the
// application: its master and worker processes under /proc (proc*.go) and the statsd
// datagrams `gunicorn --statsd-host` sends (statsd*.go). It returns typed data and knows
// nothing about Prometheus metrics; the collector package turns that data into metrics.
package gunicorn
