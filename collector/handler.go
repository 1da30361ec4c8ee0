package collector

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics: one scrape of every source per request, isolated from concurrent
// requests, under the deadline Prometheus announces, encoded as the request asks (text 0.0.4,
// OpenMetrics or protobuf, gzip when accepted). It answers as promhttp's handler wrapped in
// promhttp.InstrumentMetricHandler does (same headers, the name[] filter, and the
// promhttp_metric_handler_* metrics, kept by the exporter itself), with these differences: an
// answer that cannot be finished by the deadline the scraper announced is cut off (the
// connection is closed, so the scraper sees a failed scrape rather than a short one), and a
// scraper that hangs up is logged at debug level only.
func (e *Exporter) Handler() http.Handler {
	e.handlerM().serving.Store(true)
	var inFlight chan struct{}
	if e.opts.MaxRequestsInFlight > 0 {
		inFlight = make(chan struct{}, e.opts.MaxRequestsInFlight)
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		e.handlerM().begin()
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			if p := recover(); p != nil {
				e.handlerM().end("")
				panic(p)
			}
			e.handlerM().end(w.code())
		}()
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent scrapes reached (%d), try again later.", cap(inFlight)), http.StatusServiceUnavailable)
				return
			}
		}
		e.serve(w, r)
	})
}

// answerSlack is how long after the sources' deadline an answer may still be written when the
// scraper announced no timeout (then the deadline is the sources' own).
const answerSlack = 500 * time.Millisecond

func (e *Exporter) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	timeout := e.requestTimeout(r)
	fams, release, err := e.gather(r.Context(), timeout)
	defer release()
	if r.Context().Err() != nil {
		e.logger.Debug("scraper went away before the answer was ready", "err", r.Context().Err())
		return
	}
	if err != nil {
		e.logger.Error("error gathering metrics", "err", err)
		e.handlerM().fail(causeGathering)
		if len(fams) == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
	}

	// The answer must be written before the scraper gives up: the deadline it announced (before
	// the offset taken off for the sources), else the sources' longest deadline plus a little.
	answerBy := start.Add(e.maxSourceTimeout() + answerSlack)
	if timeout > 0 {
		answerBy = start.Add(timeout + max(e.opts.TimeoutOffset, answerSlack))
	}
	_ = http.NewResponseController(w).SetWriteDeadline(answerBy) // not every ResponseWriter can

	neg := negotiate(r.Header)
	format := neg.format
	h := w.Header()
	h["Vary"] = append(h["Vary"], "Accept", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	dw := &deadlineWriter{w: w, by: answerBy}
	var out io.Writer = dw
	var gz *gzip.Writer
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		gz = gzipPool.Get().(*gzip.Writer)
		gz.Reset(dw)
		defer gzipPool.Put(gz)
		out = gz
	}
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(out)
	defer func() {
		bw.Reset(nil)
		bufPool.Put(bw)
	}()

	var filter map[string]bool
	if r.URL.RawQuery != "" {
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			filter = make(map[string]bool, len(names))
			for _, n := range names {
				filter[n] = true
			}
		}
	}
	// expfmt's encoder is made only for what is not written directly.
	var enc expfmt.Encoder
	encoder := func() expfmt.Encoder {
		if enc == nil {
			enc = expfmt.NewEncoder(bw, format)
		}
		return enc
	}
	text, om := neg.text, neg.om
	lines := linesPool.Get().(*[]byte)
	defer linesPool.Put(lines)
	buf := (*lines)[:0]
	flush := func(b []byte) []byte {
		if len(b) > 0 && dw.err == nil {
			_, _ = bw.Write(b) // an error is the writer's, kept in dw.err
		}
		return b[:0]
	}
	for _, f := range fams {
		if filter != nil && !filter[f.name()] {
			continue
		}
		if f.ours != nil && (text || om) {
			buf = f.ours.append(buf, om, flush)
		} else if f.app != nil && (text || om) && appendsApp(&buf, f.app, om, flush) {
			if len(buf) >= flushAt {
				buf = flush(buf)
			}
		} else if f.mf != nil && (text || om) && appendsDTO(&buf, f.mf, om) {
			if len(buf) >= flushAt {
				buf = flush(buf)
			}
		} else if b, err := f.selfEncoded(format); err == nil && b != nil {
			buf = append(buf, b...)
			if len(buf) >= flushAt {
				buf = flush(buf)
			}
		} else {
			buf = flush(buf)
			if !e.encodeOK(encoder().Encode(f.dto()), dw) {
				break
			}
		}
		if dw.err != nil {
			e.encodeOK(dw.err, dw)
			break
		}
	}
	flush(buf)
	*lines = buf[:0]
	if dw.err == nil {
		switch {
		case enc == nil && om:
			_, err := bw.WriteString("# EOF\n") // OpenMetrics' end, as expfmt's Close writes it
			e.encodeOK(err, dw)
		case enc == nil && text: // expfmt's Close of the text format writes nothing
		default:
			if c, ok := encoder().(expfmt.Closer); ok { // OpenMetrics' final "# EOF"
				e.encodeOK(c.Close(), dw)
			}
		}
	}
	if dw.err == nil {
		e.encodeOK(bw.Flush(), dw)
	}
	if gz != nil && dw.err == nil {
		e.encodeOK(gz.Close(), dw)
	}
	if errors.Is(dw.err, errAnswerDeadline) {
		// Ending normally would finish the chunked body: a cut text exposition would then
		// parse as a complete, shorter one. Aborting closes the connection.
		panic(http.ErrAbortHandler)
	}
}

