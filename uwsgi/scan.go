package uwsgi

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wsgi-exporter/wsgi_exporter/internal/fetch"
)

// scanner reads JSON from a byte slice or a stream, one token at a time, without building a
// tree: what the schema does not keep is checked and passed over. It follows encoding/json's
// rules (RFC 8259 syntax, invalid UTF-8 in kept strings becomes U+FFFD) with one exception
// taken from uWSGI's output: a raw control byte inside a string is read as a space.
//
// Errors are sticky: once err is set every method does nothing and returns zero values, so
// the schema code checks err only where it loops. Messages give offsets, never the document's
// bytes (it may be a file that is not ours).
type scanner struct {
	r       io.Reader // nil: buf is the whole document
	buf     []byte    // buf[pos:] is unread
	pos     int
	off     int64 // document offset of buf[0]
	max     int64 // longest document allowed
	eof     bool  // r has no more bytes
	err     error
	depth   int    // nesting depth of the value being read
	scratch []byte // the string being read
	keep    int    // bytes of it to keep
	cut     bool   // bytes of it were left out
}

// maxDepth is the deepest nesting accepted (encoding/json's limit too).
const maxDepth = 10000

// streamBuffer is the read buffer of a stream: what a decode holds of the document at once.
const streamBuffer = 32 << 10

func newBytesScanner(b []byte) *scanner {
	return &scanner{buf: b, max: int64(len(b)), eof: true}
}

// scanBuf is a stream decode's read buffer and string scratch, kept in scanBuffers between
// decodes: each is used by one decode at a time, and nothing decoded points into them (kept
// strings are copies).
type scanBuf struct {
	read    []byte // cap streamBuffer
	scratch []byte // as grown by the last decode (up to StringBytes), kept up to 8 KiB
}

// scanBuffers saves a scrape the garbage of a 32 KiB read buffer. It holds about as many as
// decodes ran at once, and the garbage collector empties it when they go unused.
var scanBuffers = sync.Pool{New: func() any { return &scanBuf{read: make([]byte, 0, streamBuffer)} }}

// offset is the document offset of the next unread byte.
func (s *scanner) offset() int64 { return s.off + int64(s.pos) }

// fail records a decode error at the current offset.
func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fetch.Errorf(fetch.ReasonDecode, "decoding stats JSON: offset %d: %s", s.offset(), fmt.Sprintf(format, args...))
	}
}

// failEnd records that the document ended in the middle of a value.
func (s *scanner) failEnd() {
	s.fail("the document ends in the middle of a value")
}

// fill makes at least n unread bytes available if the document has them, keeping the unread
// ones. It reports whether n bytes are available.
func (s *scanner) fill(n int) bool {
	for len(s.buf)-s.pos < n {
		if s.err != nil || s.eof {
			return false
		}
		// Move the unread bytes to the front; everything before them is done with.
		rest := copy(s.buf[:cap(s.buf)], s.buf[s.pos:])
		s.off += int64(s.pos)
		s.buf, s.pos = s.buf[:rest], 0
		room := int64(cap(s.buf) - rest)
		if left := s.max + 1 - s.off - int64(rest); left < room {
			room = left // read at most max+1 bytes in all: one more proves the document too long
		}
		got, err := s.read(s.buf[rest : rest+int(room)])
		s.buf = s.buf[:rest+got]
		if s.off+int64(len(s.buf)) > s.max {
			s.err = fetch.Errorf(fetch.ReasonTooLarge, "stats document larger than the %d byte limit", s.max)
			return false
		}
		switch {
		case err == io.EOF:
			s.eof = true
		case err != nil:
			if fetch.ReasonOf(err) == fetch.ReasonTimeout {
				s.err = fetch.Wrap(fetch.ReasonTimeout, err)
			} else {
				s.err = fetch.Wrap(fetch.ReasonRead, err)
			}
			return false
		}
	}
	return true
}

// read reads into p; data that comes with an error is kept and the error returned.
func (s *scanner) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for range 100 {
		n, err := s.r.Read(p)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}

// peek skips white space and returns the next byte without consuming it; ok is false at the
// end of the document or after an error.
func (s *scanner) peek() (c byte, ok bool) {
	for {
		buf, pos := s.buf, s.pos // locals: the loop runs over every byte of indentation
		for pos < len(buf) {
			c = buf[pos]
			if c > ' ' || (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
				s.pos = pos
				return c, s.err == nil
			}
			pos++
		}
		s.pos = pos
		if !s.fill(1) {
			return 0, false
		}
	}
}

