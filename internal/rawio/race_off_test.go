//go:build !race

package rawio

// raceEnabled reports a build with the race detector, whose own bookkeeping allocates.
const raceEnabled = false
