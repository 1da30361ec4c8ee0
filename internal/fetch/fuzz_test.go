package fetch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRedact: Redact never panics, is idempotent, shows of a query only names and "xxxxx",
// and where net/url reads a userinfo it shows "xxxxx" and the same host.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"http://u:pw@h:1/p?a=1&b&c=#f", "tcp://user:secret@127.0.0.1:1717", "user:pw@h:1",
		"unix:///run/n.sock?path=/s%3Fk%3Dv", "unix:/run/a@b.sock:/s?x=1", "https://h/?t=a=b&&=c",
		"u:pw@h://x", "http://[::1]:80/?q=%zz", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		if Redact(r) != r {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, r, Redact(r))
		}
		rest, _, _ := strings.Cut(r, "#")
		if _, q, ok := strings.Cut(rest, "?"); ok {
			for _, p := range strings.Split(q, "&") {
				if _, v, ok := strings.Cut(p, "="); ok && v != "" && v != Hidden {
					t.Fatalf("%q -> %q shows the value %q", s, r, v)
				}
			}
		}
		// Where net/url reads a userinfo, Redact hides all of it and keeps the host.
		if u, err := url.Parse(s); err == nil && u.User != nil && u.Opaque == "" {
			ru, err := url.Parse(r)
			if err != nil {
				t.Fatalf("%q parses, %q does not: %v", s, r, err)
			}
			if _, hasPw := ru.User.Password(); ru.User == nil || ru.User.Username() != Hidden || hasPw || ru.Host != u.Host {
				t.Fatalf("%q -> %q: user %v, host %q (want %q)", s, r, ru.User, ru.Host, u.Host)
			}
		}
	})
}

// pipeConn is the server side of a connection: reads come from r, in chunks of at most n
// bytes; writes are dropped.
type pipeConn struct {
	net.Conn
	r io.Reader
	n int
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p[:min(len(p), c.n)]) }
func (c *pipeConn) Write(p []byte) (int, error) { return len(p), nil }

// FuzzHeaderConn feeds arbitrary answers through the header counter, in chunks of any size,
// and compares where it sees the header end with net/http's own reading of the answer
// (http.ReadResponse, skipping informational answers as the transport does): where net/http
// reads a complete header of at most MaxResponseHeaderBytes, the counter ends the header at
// the same byte; over the cap it fails with ErrHeaderTooLarge; it never panics.
func FuzzHeaderConn(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.0 200 OK\nX: y\n\nbody",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw",
		"HTTP/1.1  100 x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n", "{\"version\":\"2.0\"}",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, answer []byte, chunk uint8) {
		c := newHeaderConn(&pipeConn{r: bytes.NewReader(answer), n: int(chunk%200) + 1})
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var err error
		buf := make([]byte, 4096)
		for err == nil {
			_, err = c.Read(buf)
		}
		if c.n > MaxResponseHeaderBytes+1 {
			t.Fatalf("counted %d header bytes, past the cap", c.n)
		}

		// net/http's reading of the same answer.
		src := bytes.NewReader(answer)
		br := bufio.NewReader(src)
		var final *http.Response
		for {
			resp, rerr := http.ReadResponse(br, nil)
			if rerr != nil {
				break
			}
			if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
				continue
			}
			final = resp
			break
		}
		if final == nil {
			return // net/http does not read a header here: no reference
		}
		header := len(answer) - src.Len() - br.Buffered()
		if header > MaxResponseHeaderBytes {
			if !errors.Is(err, ErrHeaderTooLarge) {
				t.Fatalf("a %d byte header passed: %v", header, err)
			}
			return
		}
		if err != io.EOF || c.state != inBody || c.n != header {
			t.Fatalf("net/http reads a %d byte header (status %d); the counter: state %d after %d bytes, %v", header, final.StatusCode, c.state, c.n, err)
		}
	})
}
