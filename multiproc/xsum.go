package multiproc

import "math"

// xsum is an exact sum of float64 terms: the finite terms are kept as an expansion (Shewchuk,
// "Adaptive precision floating-point arithmetic", 1997), a list of non-overlapping partial
// sums whose exact total is the exact total of every term, and the result is that total
// rounded once (to nearest, ties to even). So a merged value does not depend on the order of
// the files or on which of them were folded into the store: it is the correctly rounded sum,
// and a term taken back (added negated) leaves exactly what was there before it. Sums of
// integers below 2^53 stay in one partial, so the common case costs one two-sum per term.
//
// Infinite and NaN terms are counted, not summed, so they can be taken back too. A finite sum
// whose partials overflow float64 (terms near 1.8e308) is counted as an infinite term of its
// sign; such an accumulator is not exactly reversible (ovf reports it).
type xsum struct {
	hi   float64   // the largest partial
	lo   []float64 // the smaller partials, in increasing magnitude
	n    int32     // terms added minus terms taken back
	nan  int32
	pinf int32
	ninf int32
	ovf  bool // a finite sum overflowed: counted as an infinite term
}

// twoSum returns s = fl(a+b) and the rounding error e, so that a + b == s + e exactly (Knuth).
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return s, e
}

// add adds x. The common case (one partial, a finite sum with no rounding error: whole
// numbers, and most sums of few terms) takes the short path.
func (a *xsum) add(x float64) {
	a.n++
	if len(a.lo) == 0 {
		s := a.hi + x
		bb := s - a.hi
		if s-s == 0 && (a.hi-(s-bb))+(x-bb) == 0 { // finite, and exact
			a.hi = s
			return
		}
	}
	a.term(x, 1)
}

// sub takes back a term x added before.
func (a *xsum) sub(x float64) {
	a.n--
	a.term(-x, -1)
}

// term adds x to the partials; sign is +1 for a term added, -1 for one taken back (which
// uncounts an infinite or NaN term instead of adding its negation).
func (a *xsum) term(x float64, sign int32) {
	switch {
	case x != x:
		a.nan += sign
		return
	case math.IsInf(x, 1):
		if sign > 0 {
			a.pinf++
		} else {
			a.ninf-- // -(-Inf) taken back
		}
		return
	case math.IsInf(x, -1):
		if sign > 0 {
			a.ninf++
		} else {
			a.pinf-- // -(+Inf) taken back
		}
		return
	}
	if len(a.lo) == 0 {
		s, e := twoSum(a.hi, x)
		if math.IsInf(s, 0) {
			a.overflow(s)
			return
		}
		a.hi = s
		if e != 0 {
			a.lo = append(a.lo, e)
		}
		return
	}
	// Grow the expansion: x absorbs each partial from the smallest up, leaving the
	// non-zero rounding errors behind in place.
	i := 0
	for j := 0; j < len(a.lo); j++ {
		s, e := twoSum(x, a.lo[j])
		if e != 0 {
			a.lo[i] = e
			i++
		}
		x = s
	}
	s, e := twoSum(x, a.hi)
	if math.IsInf(s, 0) {
		a.lo = a.lo[:i]
		a.overflow(s)
		return
	}
	if e != 0 {
		if i < len(a.lo) {
			a.lo[i] = e
		} else {
			a.lo = append(a.lo, e)
		}
		i++
	}
	a.lo = a.lo[:i]
	a.hi = s
	if s == 0 && i > 0 { // the top cancelled out: the next partial is the largest
		a.hi = a.lo[i-1]
		a.lo = a.lo[:i-1]
	}
}

// overflow counts a finite sum that overflowed as an infinite term of its sign.
func (a *xsum) overflow(s float64) {
	a.ovf = true
	if s > 0 {
		a.pinf++
	} else {
		a.ninf++
	}
}

// addSum adds every term of b (b is unchanged).
func (a *xsum) addSum(b *xsum) {
	a.n += b.n
	a.nan += b.nan
	a.pinf += b.pinf
	a.ninf += b.ninf
	a.ovf = a.ovf || b.ovf
	for _, p := range b.lo {
		a.term(p, 1)
	}
	if b.hi != 0 {
		a.term(b.hi, 1)
	}
}

// reset empties the sum, keeping the partials' array.
func (a *xsum) reset() {
	*a = xsum{lo: a.lo[:0]}
}

// clone returns a copy that shares nothing with a.
func (a *xsum) clone() xsum {
	c := *a
	if len(a.lo) > 0 {
		c.lo = append([]float64(nil), a.lo...)
	}
	return c
}

// value is the sum, rounded once.
func (a *xsum) value() float64 {
	switch {
	case a.nan > 0 || (a.pinf > 0 && a.ninf > 0):
		return math.NaN()
	case a.pinf > 0:
		return math.Inf(1)
	case a.ninf > 0:
		return math.Inf(-1)
	}
	if len(a.lo) == 0 {
		return a.hi
	}
	// From the largest partial down, until an addition is inexact; then fix the last
	// rounding when it was a tie that the partials below break (the rounding of hi + lo
	// went to even, but what lies below lo makes it not a tie).
	hi := a.hi
	lo := 0.0
	j := len(a.lo)
	for j > 0 {
		j--
		x, y := hi, a.lo[j]
		hi = x + y
		lo = y - (hi - x)
		if lo != 0 {
			break
		}
	}
	if j > 0 && ((lo < 0 && a.lo[j-1] < 0) || (lo > 0 && a.lo[j-1] > 0)) {
		y := lo * 2
		x := hi + y
		if x-hi == y {
			hi = x
		}
	}
	return hi
}
