package uwsgi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// decodeStdlib is the reference: the document decoded with encoding/json into the same types,
// as Decode did before it had its own scanner (with the blanking of raw control bytes in
// strings), and uWSGI's built-in worker metrics left out, as Decode leaves them out.
func decodeStdlib(b []byte) (*Stats, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not an object")
	}
	// The metrics are decoded one by one, so that uWSGI's built-in worker metrics are left
	// out before their values are checked, as Decode leaves them out.
	type ref struct {
		Stats
		Metrics map[string]json.RawMessage `json:"metrics"`
	}
	r := new(ref)
	err := json.Unmarshal(t, r)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if fixed, ok := blankControlBytes(t); ok {
			r = new(ref)
			err = json.Unmarshal(fixed, r)
		}
	}
	if err != nil {
		return nil, err
	}
	s := &r.Stats
	if r.Metrics != nil {
		s.Metrics = map[string]Metric{}
	}
	for name, raw := range r.Metrics {
		if builtinWorkerMetric([]byte(name)) {
			continue
		}
		var m Metric
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		s.Metrics[name] = m
	}
	return s, nil
}

// blankControlBytes returns a copy of b with the control bytes (< 0x20) that appear inside
// JSON strings replaced by spaces, and whether there were any.
func blankControlBytes(b []byte) ([]byte, bool) {
	var out []byte
	inString, escaped := false, false
	for i, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString && c < 0x20:
			if out == nil {
				out = bytes.Clone(b)
			}
			out[i] = ' '
		}
	}
	return out, out != nil
}

// hasDuplicateKeys reports whether some object of the JSON document b has two keys that are
// equal ignoring case: there encoding/json merges values in ways Decode does not copy (see
// decode.go: the last value wins), so the two are not compared.
func hasDuplicateKeys(b []byte) bool {
	if fixed, ok := blankControlBytes(b); ok {
		b = fixed // as both decoders read it
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		keys   map[string]bool
		atKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if k, ok := tok.(string); ok {
				lk := strings.ToLower(k)
				// encoding/json folds more than ToLower (ſ, K); treat those as duplicates too.
				if top.keys[lk] || strings.ContainsAny(k, "ſK") {
					return true
				}
				top.keys[lk] = true
				top.atKey = false
				continue
			}
		}
		if top != nil && top.object && !top.atKey {
			top.atKey = true // this token is the value (or its opening)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, atKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return false
			}
		}
	}
}

// unlimited is as good as no caps for the documents of the tests.
var unlimited = Limits{Workers: 1 << 30, Apps: 1 << 30, Cores: 1 << 30, Sockets: 1 << 30, Caches: 1 << 30,
	Spoolers: 1 << 30, Metrics: 1 << 30, Locks: 1 << 30, Daemons: 1 << 30, Crons: 1 << 30,
	StringBytes: 1 << 30, TotalStringBytes: 1 << 30}

// oneByteReader hands out one byte per Read: every token straddles a buffer refill.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// checkAgainstStdlib decodes b with Decode, with DecodeFrom one byte at a time, and with the
// reference, and fails unless all three agree (same error or no error, same data).
func checkAgainstStdlib(t *testing.T, b []byte) {
	t.Helper()
	got, err := Decode(b)
	streamed, serr := DecodeFrom(oneByteReader{bytes.NewReader(b)}, int64(len(b)), Limits{})
	if (err == nil) != (serr == nil) || (err != nil && err.Error() != serr.Error()) {
		t.Fatalf("Decode: %v; DecodeFrom one byte at a time: %v", err, serr)
	}
	if err == nil && !reflect.DeepEqual(got, streamed) {
		t.Fatalf("Decode and DecodeFrom differ:\n%+v\n%+v", got, streamed)
	}
	if hasDuplicateKeys(b) {
		return
	}
	want, werr := decodeStdlib(b)
	if (err == nil) != (werr == nil) {
		t.Fatalf("Decode error %v, encoding/json error %v, for %q", err, werr, b)
	}
	if err != nil {
		return
	}
	if got.Dropped.Any() {
		// Past a cap the two differ by design: compare without caps.
		if got, err = decode(newBytesScanner(b), unlimited, nil); err != nil || got.Dropped.Any() {
			t.Fatalf("without caps: %v, dropped %s", err, got.Dropped.String())
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode and encoding/json differ for %q:\n%+v\n%+v", b, got, want)
	}
}

// Every captured document decodes as encoding/json decodes it.
func TestDecodeMatchesStdlibOnFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	large, _ := filepath.Glob(filepath.Join(fixtures, "large", "*.json"))
	files = append(files, large...)
	if len(files) < 13 {
		t.Fatalf("%d fixtures", len(files))
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstStdlib(t, b)
		})
	}
}