// expect consumes c (after white space) or records an error naming what was wanted.
func (s *scanner) expect(c byte, want string) bool {
	got, ok := s.peek()
	if !ok {
		if s.err == nil {
			s.failEnd()
		}
		return false
	}
	if got != c {
		s.fail("want %s", want)
		return false
	}
	s.pos++
	return true
}

// next steps through the members of an object or the elements of an array whose opening
// bracket was consumed, close being '}' or ']': it consumes a ',' between two of them, or the
// closing bracket and returns false. first must start true.
func (s *scanner) next(close byte, first *bool) bool {
	c, ok := s.peek()
	if !ok {
		if s.err == nil {
			s.failEnd()
		}
		return false
	}
	if c == close {
		s.pos++
		s.depth--
		return false
	}
	if *first {
		*first = false
		return true
	}
	if c != ',' {
		s.fail("want ',' or '%c'", close)
		return false
	}
	s.pos++
	return true
}

// open consumes the opening bracket of an object ('{') or array ('[') and reports true; for
// null it consumes the literal and reports false; anything else is an error naming what.
func (s *scanner) open(c byte, what string) bool {
	got, ok := s.peek()
	if !ok {
		if s.err == nil {
			s.failEnd()
		}
		return false
	}
	if got == 'n' {
		s.literal("null")
		return false
	}
	if got != c {
		s.typeError(what)
		return false
	}
	s.pos++
	s.depth++
	if s.depth > maxDepth {
		s.fail("nested more than %d levels deep", maxDepth)
		return false
	}
	return true
}

// typeError records that the value ahead is valid JSON of the wrong type for what is wanted.
// Syntax errors in that value come first, as encoding/json checks the syntax first.
func (s *scanner) typeError(what string) {
	at := s.offset()
	s.skip()
	if s.err == nil {
		s.err = fetch.Errorf(fetch.ReasonDecode, "decoding stats JSON: offset %d: want %s", at, what)
	}
}

