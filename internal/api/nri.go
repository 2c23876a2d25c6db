package api

import "github.com/ocigate/ocigate/internal/api/wire"

// CounterNRIConnected is the status counter (a gauge) that is 1 while
// the agent's NRI plugin is synchronized with the runtime, so the runtime
// calls it at each container's start, and 0 otherwise; an agent without
// --nri has no such counter.
const CounterNRIConnected = "nri_connected"

// NRIMarker is the file an agent listening on socket keeps beside it
// while its NRI plugin is synchronized with the runtime (wire.NRIMarker).
func NRIMarker(socket string) string { return wire.NRIMarker(socket) }
