package redisstore

import (
	"strconv"
	"strings"
)

// ParseFloat reads a value as Python's float() reads the text the writer stores (redis-py
// writes repr(value): "3.0", "1e-05", "inf", "nan"). Go's parser agrees with Python's on
// what a writer produces; what it accepts beyond that and Python does not (hexadecimal
// floats) is refused, and what Python accepts beyond that and Go does not (surrounding
// white space, "_" between digits) is accepted.
func ParseFloat(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 400 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'x', 'X', 'p', 'P':
			return 0, false
		case '_':
			var ok bool
			if s, ok = dropUnderscores(s); !ok {
				return 0, false
			}
			i = len(s)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Out of range: Python gives ±inf, as ParseFloat does along with its error.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// dropUnderscores removes the single underscores Python allows between two digits.
func dropUnderscores(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
			return "", false
		}
	}
	return b.String(), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
