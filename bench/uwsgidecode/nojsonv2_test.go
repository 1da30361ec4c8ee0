//go:build !goexperiment.jsonv2

package uwsgidecode

import "github.com/wsgi-exporter/wsgi_exporter/uwsgi"

// extraDecoders is empty without GOEXPERIMENT=jsonv2.
var extraDecoders []struct {
	name   string
	decode func([]byte) (*uwsgi.Stats, error)
}
