package e2e

import (
	"runtime"
	"testing"
)

// --runtime.gomaxprocs, read back from the exporter's go_sched_gomaxprocs_threads: one thread
// by default, Go's default when a multiprocess directory is configured, the GOMAXPROCS
// environment variable left alone, and the flag's value when it is set.
func TestGomaxprocs(t *testing.T) {
	unreachable := "--nginx.scrape-uri=http://127.0.0.1:1/stub_status"
	// Go's default on this machine, as the exporter's runtime computes it without GOMAXPROCS
	// in its environment (SetDefaultGOMAXPROCS ignores the variable).
	mine := runtime.GOMAXPROCS(0)
	runtime.SetDefaultGOMAXPROCS()
	goDefault := runtime.GOMAXPROCS(mine)
	for _, c := range []struct {
		name string
		env  string
		args []string
		want int
	}{
		{"auto, nginx", "", []string{unreachable}, 1},
		{"auto, no source", "", nil, 1},
		{"auto, multiprocess directory", "", []string{unreachable, "--multiproc.dir=" + t.TempDir()}, goDefault},
		{"environment", "3", []string{unreachable}, 3},
		{"environment Go ignores", "abc", []string{unreachable}, 1},
		{"flag", "3", []string{unreachable, "--runtime.gomaxprocs=2"}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", c.env) // empty: unset for Go and for the exporter
			x := StartExporter(t, c.args...)
			got := x.Scrape(t).Get(t, "go_sched_gomaxprocs_threads", nil)
			if got != float64(c.want) {
				t.Fatalf("go_sched_gomaxprocs_threads = %v, want %d", got, c.want)
			}
		})
	}
}
