//go:build goexperiment.jsonv2

package uwsgidecode

import (
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"

	"github.com/wsgi-exporter/wsgi_exporter/uwsgi"
)

// extraDecoders adds encoding/json/v2 (Go 1.26 has it only with GOEXPERIMENT=jsonv2), with
// encoding/json's case-insensitive key matching so that it reads what the others read.
var extraDecoders = []struct {
	name   string
	decode func([]byte) (*uwsgi.Stats, error)
}{
	{"jsonv2", viaReflection(func(b []byte, v any) error {
		return jsonv2.Unmarshal(b, v, jsonv2.MatchCaseInsensitiveNames(true), jsontext.AllowDuplicateNames(true))
	}, func(err error) bool {
		var se *jsontext.SyntacticError
		return errors.As(err, &se)
	})},
}