// key reads an object key and the ':' after it into the scratch buffer, keeping at most keep
// bytes; cut reports a longer key.
func (s *scanner) key(keep int) (k []byte, cut bool) {
	c, ok := s.peek()
	if !ok {
		if s.err == nil {
			s.failEnd()
		}
		return nil, false
	}
	if c != '"' {
		s.fail("want a string as object key")
		return nil, false
	}
	// Most keys are short plain ASCII with their ':' in the buffer: they are returned in
	// place, not copied. The slice is valid until the next call of the scanner.
	rest := s.buf[s.pos+1:]
	for i := 0; i < len(rest) && i <= keep; i++ {
		c := rest[i]
		if c == '"' {
			j := i + 1
			for j < len(rest) && (rest[j] == ' ' || rest[j] == '\n' || rest[j] == '\r' || rest[j] == '\t') {
				j++
			}
			if j < len(rest) && rest[j] == ':' {
				s.pos += 1 + j + 1
				return rest[:i], false
			}
			break
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	k, cut = s.str(keep)
	s.expect(':', "':' after an object key")
	return k, cut
}

// str reads a string value whose '"' is next, unescaped into the scratch buffer; it keeps at
// most keep bytes (whole characters) and reports whether any were left out. With keep 0 it
// only checks the string.
func (s *scanner) str(keep int) (out []byte, cut bool) {
	s.pos++ // the opening quote
	s.scratch = s.scratch[:0]
	s.keep, s.cut = keep, false
	for {
		if s.pos >= len(s.buf) && !s.fill(1) {
			if s.err == nil {
				s.failEnd()
			}
			return nil, false
		}
		rest := s.buf[s.pos:]
		if keep == 0 {
			// Skipping: only quotes and backslashes matter (UTF-8 is not checked in a
			// string that is not kept, as in encoding/json).
			q := bytes.IndexByte(rest, '"')
			end := q
			if end < 0 {
				end = len(rest)
			}
			if b := bytes.IndexByte(rest[:end], '\\'); b >= 0 {
				s.pos += b
				if !s.escape() {
					return nil, false
				}
				continue
			}
			s.pos += end
			if q >= 0 {
				s.pos++
				return nil, false
			}
			continue
		}
		// Plain ASCII runs are copied at once.
		i := 0
		for i < len(rest) {
			c := rest[i]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			i++
		}
		s.addASCII(rest[:i])
		s.pos += i
		if i == len(rest) {
			continue
		}
		switch c := rest[i]; {
		case c == '"':
			s.pos++
			return s.scratch, s.cut
		case c == '\\':
			if !s.escape() {
				return nil, false
			}
		case c < 0x20:
			// uWSGI writes raw control bytes of a request in progress: read them as a space.
			s.addRune(' ')
			s.pos++
		default:
			s.fill(utf8.UTFMax) // a character cut by the end of the buffer
			r, size := utf8.DecodeRune(s.buf[s.pos:])
			if r == utf8.RuneError && size == 1 {
				s.addRune(utf8.RuneError) // invalid UTF-8, as encoding/json reads it
			} else {
				s.add(s.buf[s.pos : s.pos+size])
			}
			s.pos += size
		}
	}
}

// addASCII appends what fits of the ASCII bytes p to the string being read.
func (s *scanner) addASCII(p []byte) {
	if s.cut || len(p) == 0 {
		return
	}
	if room := s.keep - len(s.scratch); len(p) > room {
		p, s.cut = p[:room], true
	}
	s.scratch = append(s.scratch, p...)
}

// add appends the character p to the string being read unless that would pass the bytes to
// keep; from the first cut on, nothing more is kept.
func (s *scanner) add(p []byte) {
	if len(p) == 0 {
		return
	}
	if s.cut || len(s.scratch)+len(p) > s.keep {
		s.cut = true
		return
	}
	s.scratch = append(s.scratch, p...)
}

func (s *scanner) addRune(r rune) {
	if s.cut || len(s.scratch)+utf8.RuneLen(r) > s.keep {
		s.cut = true
		return
	}
	s.scratch = utf8.AppendRune(s.scratch, r)
}

// escape reads the escape sequence at pos (a backslash is next) and adds its character to the
// string being read when it is kept.
func (s *scanner) escape() bool {
	if !s.fill(2) {
		if s.err == nil {
			s.failEnd()
		}
		return false
	}
	var r rune
	switch s.buf[s.pos+1] {
	case '"', '\\', '/':
		r = rune(s.buf[s.pos+1])
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'u':
		var ok bool
		if r, ok = s.hex4(); !ok {
			return false
		}
		if utf16.IsSurrogate(r) {
			// A pair is two escapes; a lone or mismatched half is U+FFFD and the escape
			// after it is read on its own (encoding/json does the same).
			r2 := utf8.RuneError
			if s.fill(6) && s.buf[s.pos] == '\\' && s.buf[s.pos+1] == 'u' {
				save := s.pos
				if r2, ok = s.hex4(); !ok {
					return false
				}
				if r2 = utf16.DecodeRune(r, r2); r2 == utf8.RuneError {
					s.pos = save
				}
			}
			r = r2
		}
		if s.keep > 0 {
			s.addRune(r)
		}
		return true
	default:
		s.fail("invalid escape in a string")
		return false
	}
	s.pos += 2
	if s.keep > 0 {
		s.addRune(r)
	}
	return true
}

// hex4 reads \uXXXX at pos.
func (s *scanner) hex4() (rune, bool) {
	if !s.fill(6) {
		if s.err == nil {
			s.failEnd()
		}
		return 0, false
	}
	var r rune
	for _, c := range s.buf[s.pos+2 : s.pos+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			s.fail("invalid \\u escape in a string")
			return 0, false
		}
		r = r*16 + rune(c)
	}
	s.pos += 6
	return r, true
}

// literal consumes the literal word (true, false, null) that starts at pos.
func (s *scanner) literal(word string) {
	if !s.fill(len(word)) {
		if s.err == nil {
			s.failEnd()
		}
		return
	}
	if string(s.buf[s.pos:s.pos+len(word)]) != word {
		s.fail("invalid literal")
		return
	}
	s.pos += len(word)
}

// number is a JSON number as read: its sign, its integer part (when it fits 64 bits) and
// whether it has a fraction or exponent.
type number struct {
	neg      bool
	mag      uint64
	overflow bool // the integer part does not fit 64 bits
	integer  bool // no fraction, no exponent
}

// num reads a number that starts at pos ('-' or a digit), checking its syntax.
func (s *scanner) num() (n number) {
	n.integer = true
	c, ok := s.byteAt()
	if ok && c == '-' {
		n.neg = true
		s.pos++
		c, ok = s.byteAt()
	}
	switch {
	case !ok:
		s.failEnd()
		return
	case c == '0':
		s.pos++
	case '1' <= c && c <= '9':
		for ok && '0' <= c && c <= '9' {
			// The digits in the buffer at once, then a refill if the number goes on.
			buf, pos, mag := s.buf, s.pos, n.mag
			for pos < len(buf) && '0' <= buf[pos] && buf[pos] <= '9' {
				d := uint64(buf[pos] - '0')
				if mag > (math.MaxUint64-d)/10 {
					n.overflow = true
				}
				mag = mag*10 + d
				pos++
			}
			s.pos, n.mag = pos, mag
			c, ok = s.byteAt()
		}
	default:
		s.fail("invalid number")
		return
	}
	if c, ok = s.byteAt(); ok && c == '.' {
		n.integer = false
		s.pos++
		if !s.digits() {
			return
		}
	}
	if c, ok = s.byteAt(); ok && (c == 'e' || c == 'E') {
		n.integer = false
		s.pos++
		if c, ok = s.byteAt(); ok && (c == '+' || c == '-') {
			s.pos++
		}
		s.digits()
	}
	return n
}

// digits reads one or more digits.
func (s *scanner) digits() bool {
	c, ok := s.byteAt()
	if !ok || c < '0' || c > '9' {
		if s.err == nil {
			s.fail("invalid number")
		}
		return false
	}
	for ok && '0' <= c && c <= '9' {
		s.pos++
		c, ok = s.byteAt()
	}
	return true
}

// byteAt returns the byte at pos without skipping white space.
func (s *scanner) byteAt() (byte, bool) {
	if s.pos < len(s.buf) || s.fill(1) {
		return s.buf[s.pos], true
	}
	return 0, false
}

// uint reads an unsigned integer into *dst; null leaves it as it is.
func (s *scanner) uint(dst *uint64) {
	c, ok := s.peek()
	switch {
	case !ok:
		if s.err == nil {
			s.failEnd()
		}
	case c == 'n':
		s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		at := s.offset()
		n := s.num()
		if s.err == nil && (n.neg || n.overflow || !n.integer) {
			s.err = fetch.Errorf(fetch.ReasonDecode, "decoding stats JSON: offset %d: want an unsigned integer", at)
			return
		}
		*dst = n.mag
	default:
		s.typeError("an unsigned integer")
	}
}

// int reads a signed integer into *dst; null leaves it as it is.
func (s *scanner) int(dst *int64) {
	c, ok := s.peek()
	switch {
	case !ok:
		if s.err == nil {
			s.failEnd()
		}
	case c == 'n':
		s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		at := s.offset()
		n := s.num()
		if s.err != nil {
			return
		}
		if n.overflow || !n.integer || (!n.neg && n.mag > math.MaxInt64) || (n.neg && n.mag > 1<<63) {
			s.err = fetch.Errorf(fetch.ReasonDecode, "decoding stats JSON: offset %d: want an integer", at)
			return
		}
		switch {
		case n.neg && n.mag == 1<<63:
			*dst = math.MinInt64
		case n.neg:
			*dst = -int64(n.mag)
		default:
			*dst = int64(n.mag)
		}
	default:
		s.typeError("an integer")
	}
}

// skip reads one value of any type and keeps nothing of it. Nesting is tracked in a stack of
// bytes, not by recursion, so a deep document costs no Go stack.
func (s *scanner) skip() {
	const (
		inObject = 1 // the container is an object
		atFirst  = 2 // no member or element of it read yet
	)
	var arr [32]byte
	stack := arr[:0]
	for s.err == nil {
		c, ok := s.peek()
		if !ok {
			if s.err == nil {
				s.failEnd()
			}
			return
		}
		switch {
		case c == '{' || c == '[':
			s.pos++
			s.depth++
			if s.depth > maxDepth {
				s.fail("nested more than %d levels deep", maxDepth)
				return
			}
			if c == '{' {
				stack = append(stack, inObject|atFirst)
			} else {
				stack = append(stack, atFirst)
			}
		case c == '"':
			s.str(0)
		case c == '-' || ('0' <= c && c <= '9'):
			s.num()
		case c == 't':
			s.literal("true")
		case c == 'f':
			s.literal("false")
		case c == 'n':
			s.literal("null")
		default:
			s.fail("want a value")
			return
		}
		// After a value or an opening bracket: close the containers that end here, then
		// find the next value.
		for len(stack) > 0 && s.err == nil {
			top := &stack[len(stack)-1]
			close := byte(']')
			if *top&inObject != 0 {
				close = '}'
			}
			first := *top&atFirst != 0
			if !s.next(close, &first) {
				stack = stack[:len(stack)-1]
				continue // the container was a value of the one around it
			}
			*top &^= atFirst
			if *top&inObject != 0 {
				s.key(0)
			}
			break
		}
		if len(stack) == 0 {
			return
		}
	}
}

// end checks that only white space follows the top-level value.
func (s *scanner) end() {
	if _, ok := s.peek(); ok {
		s.fail("data after the top-level object")
	}
}
