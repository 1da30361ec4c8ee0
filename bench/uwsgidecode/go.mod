// A module of its own so that the decoders compared here never become dependencies of
// wsgi_exporter. See docs/benchmarks.md, "uWSGI stats decoder".
module github.com/wsgi-exporter/wsgi_exporter/bench/uwsgidecode

go 1.26.8

require github.com/wsgi-exporter/wsgi_exporter v0.0.0

require github.com/goccy/go-json v0.12.0

replace github.com/wsgi-exporter/wsgi_exporter => ../..
