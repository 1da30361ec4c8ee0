package multiproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// DefaultHelp is the help text of entries written by clients up to 0.15, whose keys have none.
const DefaultHelp = "Multiprocess metric"

// Label is one label pair.
type Label struct {
	Name, Value string
}

// Key is a parsed entry key: [metric_name, sample_name, {labels}, help].
type Key struct {
	Metric string  // the metric's name (counters without _total)
	Sample string  // the sample's name, e.g. x_total, x_bucket, x_sum
	Labels []Label // sorted by name
	Help   string

	raw string // the key as written

	// Derived once, used by the merge.
	labelsID string  // identity of Labels
	noLeID   string  // identity of Labels without le
	noLe     []Label // Labels without le
	le       float64 // the le label as a number
	hasLe    bool
	leErr    bool // an le label that is not a number
	noPidID  string
	noPid    []Label // Labels without any pid
	suffix   string  // Sample after Metric ("_total", "_sum", ...), or "-" when Sample does not start with Metric
	merge    mergeCache
	fold     mergeCache // the store's resolution (its epoch is the store's generation)
	// refs counts the store's entries of this key; the key cache keeps such keys. used is the
	// epoch of the last merge that resolved it. Both are atomic: the key cache's eviction reads
	// them from the read's workers while the merge (and the store's fold) changes them.
	refs atomic.Int32
	used atomic.Uint64
}

// ParseKey parses an entry key. It accepts the 4-element keys of current clients and the
// 3-element keys of clients up to 0.15 (whose help is DefaultHelp).
func ParseKey(raw []byte) (*Key, error) {
	return parseKey(raw, string(raw))
}

// parseKey is ParseKey of raw, whose copy as a string is s (kept as the key's raw form).
func parseKey(raw []byte, s string) (*Key, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("key is not UTF-8")
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("key is not a JSON array: %w", err)
	}
	if len(parts) != 3 && len(parts) != 4 {
		return nil, fmt.Errorf("key has %d elements, want 3 or 4", len(parts))
	}
	k := &Key{Help: DefaultHelp}
	if err := json.Unmarshal(parts[0], &k.Metric); err != nil {
		return nil, fmt.Errorf("metric name: %w", err)
	}
	if err := json.Unmarshal(parts[1], &k.Sample); err != nil {
		return nil, fmt.Errorf("sample name: %w", err)
	}
	var labels map[string]string
	if err := json.Unmarshal(parts[2], &labels); err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	if labels == nil && string(parts[2]) != "{}" {
		return nil, errors.New("labels: not an object")
	}
	if len(parts) == 4 {
		if err := json.Unmarshal(parts[3], &k.Help); err != nil {
			return nil, fmt.Errorf("help: %w", err)
		}
	}
	if k.Metric == "" || k.Sample == "" {
		return nil, errors.New("empty metric or sample name")
	}
	k.Labels = make([]Label, 0, len(labels))
	for n, v := range labels {
		k.Labels = append(k.Labels, Label{n, v})
	}
	slices.SortFunc(k.Labels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	k.raw = s
	k.derive()
	return k, nil
}

func labelsID(ls []Label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name)
		b.WriteByte(0xff)
		b.WriteString(l.Value)
		b.WriteByte(0xfe)
	}
	return b.String()
}

func without(ls []Label, name string) []Label {
	if !slices.ContainsFunc(ls, func(l Label) bool { return l.Name == name }) {
		return ls
	}
	return slices.DeleteFunc(slices.Clone(ls), func(l Label) bool { return l.Name == name })
}

func (k *Key) derive() {
	k.labelsID = labelsID(k.Labels)
	k.noLe = without(k.Labels, "le")
	k.noLeID = k.labelsID
	if len(k.noLe) != len(k.Labels) {
		k.noLeID = labelsID(k.noLe)
	}
	for _, l := range k.Labels {
		if l.Name == "le" {
			k.hasLe = true
			f, err := parsePyFloat(l.Value)
			k.le, k.leErr = f, err != nil || f != f
		}
	}
	k.noPid = without(k.Labels, "pid")
	k.noPidID = k.labelsID
	if len(k.noPid) != len(k.Labels) {
		k.noPidID = labelsID(k.noPid)
	}
	k.suffix = "-"
	if rest, ok := strings.CutPrefix(k.Sample, k.Metric); ok {
		k.suffix = rest
	}
}

// parsePyFloat parses an le value as Python's float() does for what clients write ("0.5",
// "+Inf", "1e+010").
func parsePyFloat(s string) (float64, error) {
	return strconv.ParseFloat(strings.TrimSpace(s), 64)
}
