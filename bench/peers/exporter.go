package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// exporter is one running exporter process and what was measured of it.
type exporter struct {
	label string
	proc  *proc
	url   string // its /metrics
	port  int
}

var logSeq int

// startExporter runs bin with args and --web.listen-address on a free loopback port, and
// waits until its /metrics answers. A process that exits at once (the port was taken in the
// meantime) is retried on another port.
func startExporter(dir, label, bin string, args []string) (*exporter, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort("tcp")
		if err != nil {
			return nil, err
		}
		logSeq++
		logPath := filepath.Join(dir, fmt.Sprintf("%02d-%s.log", logSeq, sanitize(label)))
		argv := append([]string{bin}, args...)
		argv = append(argv, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
		p, err := start(label, dir, logPath, syscall.SIGTERM, argv...)
		if err != nil {
			return nil, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
		if err := waitHTTP(url, p, 15*time.Second, ""); err != nil {
			lastErr = err
			p.stop()
			continue
		}
		return &exporter{label: label, proc: p, url: url, port: port}, nil
	}
	return nil, fmt.Errorf("%s did not start: %w", label, lastErr)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// scraper makes sequential scrapes over one kept-alive connection per exporter, as Prometheus
// does. It asks for no compression unless gzip is set, and sends the scrape timeout header.
type scraper struct {
	client *http.Client
	accept string
	gzip   bool
}

func newScraper(accept string, gzip bool) *scraper {
	return &scraper{
		client: &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1},
		},
		accept: accept,
		gzip:   gzip,
	}
}

// scrape times one GET of url, from sending the request to the last byte of the body.
func (s *scraper) scrape(url string) (time.Duration, int64, error) {
	d, n, _, err := s.scrapeType(url)
	return d, n, err
}

// scrapeType is scrape that also returns the answer's Content-Type (and Content-Encoding).
func (s *scraper) scrapeType(url string) (time.Duration, int64, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, "", err
	}
	if s.accept != "" {
		req.Header.Set("Accept", s.accept)
	}
	if s.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	t0 := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return 0, 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, "", fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	ct := resp.Header.Get("Content-Type")
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		ct += " (" + ce + ")"
	}
	return d, n, ct, nil
}

// text fetches url in the text format, uncompressed (for checks, outside measurements).
func text(url string) (string, error) {
	cl := &http.Client{Timeout: 60 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return string(b), nil
}

// series counts the samples of a text exposition.
func series(body string) int {
	n := 0
	for _, l := range strings.Split(body, "\n") {
		if l != "" && l[0] != '#' {
			n++
		}
	}
	return n
}

// sum adds the values of every sample of the metric name whose labels contain all of the
// given name="value" pairs (labels like `code="200"`). found is the number of samples added.
func sum(body, name string, labels ...string) (total float64, found int) {
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name) || len(l) == len(name) {
			continue
		}
		rest := l[len(name):]
		var lbls string
		switch rest[0] {
		case ' ':
		case '{':
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbls, rest = rest[1:end], rest[end+1:]
		default:
			continue
		}
		ok := true
		for _, want := range labels {
			if !containsLabel(lbls, want) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		total += v
		found++
	}
	return total, found
}

// containsLabel reports whether a label set (the text between braces, values without commas)
// holds the pair want, e.g. `code="200"`.
func containsLabel(lbls, want string) bool {
	for _, p := range strings.Split(lbls, ",") {
		if strings.TrimSpace(p) == want {
			return true
		}
	}
	return false
}
