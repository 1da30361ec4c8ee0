package nginx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// fixtureDir holds the stub_status bodies captured from nginx 1.22.1 (see its README.md).
const fixtureDir = "../fixtures/nginx"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The expected values are read off the fixture files by eye.
var golden = map[string]StubStatus{
	"stub_status_idle_http.txt":        {Active: 1, Accepted: 1, Handled: 1, Requests: 1, Reading: 0, Writing: 1, Waiting: 0},
	"stub_status_idle_unix.txt":        {Active: 1, Accepted: 2, Handled: 2, Requests: 2, Reading: 0, Writing: 1, Waiting: 0},
	"stub_status_during_load_http.txt": {Active: 106, Accepted: 2468, Handled: 2468, Requests: 1763635, Reading: 0, Writing: 1, Waiting: 105},
	"stub_status_during_load_unix.txt": {Active: 106, Accepted: 2470, Handled: 2470, Requests: 1765197, Reading: 0, Writing: 1, Waiting: 105},
	"stub_status_after_load_http.txt":  {Active: 6, Accepted: 3497, Handled: 3497, Requests: 2793288, Reading: 0, Writing: 1, Waiting: 5},
	"stub_status_after_load_unix.txt":  {Active: 6, Accepted: 3498, Handled: 3498, Requests: 2793289, Reading: 0, Writing: 1, Waiting: 5},
	"tengine_stub_status.txt": {Active: 43, Accepted: 1140, Handled: 1139, Requests: 2281, Reading: 1, Writing: 2, Waiting: 40,
		HasRequestTime: true, RequestTimeMillis: 75806},
}

func TestParseFixtures(t *testing.T) {
	ents, err := filepath.Glob(filepath.Join(fixtureDir, "*.txt"))
	if err != nil || len(ents) != len(golden) {
		t.Fatalf("fixtures %v (%v): every .txt fixture needs a golden entry", ents, err)
	}
	for name, want := range golden {
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, name)
			got, err := ParseStubStatus(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			// The same page with CRLF line ends, without the final newline, with blank
			// lines at the end and without the trailing spaces parses the same.
			crlf := strings.ReplaceAll(string(b), "\n", "\r\n")
			variants := map[string]string{
				"crlf":          crlf,
				"no final lf":   strings.TrimSuffix(string(b), "\n"),
				"no final crlf": strings.TrimSuffix(crlf, "\r\n"),
				"blank tail":    string(b) + "\n  \n\r\n",
				"no spaces":     strings.ReplaceAll(strings.ReplaceAll(string(b), " \n", "\n"), "\n ", "\n"),
				"tabs":          strings.ReplaceAll(string(b), ": ", ":\t"),
			}
			for vn, v := range variants {
				got, err := ParseStubStatus([]byte(v))
				if err != nil {
					t.Errorf("%s: %v", vn, err)
				} else if got != want {
					t.Errorf("%s: got %+v", vn, got)
				}
			}
		})
	}
}