// encodeOK handles the result of writing part of the answer; false means stop writing. A
// failed write (the scraper hung up, or the deadline passed) stops the answer; a family that
// cannot be encoded is counted and skipped, as promhttp does.
func (e *Exporter) encodeOK(err error, dw *deadlineWriter) bool {
	if err == nil {
		return true
	}
	switch {
	case errors.Is(dw.err, errAnswerDeadline):
		e.logger.Warn("answer cut off: it could not be written before the scraper's deadline", "written_bytes", dw.n)
		e.handlerM().fail(causeEncoding)
	case dw.err != nil && isClientGone(dw.err):
		e.logger.Debug("scraper went away while the answer was written", "err", dw.err)
	case dw.err != nil:
		e.logger.Error("error encoding and sending metric family", "err", err)
		e.handlerM().fail(causeEncoding)
	default:
		e.logger.Error("error encoding and sending metric family", "err", err)
		e.handlerM().fail(causeEncoding)
		return true
	}
	return false
}

// errAnswerDeadline: the answer's deadline passed while it was written.
var errAnswerDeadline = errors.New("the answer's deadline passed")

// deadlineWriter writes the answer to the response until its deadline, and keeps the first
// error of a write.
type deadlineWriter struct {
	w   io.Writer
	by  time.Time
	n   int64
	err error
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if time.Now().After(d.by) {
		d.err = errAnswerDeadline
		return 0, d.err
	}
	n, err := d.w.Write(p)
	d.n += int64(n)
	if err != nil {
		if isTimeout(err) {
			err = fmt.Errorf("%w: %w", errAnswerDeadline, err)
		}
		d.err = err
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// isClientGone tells a failed write to the scraper's connection (it hung up or reset it) from
// a failure to encode.
func isClientGone(err error) bool {
	var oe *net.OpError
	return (errors.As(err, &oe) && oe.Op == "write") ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, http.ErrHandlerTimeout) || errors.Is(err, context.Canceled)
}

// acceptsGzip negotiates the answer's compression among identity and gzip from an
// Accept-Encoding header: gzip when its quality (or that of "*") is positive and higher than
// identity's, as promhttp decides.
func acceptsGzip(header string) bool {
	if header == "" {
		return false
	}
	bestQ, gz := -1.0, false
	for _, offer := range [...]string{"identity", "gzip"} {
		for part := range strings.SplitSeq(header, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.TrimSpace(coding)
			if coding != "*" && !strings.EqualFold(coding, offer) {
				continue
			}
			q := 1.0
			if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
			if q > bestQ {
				bestQ, gz = q, offer == "gzip"
			}
		}
	}
	return gz && bestQ > 0
}

var (
	gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	// 128 KiB: net/http writes what it is given in one or two write calls, and each call to
	// a loopback scraper costs the sender the delivery too; a 64-worker uWSGI answer (215 KB)
	// takes 5 calls instead of 13 (docs/benchmarks.md, "Inline scrapes and one thread").
	bufPool   = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 128<<10) }}
	linesPool = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+4<<10); return &b }}
)

// negotiation is the answer's format for an Accept header, and whether it is written
// directly (text 0.0.4, OpenMetrics 1.0) or by expfmt.
type negotiation struct {
	format   expfmt.Format
	text, om bool
}

// negotiations remembers the negotiation of the first Accept headers seen (a scraper sends
// the same one every time), so that a scrape does not parse it again.
var negotiations struct {
	sync.RWMutex
	m map[string]negotiation
}

// maxNegotiations bounds the Accept headers remembered, and maxNegotiatedLen the length of
// one: the others are negotiated each time (at most 64 x 512 bytes are kept, whatever the
// requests send).
const (
	maxNegotiations  = 64
	maxNegotiatedLen = 512
)