// decodeEdgeDocs are small documents at the edges of JSON and of the schema; each must decode
// (or fail) as encoding/json does.
var decodeEdgeDocs = []string{
	`{}`, ` {} `, "\t\n{}\r\n", `{"workers":[]}`, `{"workers":null}`, `{"workers":[null]}`,
	`{"workers":[{"cores":[]}]}`, `{"workers":[{"cores":null,"apps":[]}]}`,
	`{"workers":[{"id":18446744073709551615}]}`, `{"workers":[{"id":18446744073709551616}]}`,
	`{"workers":[{"id":-1}]}`, `{"workers":[{"id":-0}]}`, `{"workers":[{"id":1.0}]}`, `{"workers":[{"id":1e2}]}`,
	`{"workers":[{"id":01}]}`, `{"workers":[{"id":1.}]}`, `{"workers":[{"id":.5}]}`, `{"workers":[{"id":-}]}`,
	`{"pid":-9223372036854775808}`, `{"pid":-9223372036854775809}`, `{"pid":9223372036854775807}`,
	`{"pid":9223372036854775808}`, `{"pid":-0}`, `{"pid":"1"}`, `{"pid":true}`, `{"pid":null}`,
	`{"version":"2.0.21"}`, `{"version":null}`, `{"version":1}`, `{"version":"a\u0000b\u001fc"}`,
	`{"version":"\ud83d\ude00"}`, `{"version":"\ud83d"}`, `{"version":"\ud83dx"}`, `{"version":"\ude00\ud83d"}`,
	`{"version":"\ud83d\u0041"}`, `{"version":"\u00e9\/\b\f\n\r\t\"\\"}`, `{"version":"\x"}`, `{"version":"\u12"}`,
	`{"version":"\u12g4"}`, "{\"version\":\"a\x01b\x1fc\"}", "{\"version\":\"\xff\xfe\"}", "{\"version\":\"\xe2\x82\"}",
	"{\"version\":\"\xe2\x82\xac\"}", `{"Version":"x"}`, `{"VERSION":"x"}`, `{"versioN":"x","x":1}`,
	`{"workers":[{"Id":3,"STATUS":"busy"}]}`, `{"\u0076ersion":"esc"}`, `{"workers":[{"status":"sig7"}]}`,
	`{"workers":[{"status":"idle","vars":["A=1",{"x":[1,2,{"y":null}]},true,false,null,-1.5e+3]}]}`,
	`{"workers":[{"cores":[{"id":0,"vars":["HTTP_AUTHORIZATION=Bearer x"],"req_info":{"request_start":1}}]}]}`,
	`{"unknown":{"a":[{"b":{}}],"c":"\u00e9"},"pid":3}`, `{"metrics":{}}`, `{"metrics":null}`,
	`{"metrics":{"a":{"type":0,"value":3,"oid":"1.2"},"worker.1.requests":{"value":1},"worker.x":{"value":2}}}`,
	`{"metrics":{"a":null}}`, `{"metrics":{"worker.1":{"value":1},"worker.1.":{"value":1}}}`,
	`{"locks":[{"user 0":0},{"signal":0}]}`, `{"locks":[null,{}]}`, `{"locks":[{"a":null}]}`,
	`{"daemons":[{"cmd":"x","pid":1,"respawns":2}],"crons":[{"minute":-1,"command":"true","legion":""}]}`,
	`{"caches":[{"name":"c","hash":"djb33x","hits":1}],"spoolers":[{"dir":"/s","tasks":2}]}`,
	`{"sockets":[{"name":"127.0.0.1:1","proto":"http"},{"name":"127.0.0.1:1","proto":"http"}]}`,
	``, ` `, `[]`, `null`, `"x"`, `{`, `{"workers":[`, `{"workers":[{`, `{"pid":1,}`, `{,}`, `{"a" 1}`,
	`{"a":1 "b":2}`, `{"workers":[1,]}`, `{"workers":{}}`, `{"workers":"x"}`, `{"workers":[1]}`,
	`{} x`, `{}{}`, `{"a":tru}`, `{"a":nul}`, `{"a":falsey}`, `{"a":[}`, `{"a":{]}`, `{"a":"`,
	"{\"a\":\"x\x00\"}", "{\"a\x01\":1}", `{"a":-01}`, `{"a":1e}`, `{"a":1e+}`, `{"a":2.5E-3}`,
	`{"pid":1,"pid":2}`, "\xef\xbb\xbf{}",
	`{"workers":[{"apps":[{"mountpoint":"/a","chdir":"/srv"},{"mountpoint":"/a","chdir":"/srv"}]},{"apps":[{"mountpoint":"/a"}]}]}`,
}

func TestDecodeMatchesStdlibOnEdges(t *testing.T) {
	for _, doc := range decodeEdgeDocs {
		checkAgainstStdlib(t, []byte(doc))
	}
}

// Deep nesting is an error, not a crash, and costs no recursion.
func TestDecodeDeepNesting(t *testing.T) {
	deep := `{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	if _, err := Decode([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested more than 10000 levels") {
		t.Fatalf("got %v", err)
	}
	ok := `{"x":` + strings.Repeat(`{"a":[`, 4000) + strings.Repeat("]}", 4000) + `,"pid":7}`
	st, err := Decode([]byte(ok))
	if err != nil || st.PID != 7 {
		t.Fatalf("got %+v, %v", st, err)
	}
}