func TestParseMaxUint64(t *testing.T) {
	body := "Active connections: 18446744073709551615 \nserver accepts handled requests\n 18446744073709551615 0 18446744073709551615 \nReading: 0 Writing: 0 Waiting: 0 \n"
	st, err := ParseStubStatus([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 1<<64-1 || st.Accepted != 1<<64-1 || st.Handled != 0 || st.Requests != 1<<64-1 {
		t.Fatalf("%+v", st)
	}
}

func TestParseRejects(t *testing.T) {
	const (
		l1 = "Active connections: 1 \n"
		l2 = "server accepts handled requests\n"
		l3 = " 1 2 3 \n"
		l4 = "Reading: 0 Writing: 1 Waiting: 0 \n"
	)
	for _, tc := range []struct{ name, body, want string }{
		{"empty", "", "empty body"},
		{"blank", "\n\r\n  \n", "empty body"},
		{"html", "<html><body>403 Forbidden</body></html>\n", "only 1 of the 4"},
		{"missing last line", l1 + l2 + l3, "only 3 of the 4"},
		{"missing numbers", l1 + l2 + l4, "only 3 of the 4"},
		{"extra line", l1 + l2 + l3 + l4 + "Uptime: 5\n", `line 5 "Uptime: 5": unexpected line`},
		{"leading blank", "\n" + l1 + l2 + l3 + l4, `line 1 "": want "Active connections: N"`},
		{"bad first word", "Passive connections: 1\n" + l2 + l3 + l4, "line 1"},
		{"active missing", "Active connections:\n" + l2 + l3 + l4, "line 1"},
		{"active negative", "Active connections: -1 \n" + l2 + l3 + l4, `active connections: negative number "-1"`},
		{"active plus", "Active connections: +1 \n" + l2 + l3 + l4, `"+1" is not a decimal number`},
		{"active hex", "Active connections: 0x10 \n" + l2 + l3 + l4, `"0x10" is not a decimal number`},
		{"active float", "Active connections: 1.5 \n" + l2 + l3 + l4, `"1.5" is not a decimal number`},
		{"active overflow", "Active connections: 18446744073709551616 \n" + l2 + l3 + l4, `"18446744073709551616" does not fit in 64 bits`},
		{"bad header", l1 + "server accepts requests handled\n" + l3 + l4, "line 2"},
		{"header extra column", l1 + "server accepts handled requests request_time bytes\n" + l3 + l4, "line 2"},
		{"two numbers", l1 + l2 + " 1 2 \n" + l4, "want 3 numbers under the header, found 2 fields"},
		{"four numbers for nginx", l1 + l2 + " 1 2 3 4 \n" + l4, "want 3 numbers under the header, found 4 fields"},
		{"three numbers for tengine", l1 + "server accepts handled requests request_time\n" + l3 + l4, "want 4 numbers under the header, found 3 fields"},
		{"negative requests", l1 + l2 + " 1 2 -3 \n" + l4, `requests: negative number "-3"`},
		{"overflow handled", l1 + l2 + " 1 99999999999999999999 3 \n" + l4, `handled: "99999999999999999999" does not fit in 64 bits`},
		{"negative request_time", l1 + "server accepts handled requests request_time\n 1 2 3 -4\n" + l4, `request_time: negative number "-4"`},
		{"reading missing", l1 + l2 + l3 + "Writing: 1 Waiting: 0\n", "line 4"},
		{"labels swapped", l1 + l2 + l3 + "Writing: 0 Reading: 1 Waiting: 0\n", "line 4"},
		{"waiting negative", l1 + l2 + l3 + "Reading: 0 Writing: 1 Waiting: -2\n", `Waiting: negative number "-2"`},
		{"writing text", l1 + l2 + l3 + "Reading: 0 Writing: many Waiting: 0\n", `Writing: "many" is not a decimal number`},
		{"nul", l1 + l2 + " 1 2\x003 \n" + l4, "line 3"},
		{"unicode space", "Active connections:\u00a01\n" + l2 + l3 + l4, "line 1"},
		{"lone cr lines", strings.ReplaceAll(l1+l2+l3+l4, "\n", "\r"), "only 1 of the 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStubStatus([]byte(tc.body))
			if err == nil {
				t.Fatalf("accepted %q", tc.body)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if r := fetch.ReasonOf(err); r != fetch.ReasonDecode {
				t.Fatalf("reason %q, want decode", r)
			}
		})
	}
}

func TestParseErrorQuotesBoundedLine(t *testing.T) {
	long := strings.Repeat("x", 10000)
	_, err := ParseStubStatus([]byte(long + "\n2\n3\n4\n"))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error not bounded: %d bytes", len(err.Error()))
	}
	var fe *fetch.Error
	if !errors.As(err, &fe) {
		t.Fatalf("not a fetch.Error: %T", err)
	}
}

// FuzzParseStubStatus checks that no input crashes the parser and that whatever it accepts
// is a page it can print back and read again to the same values.
func FuzzParseStubStatus(f *testing.F) {
	for name := range golden {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte("Active connections: -1\nserver accepts handled requests\n 1 1 1\nReading: 0 Writing: 0 Waiting: 0"))
	f.Add([]byte("Active connections: 1\r\nserver accepts handled requests request_time\r\n 1 1 1 18446744073709551616\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStubStatus(b)
		if err != nil {
			if fetch.ReasonOf(err) != fetch.ReasonDecode {
				t.Fatalf("reason %q for %v", fetch.ReasonOf(err), err)
			}
			return
		}
		again, err := ParseStubStatus([]byte(format(st)))
		if err != nil || again != st {
			t.Fatalf("round trip: %+v -> %+v, %v", st, again, err)
		}
	})
}

func BenchmarkParseStubStatus(b *testing.B) {
	body := readFixture(b, "stub_status_after_load_http.txt")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStubStatus(body); err != nil {
			b.Fatal(err)
		}
	}
}
