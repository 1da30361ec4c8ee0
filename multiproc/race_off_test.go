//go:build !race

package multiproc

const raceEnabled = 0
