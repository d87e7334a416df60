package messaging

// EBNextFire exposes the schedule arithmetic to the package's tests.
var EBNextFire = ebNextFire
