package multiproc

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Generation is the layout of the entries of a prometheus_client multiprocess .db file.
type Generation int

const (
	// GenUnknown: the entries walk with neither layout.
	GenUnknown Generation = iota
	// GenValue: each entry holds a float64 value (clients before 0.18.0).
	GenValue
	// GenTimestamp: each entry holds a float64 value and a float64 timestamp (0.18.0 on).
	GenTimestamp
)

func (g Generation) String() string {
	switch g {
	case GenValue:
		return "v1"
	case GenTimestamp:
		return "v2"
	}
	return "unknown"
}

// Reasons a file or an entry is skipped; they are label values of the exporter's error metrics.
const (
	FileReasonShort       = "short"         // shorter than the 8-byte header
	FileReasonTruncated   = "truncated"     // shorter than the header's used field says
	FileReasonCorrupt     = "corrupt"       // used field or entries not of the format
	FileReasonBadName     = "bad_name"      // a .db name that is not TYPE_[MODE_]ID.db
	FileReasonIgnored     = "ignored"       // not a .db file, or a dot file
	FileReasonSymlink     = "symlink"       // a .db name that is a symbolic link (never followed)
	FileReasonNotRegular  = "not_regular"   // a .db name that is a directory, FIFO, socket, device or another filesystem's file
	FileReasonVanished    = "vanished"      // deleted between listing and reading
	FileReasonPermission  = "permission"    // may not be opened
	FileReasonRead        = "read"          // an I/O error while reading
	EntryReasonBadKey     = "bad_key"       // an entry's key is not the JSON the client writes
	EntryReasonBadSample  = "bad_sample"    // a sample name or le label the type does not have
	EntryReasonTypeClash  = "type_conflict" // a metric name in files of two types
	EntryReasonKeyTooLong = "key_too_long"  // a key longer than Options.MaxKeyBytes
)

const headerSize = 8

// FileError is a file that cannot be read as a whole.
type FileError struct {
	Reason string
	Err    error
}

func (e *FileError) Error() string { return e.Err.Error() }

