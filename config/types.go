package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Duration is a duration written as Prometheus writes them: 500ms, 5s, 1m30s.
type Duration time.Duration

// UnmarshalYAML reads a duration; the error names the line, never echoes the value.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return posErrorf(n, "want a duration such as 5s or 500ms")
	}
	v, err := model.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return posErrorf(n, "want a duration such as 5s or 500ms")
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Prometheus does.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// Bytes is a size: a number of bytes, or with a unit: 64KiB, 32MiB, 1GiB.
type Bytes int64

// UnmarshalYAML reads a size; the error names the line, never echoes the value.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return posErrorf(n, "want a size such as 32MiB or 65536")
	}
	if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil && v >= 0 {
		*b = Bytes(v)
		return nil
	}
	v, err := units.ParseBase2Bytes(n.Value)
	if err != nil || v < 0 {
		return posErrorf(n, "want a size such as 32MiB or 65536")
	}
	*b = Bytes(v)
	return nil
}

// MarshalYAML writes the size in bytes.
func (b Bytes) MarshalYAML() (any, error) { return int64(b), nil }

// Secret holds a password read from a file. Every way of printing it prints a placeholder.
type Secret string

const secretPlaceholder = "<secret>"

// String hides the secret.
func (Secret) String() string { return secretPlaceholder }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return secretPlaceholder }

// Format hides the secret from every verb of the fmt package.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(secretPlaceholder)) }

// MarshalYAML hides the secret.
func (Secret) MarshalYAML() (any, error) { return secretPlaceholder, nil }

// MarshalText hides the secret from encoders (JSON, slog's text and JSON handlers).
func (Secret) MarshalText() ([]byte, error) { return []byte(secretPlaceholder), nil }

// Reveal returns the secret itself, for the client that sends it.
func (s Secret) Reveal() string { return string(s) }
