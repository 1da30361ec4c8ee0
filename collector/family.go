package collector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// Family defines one metric family: its full name, help, type and the labels a translation
// gives values for, in that order. Every series written through a source's Writer also gets
// the kind's source label (when the family is a kind's) and the source's constant labels
// (Config.Labels); the translation never passes those.
//
// Families are package-level variables, each defined in the file of its kind
// (<kind>_metrics.go), next to the translation that writes it. They are checked when defined:
// a bad definition panics at start-up, and every test run.
type Family struct {
	Name   string
	Help   string
	Type   dto.MetricType
	Labels []string // variable labels, in the order their values are given
	Unit   string   // OpenMetrics' # UNIT (and client_model's Unit); "" for none

	kind        string // the kind's name, "" for the core's own families
	sourceLabel string // added to every series: the kind's source label, or "" for none
	id          int    // index in allFamilies
}

// allFamilies holds every Family defined, by id, and by name (but for withLabels' variants).
var allFamilies struct {
	mu     sync.Mutex
	list   []*Family
	byName map[string]*Family
}

// newFamily defines a family of kind k (k.SourceLabel is added to its series; a zero Kind adds
// none). It panics on an invalid or duplicate definition.
func newFamily(k Kind, typ dto.MetricType, name, help string, labels ...string) *Family {
	f := &Family{Name: name, Help: help, Type: typ, Labels: labels, kind: k.Name, sourceLabel: k.SourceLabel}
	if err := f.check(); err != nil {
		panic(err)
	}
	allFamilies.mu.Lock()
	defer allFamilies.mu.Unlock()
	if allFamilies.byName == nil {
		allFamilies.byName = map[string]*Family{}
	}
	if prev := allFamilies.byName[name]; prev != nil {
		panic(fmt.Sprintf("metric family %s is defined twice", name))
	}
	f.id = len(allFamilies.list)
	allFamilies.list = append(allFamilies.list, f)
	allFamilies.byName[name] = f
	return f
}

// derived holds the families made by withLabels, by base family id and extra label names.
var derived struct {
	mu sync.Mutex
	m  map[string]*Family
}

// withLabels returns f with more variable labels after its own, for a kind whose label names
// are configured (the statsd tag labels). It is made once per set of names; its series merge
// with f's and other variants' in one family of the answer. It panics on an invalid name.
func (f *Family) withLabels(extra []string) *Family {
	if len(extra) == 0 {
		return f
	}
	key := strconv.Itoa(f.id) + "\xff" + strings.Join(extra, "\xff")
	derived.mu.Lock()
	defer derived.mu.Unlock()
	if d := derived.m[key]; d != nil {
		return d
	}
	d := &Family{Name: f.Name, Help: f.Help, Type: f.Type, Labels: append(slices.Clone(f.Labels), extra...),
		kind: f.kind, sourceLabel: f.sourceLabel}
	if err := d.check(); err != nil {
		panic(err)
	}
	allFamilies.mu.Lock()
	d.id = len(allFamilies.list)
	allFamilies.list = append(allFamilies.list, d)
	allFamilies.mu.Unlock()
	if derived.m == nil {
		derived.m = map[string]*Family{}
	}
	derived.m[key] = d
	return d
}

// gauge, counter, untyped and histogram define a family of kind k.
func gauge(k Kind, name, help string, labels ...string) *Family {
	return newFamily(k, dto.MetricType_GAUGE, name, help, labels...)
}

func counter(k Kind, name, help string, labels ...string) *Family {
	return newFamily(k, dto.MetricType_COUNTER, name, help, labels...)
}

func untyped(k Kind, name, help string, labels ...string) *Family {
	return newFamily(k, dto.MetricType_UNTYPED, name, help, labels...)
}

func histogram(k Kind, name, help string, labels ...string) *Family {
	return newFamily(k, dto.MetricType_HISTOGRAM, name, help, labels...)
}

// summary defines a summary family of kind k (written with Writer.summary: the core's own).
func summary(k Kind, name, help string, labels ...string) *Family {
	return newFamily(k, dto.MetricType_SUMMARY, name, help, labels...)
}

// withUnit sets f's unit, shown in OpenMetrics as client_golang's WithUnit shows it. It is
// for definitions only.
func (f *Family) withUnit(unit string) *Family {
	f.Unit = unit
	return f
}