func fileErrorf(reason, format string, args ...any) error {
	return &FileError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// UsedOf returns the header's used field, or an error when data cannot be a .db file.
func UsedOf(data []byte) (int, error) {
	if len(data) < headerSize {
		return 0, fileErrorf(FileReasonShort, "%d bytes, shorter than the 8-byte header", len(data))
	}
	used := int(int32(binary.LittleEndian.Uint32(data)))
	switch {
	case used == 0:
		return headerSize, nil // just created: the writer sets used right after this
	case used < headerSize || used%8 != 0:
		return 0, fileErrorf(FileReasonCorrupt, "header says %d bytes used, not a multiple of 8 from 8 on", used)
	}
	return used, nil
}

// walk checks that entries of the given stride (bytes after the key: 8 or 16) end exactly at
// used, and that every key looks like a JSON array when checkKeys is set.
func walk(data []byte, used, stride int, checkKeys bool) bool {
	pos := headerSize
	for pos < used {
		if pos+4 > used {
			return false
		}
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		if n < 0 || n > used {
			return false
		}
		valueAt := pos + 4 + n + (8 - (n+4)%8)
		end := valueAt + stride
		if end > used {
			return false
		}
		if checkKeys && (n < 2 || data[pos+4] != '[' || data[pos+4+n-1] != ']') {
			return false
		}
		pos = end
	}
	return true
}

// Detect finds the generation of a file's entries by the stride that walks them exactly to
// used. data must hold at least used bytes. When both strides walk (possible in theory with
// several entries), the one whose keys all look like JSON arrays wins, value-only first.
func Detect(data []byte, used int) Generation {
	if used > len(data) {
		return GenUnknown
	}
	v1 := walk(data, used, 8, false)
	v2 := walk(data, used, 16, false)
	switch {
	case v1 && !v2:
		return GenValue
	case v2 && !v1:
		return GenTimestamp
	case v1 && v2:
		if walk(data, used, 8, true) {
			return GenValue
		}
		if walk(data, used, 16, true) {
			return GenTimestamp
		}
	}
	return GenUnknown
}

// Entry is one entry of a .db file. Key aliases the file's bytes.
type Entry struct {
	Key       []byte
	Value     float64
	Timestamp float64 // 0 in value-only files
	ValueAt   int     // offset of the value in the file
}

// ParseFile checks a file's header and layout and returns its used size and generation. A
// file that is not a .db file of either generation is a *FileError.
func ParseFile(data []byte) (used int, gen Generation, err error) {
	used, err = UsedOf(data)
	if err != nil {
		return 0, GenUnknown, err
	}
	if used > len(data) {
		return 0, GenUnknown, fileErrorf(FileReasonTruncated, "header says %d bytes used, the file has %d", used, len(data))
	}
	gen = Detect(data, used)
	if gen == GenUnknown {
		return 0, GenUnknown, fileErrorf(FileReasonCorrupt, "entries do not end at the %d bytes used with either layout", used)
	}
	return used, gen, nil
}

// Entries calls fn for every entry of data, whose used and generation ParseFile returned. fn
// must not keep e.Key beyond the call unless it copies it. It checks every bound again (the
// bytes may be a shared mapping that another process changes) and stops at the first entry
// that does not fit; it returns how many entries it passed to fn.
func Entries(data []byte, used int, gen Generation, fn func(e Entry)) int {
	return walkEntries(data, used, gen, func(e Entry) bool { fn(e); return true })
}

// walkEntries is Entries with a callback that may stop the walk by returning false.
func walkEntries(data []byte, used int, gen Generation, fn func(e Entry) bool) int {
	stride := 8
	if gen == GenTimestamp {
		stride = 16
	}
	used = min(used, len(data))
	pos, count := headerSize, 0
	for pos+4 <= used {
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		if n < 0 || n > used {
			break
		}
		valueAt := pos + 4 + n + (8 - (n+4)%8)
		if valueAt+stride > used {
			break
		}
		e := Entry{
			Key:     data[pos+4 : pos+4+n],
			Value:   math.Float64frombits(binary.LittleEndian.Uint64(data[valueAt:])),
			ValueAt: valueAt,
		}
		if stride == 16 {
			e.Timestamp = math.Float64frombits(binary.LittleEndian.Uint64(data[valueAt+8:]))
		}
		if !fn(e) {
			break
		}
		count++
		pos = valueAt + stride
	}
	return count
}

// Metric types a file name may carry.
const (
	TypeCounter   = "counter"
	TypeGauge     = "gauge"
	TypeHistogram = "histogram"
	TypeSummary   = "summary"
)

// FileName is what a .db file's name says.
type FileName struct {
	Type string // counter, gauge, histogram, summary
	Mode string // gauges: all, liveall, min, max, sum, mostrecent and their live forms
	ID   string // the writer's process identifier: everything after TYPE_[MODE_] up to .db
	// PIDLabel is the gauge's pid label value exactly as prometheus_client computes it: the
	// third '_'-separated part of the name without its last three characters. It differs
	// from ID when the identifier holds '_' (gauge_all_worker_7.db gives "wor").
	PIDLabel string
}

// Live reports whether the file holds a live* gauge (dropped when its process dies).
func (f FileName) Live() bool { return f.Type == TypeGauge && strings.HasPrefix(f.Mode, "live") }

// ParseFileName reads NAME.db. ok is false for a name that is not a multiprocess file.
func ParseFileName(name string) (fn FileName, err error) {
	base, found := strings.CutSuffix(name, ".db")
	if !found {
		return fn, fileErrorf(FileReasonIgnored, "%q is not a .db file", name)
	}
	if strings.HasPrefix(name, ".") {
		return fn, fileErrorf(FileReasonIgnored, "%q is a dot file", name)
	}
	typ, rest, found := strings.Cut(base, "_")
	switch typ {
	case TypeCounter, TypeHistogram, TypeSummary:
		if !found {
			return fn, fileErrorf(FileReasonBadName, "%q has no process identifier", name)
		}
		return FileName{Type: typ, ID: rest}, nil
	case TypeGauge:
		mode, id, found2 := strings.Cut(rest, "_")
		if !found || !found2 {
			return fn, fileErrorf(FileReasonBadName, "%q is not gauge_MODE_ID.db", name)
		}
		third, _, _ := strings.Cut(id+".db", "_")
		return FileName{Type: typ, Mode: mode, ID: id, PIDLabel: dropLastRunes(third, 3)}, nil
	}
	return fn, fileErrorf(FileReasonBadName, "%q: unknown metric type %q", name, typ)
}

// dropLastRunes removes the last n characters (code points, as Python slices) of s.
func dropLastRunes(s string, n int) string {
	for i := 0; i < n && len(s) > 0; i++ {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
