package api

import "path/filepath"

// CounterNRIConnected is the status counter (a gauge) that is 1 while
// the agent's NRI plugin is synchronized with the runtime, so the runtime
// calls it at each container's start, and 0 otherwise; an agent without
// --nri has no such counter.
const CounterNRIConnected = "nri_connected"

// NRIMarker is the file an agent listening on socket keeps beside it
// while its NRI plugin is synchronized with the runtime, and removes
// when the plugin is not (and at start). ocigate-hook --nri-gate, on
// every container's start path, reads it instead of asking the agent's
// status: a stat, not a status call. It says nothing without an agent
// listening on socket.
func NRIMarker(socket string) string {
	return filepath.Join(filepath.Dir(socket), "nri-connected")
}