// negotiate chooses the answer's format as promhttp does (expfmt.NegotiateAccept with the
// OpenMetrics formats offered).
func negotiate(h http.Header) negotiation {
	accept := h.Get("Accept")
	negotiations.RLock()
	n, ok := negotiations.m[accept]
	negotiations.RUnlock()
	if ok {
		return n
	}
	n.format = expfmt.NegotiateAccept(h, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	n.text, n.om = directFormat(n.format)
	negotiations.Lock()
	if negotiations.m == nil {
		negotiations.m = map[string]negotiation{}
	}
	if len(negotiations.m) < maxNegotiations && len(accept) <= maxNegotiatedLen {
		negotiations.m[accept] = n
	}
	negotiations.Unlock()
	return n
}

// maxSourceTimeout is the longest deadline a source gets when the scraper announces none.
func (e *Exporter) maxSourceTimeout() time.Duration {
	if len(e.sources) == 0 {
		return defaultSourceTimeout
	}
	longest := time.Duration(0)
	for _, s := range e.sources {
		longest = max(longest, sourceTimeout(s, 0))
	}
	return longest
}

// HandlerMetrics are the /metrics handler's counters, exported as promhttp's
// InstrumentMetricHandler and handler export them (same names, help and labels). One value may
// serve the successive Exporters of a reloaded configuration (Options.HandlerMetrics), so that
// the counts go on across reloads.
type HandlerMetrics = handlerStats

// NewHandlerMetrics returns counters for Options.HandlerMetrics.
func NewHandlerMetrics() *HandlerMetrics { return &handlerStats{} }

type handlerStats struct {
	serving  atomic.Bool // Handler was called: the families are part of the answers
	mu       sync.Mutex
	inFlight float64
	requests map[string]float64 // by status code
	errors   [2]float64         // by cause: gathering, encoding
}

const (
	causeGathering = 0
	causeEncoding  = 1
)

var (
	handlerRequests = counter(Kind{}, "promhttp_metric_handler_requests_total", "Total number of scrapes by HTTP status code.", "code")
	handlerInFlight = gauge(Kind{}, "promhttp_metric_handler_requests_in_flight", "Current number of scrapes being served.")
	handlerErrors   = counter(Kind{}, "promhttp_metric_handler_errors_total", "Total number of internal errors encountered by the promhttp metric handler.", "cause")
)

func (h *handlerStats) begin() {
	h.mu.Lock()
	h.inFlight++
	h.mu.Unlock()
}

// end counts a finished request by its status code ("": aborted, not counted).
func (h *handlerStats) end(code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlight--
	if code == "" {
		return
	}
	if h.requests == nil {
		h.requests = map[string]float64{}
	}
	h.requests[code]++
}

// InFlight is the number of requests being served now.
func (h *handlerStats) InFlight() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inFlight
}

func (h *handlerStats) fail(cause int) {
	h.mu.Lock()
	h.errors[cause]++
	h.mu.Unlock()
}

// write writes the handler's series to w (a Writer of no kind), once Handler is in use.
func (h *handlerStats) write(w *Writer) {
	if !h.serving.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, code := range []string{"200", "500", "503"} { // promhttp starts these at 0
		if _, ok := h.requests[code]; !ok {
			w.core(handlerRequests, 0, code)
		}
	}
	for code, n := range h.requests {
		w.core(handlerRequests, n, code)
	}
	w.core(handlerInFlight, h.inFlight)
	w.core(handlerErrors, h.errors[causeEncoding], "encoding")
	w.core(handlerErrors, h.errors[causeGathering], "gathering")
}

// statusWriter remembers the status code of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (write deadline).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// code is the status as promhttp's label gives it.
func (s *statusWriter) code() string {
	if s.status == 0 {
		return "200"
	}
	return strconv.Itoa(s.status)
}

// handlerM is the Exporter's handler counters: Options.HandlerMetrics, or its own.
func (e *Exporter) handlerM() *handlerStats {
	if e.opts.HandlerMetrics != nil {
		return e.opts.HandlerMetrics
	}
	return &e.handler
}

// appendsDTO appends mf to *buf when appendDTO can write it, and reports whether it did.
func appendsDTO(buf *[]byte, mf *dto.MetricFamily, om bool) bool {
	b, ok := appendDTO(*buf, mf, om)
	*buf = b
	return ok
}

// appendsApp appends af to *buf when it can be written directly, and reports whether it did.
func appendsApp(buf *[]byte, af *appFamily, om bool, flush func([]byte) []byte) bool {
	b, ok := af.append(*buf, om, flush)
	*buf = b
	return ok
}