// check validates a definition as client_golang's NewDesc would, plus: the source label is not
// among the variable labels, a histogram has no le label, and a counter's name ends in _total
// (untyped families keep a peer's name that lacks it).
func (f *Family) check() error {
	if !model.UTF8Validation.IsValidMetricName(f.Name) || !model.LegacyValidation.IsValidMetricName(f.Name) {
		return fmt.Errorf("%q is not a valid metric name", f.Name)
	}
	if f.Type == dto.MetricType_COUNTER && !strings.HasSuffix(f.Name, "_total") {
		return fmt.Errorf("counter %s does not end in _total", f.Name)
	}
	labels := slices.Clone(f.Labels)
	if f.sourceLabel != "" {
		labels = append(labels, f.sourceLabel)
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if !validLabelName(l) || !model.LegacyValidation.IsValidLabelName(l) {
			return fmt.Errorf("%s: %q is not a valid label name", f.Name, l)
		}
		if seen[l] {
			return fmt.Errorf("%s: label %s twice", f.Name, l)
		}
		if f.Type == dto.MetricType_HISTOGRAM && l == model.BucketLabel {
			return fmt.Errorf("%s: a histogram cannot have an le label", f.Name)
		}
		if f.Type == dto.MetricType_SUMMARY && l == model.QuantileLabel {
			return fmt.Errorf("%s: a summary cannot have a quantile label", f.Name)
		}
		seen[l] = true
	}
	return nil
}

// validLabelName is client_golang's rule for a label name: valid UTF-8, not empty, and not
// starting with the reserved "__".
func validLabelName(l string) bool {
	return model.UTF8Validation.IsValidLabelName(l) && !strings.HasPrefix(l, "__")
}

// kindFamilies returns the families of kind k.
func kindFamilies(k Kind) []*Family {
	allFamilies.mu.Lock()
	defer allFamilies.mu.Unlock()
	var out []*Family
	for _, f := range allFamilies.list {
		if f.kind == k.Name && k.Name != "" {
			out = append(out, f)
		}
	}
	return out
}

// familyCount is the number of families defined so far.
func familyCount() int {
	allFamilies.mu.Lock()
	defer allFamilies.mu.Unlock()
	return len(allFamilies.list)
}

// layout says where each label of a family's series comes from, in the sorted order of the
// label names the exposition wants: a variable label (index >= 0 into the values the
// translation gives), the source label (-1), or constant label j (-2-j).
type layout struct {
	names []*string // sorted label names (pointers into the Family or the source's labels)
	slots []int
}

type layoutKey struct {
	family int
	consts string // the source's constant label names, sorted and joined by 0xff
}

var layouts sync.Map // layoutKey -> *layout

// layoutFor returns the layout of f's series for a source whose constant labels are consts.
func layoutFor(f *Family, consts *sourceLabels) *layout {
	key := layoutKey{f.id, consts.sig}
	if l, ok := layouts.Load(key); ok {
		return l.(*layout)
	}
	type slot struct {
		name *string
		pos  int
	}
	var all []slot
	for i := range f.Labels {
		all = append(all, slot{&f.Labels[i], i})
	}
	if f.sourceLabel != "" {
		all = append(all, slot{&f.sourceLabel, -1})
	}
	for j := range consts.names {
		all = append(all, slot{&consts.names[j], -2 - j})
	}
	slices.SortFunc(all, func(a, b slot) int { return strings.Compare(*a.name, *b.name) })
	l := &layout{}
	for _, s := range all {
		l.names = append(l.names, s.name)
		l.slots = append(l.slots, s.pos)
	}
	got, _ := layouts.LoadOrStore(key, l)
	return got.(*layout)
}

// sourceLabels are a source's constant labels (Config.Labels), sorted by name, with the
// signature that keys their layouts.
type sourceLabels struct {
	names  []string
	values []string
	sig    string
}

func newSourceLabels(m map[string]string) *sourceLabels {
	s := &sourceLabels{}
	for n := range m {
		s.names = append(s.names, n)
	}
	slices.Sort(s.names)
	for _, n := range s.names {
		s.values = append(s.values, m[n])
	}
	s.sig = strings.Join(s.names, "\xff")
	return s
}
