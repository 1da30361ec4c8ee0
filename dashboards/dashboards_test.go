// Package dashboards holds no Go code: its tests check the Grafana dashboards in this folder
// against Grafana's dashboard schema (grafana-foundation-sdk's generated types, decoded
// strictly: unknown fields, wrong types and missing required fields are errors) and against
// the rules of this project (variables, data source, layout). e2e/dashboards_test.go runs
// every panel's queries against a real Prometheus.
package dashboards

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// panelTypes are the panel plugins the dashboards use; their options are decoded strictly.
var panelTypes = map[string]bool{"timeseries": true, "stat": true}

func init() {
	rt := cog.NewRuntime()
	rt.RegisterPanelcfgVariant(timeseries.VariantConfig())
	rt.RegisterPanelcfgVariant(stat.VariantConfig())
	rt.RegisterDataqueryVariant(prometheus.VariantConfig())
}

func files(t *testing.T) []string {
	t.Helper()
	fs, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(fs)
	want := []string{"wsgi-exporter.json", "wsgi-gunicorn.json", "wsgi-multiproc.json", "wsgi-nginx.json", "wsgi-overview.json", "wsgi-uwsgi.json"}
	if strings.Join(fs, " ") != strings.Join(want, " ") {
		t.Fatalf("dashboards %v, want %v", fs, want)
	}
	return fs
}

// TestSchema decodes every dashboard with the SDK's strict decoder and validator.
func TestSchema(t *testing.T) {
	for _, f := range files(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The classic dashboard JSON (schemaVersion) is what every Grafana imports; the SDK
		// marks its type deprecated in favour of the v2 resource format of Grafana 12.
		//lint:ignore SA1019 the dashboards are in the classic format on purpose
		var d dashboard.Dashboard
		if err := sdkError(d.UnmarshalJSONStrict(b)); err != nil {
			t.Errorf("%s does not follow Grafana's dashboard schema: %v", f, err)
			continue
		}
		if err := sdkError(d.Validate()); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			if p.Panel == nil {
				continue
			}
			if !panelTypes[p.Panel.Type] {
				t.Errorf("%s: panel %v has type %q, not one of %v", f, p.Panel.Title, p.Panel.Type, panelTypes)
			}
			if p.Panel.Options == nil {
				t.Errorf("%s: panel %v has no options", f, p.Panel.Title)
			}
		}
	}
}

// sdkError turns the SDK's empty error list (it returns a nil cog.BuildErrors as a non-nil
// error) into nil.
func sdkError(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// The parts of a dashboard the project's own checks read.
type (
	dash struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Tags          []string
		Templating    struct{ List []variable } `json:"templating"`
		Panels        []panel                   `json:"panels"`
		Links         []struct {
			Type string
			Tags []string
		}
	}
	variable struct {
		Name       string
		Type       string
		Query      any
		Datasource *datasource
	}
	datasource struct{ Type, UID string }
	panel      struct {
		ID         int `json:"id"`
		Type       string
		Title      string
		GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
		Datasource *datasource
		Targets    []struct {
			Expr       string
			RefID      string `json:"refId"`
			Datasource *datasource
		}
	}
)

var (
	varRef   = regexp.MustCompile(`\$(\{)?([A-Za-z_][A-Za-z0-9_]*)`)
	builtins = map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
)

func load(t *testing.T, f string) dash {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var d dash
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return d
}

// TestStructure checks what Grafana needs beyond the schema's types and what this project
// promises: unique uids and panel ids, panels on the 24-column grid without overlaps, every
// query through the ${datasource} variable, job/instance/source variables, and every
// variable a query names defined.
func TestStructure(t *testing.T) {
	uids := map[string]string{}
	for _, f := range files(t) {
		d := load(t, f)
		if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
			t.Errorf("%s: uid %q, title %q, schemaVersion %d", f, d.UID, d.Title, d.SchemaVersion)
		}
		if prev, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", prev, f, d.UID)
		}
		uids[d.UID] = f
		if !contains(d.Tags, "wsgi_exporter") || len(d.Links) == 0 || !contains(d.Links[0].Tags, "wsgi_exporter") {
			t.Errorf("%s: want tag wsgi_exporter and a link to the dashboards with that tag", f)
		}

		vars := map[string]variable{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
				t.Errorf("%s: variable %s does not query through ${datasource}", f, v.Name)
			}
		}
		if ds := vars["datasource"]; ds.Type != "datasource" || ds.Query != "prometheus" {
			t.Errorf("%s: want a datasource variable of type prometheus, got %+v", f, ds)
		}
		names := []string{"job", "instance"}
		if d.UID != "wsgi-overview" {
			names = append(names, "source")
		}
		for _, n := range names {
			if vars[n].Type != "query" {
				t.Errorf("%s: no query variable %s", f, n)
			}
		}
		used := map[string]bool{}
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(map[string]any); ok {
				for _, m := range varRef.FindAllStringSubmatch(q["query"].(string), -1) {
					used[m[2]] = true
				}
			}
		}

		ids := map[int]bool{}
		var boxes []panel
		for _, p := range d.Panels {
			if ids[p.ID] || p.ID <= 0 {
				t.Errorf("%s: panel id %d of %q is not unique and positive", f, p.ID, p.Title)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q has gridPos %+v outside the 24-column grid", f, p.Title, g)
			}
			for _, o := range boxes {
				h := o.GridPos
				if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("%s: panels %q %+v and %q %+v overlap", f, p.Title, g, o.Title, h)
				}
			}
			boxes = append(boxes, p)
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
				t.Errorf("%s: panel %q: want a title and the ${datasource} data source, got %+v", f, p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			refs := map[string]bool{}
			for _, q := range p.Targets {
				if q.Expr == "" || q.RefID == "" || refs[q.RefID] || q.Datasource == nil || q.Datasource.UID != "${datasource}" {
					t.Errorf("%s: panel %q: query %+v needs an expr, a unique refId and the ${datasource} data source", f, p.Title, q)
				}
				refs[q.RefID] = true
				if !strings.Contains(q.Expr, `job=~"$job"`) || !strings.Contains(q.Expr, `instance=~"$instance"`) {
					t.Errorf("%s: panel %q: query %s ignores $job or $instance", f, p.Title, q.Expr)
				}
				for _, m := range varRef.FindAllStringSubmatch(q.Expr, -1) {
					used[m[2]] = true
					if _, ok := vars[m[2]]; !ok && !builtins[m[2]] {
						t.Errorf("%s: panel %q uses $%s, which is not a variable", f, p.Title, m[2])
					}
				}
			}
		}
		for n := range vars {
			if n != "datasource" && !used[n] {
				t.Errorf("%s: variable %s is used by no query", f, n)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
