package multiproc

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactSum is the sum of xs rounded once, computed with math/big (finite terms only).
func exactSum(xs []float64) float64 {
	acc := new(big.Float).SetPrec(4200).SetMode(big.ToNearestEven)
	for _, x := range xs {
		acc.Add(acc, new(big.Float).SetPrec(4200).SetFloat64(x))
	}
	f, _ := acc.Float64()
	return f
}

// TestXsumExact: the sum is the correctly rounded exact sum, whatever the order, and taking
// terms back leaves the exact sum of the others.
func TestXsumExact(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func() float64{
		"integers":  func() float64 { return float64(rnd.IntN(1000)) },
		"tenths":    func() float64 { return float64(rnd.IntN(100)) / 10 },
		"uniform":   func() float64 { return rnd.Float64() * 3 },
		"signed":    func() float64 { return (rnd.Float64() - 0.5) * math.Pow(10, float64(rnd.IntN(40)-20)) },
		"huge+tiny": func() float64 { return []float64{1e16, 1, -1e16, 1e-16, 3.3}[rnd.IntN(5)] },
		"wide":      func() float64 { return math.Ldexp(rnd.Float64()-0.5, rnd.IntN(2000)-1000) },
	}
	for name, gen := range gens {
		for trial := 0; trial < 200; trial++ {
			n := 1 + rnd.IntN(60)
			xs := make([]float64, n)
			for i := range xs {
				xs[i] = gen()
			}
			want := exactSum(xs)
			var a xsum
			for _, x := range xs {
				a.add(x)
			}
			if got := a.value(); got != want {
				t.Fatalf("%s: sum of %v = %v, want %v", name, xs, got, want)
			}
			// Another order gives the same.
			var b xsum
			for _, i := range rnd.Perm(n) {
				b.add(xs[i])
			}
			if got := b.value(); got != want {
				t.Fatalf("%s: permuted sum %v, want %v", name, got, want)
			}
			// Take back a random subset: the rest's exact sum.
			var rest []float64
			for _, x := range xs {
				if rnd.IntN(2) == 0 {
					a.sub(x)
				} else {
					rest = append(rest, x)
				}
			}
			if got, want := a.value(), exactSum(rest); got != want || a.n != int32(len(rest)) {
				t.Fatalf("%s: after taking back, %v (%d terms), want %v (%d)", name, got, a.n, want, len(rest))
			}
			// addSum and clone.
			c := b.clone()
			c.addSum(&b)
			if got, want := c.value(), exactSum(append(append([]float64(nil), xs...), xs...)); got != want {
				t.Fatalf("%s: doubled %v, want %v", name, got, want)
			}
		}
	}
}

func TestXsumSpecial(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, tc := range []struct {
		add, sub []float64
		want     float64
	}{
		{[]float64{1, inf}, nil, inf},
		{[]float64{1, -inf}, nil, -inf},
		{[]float64{inf, -inf}, nil, nan},
		{[]float64{1, nan}, nil, nan},
		{[]float64{1, nan, 2}, []float64{nan}, 3},
		{[]float64{inf, -inf, 5}, []float64{-inf}, inf},
		{[]float64{inf, 5}, []float64{inf}, 5},
		{[]float64{math.MaxFloat64, math.MaxFloat64}, nil, inf},
		{[]float64{0.1, 0.2, 0.3}, nil, 0.6}, // Python: 0.1 + 0.2 + 0.3 == 0.6000000000000001, math.fsum 0.6
		{[]float64{1e-16, 1, 1e16}, nil, 10000000000000002},
	} {
		var a xsum
		for _, x := range tc.add {
			a.add(x)
		}
		for _, x := range tc.sub {
			a.sub(x)
		}
		got := a.value()
		if !(got == tc.want || (got != got && tc.want != tc.want)) {
			t.Errorf("%v - %v = %v, want %v", tc.add, tc.sub, got, tc.want)
		}
	}
}
