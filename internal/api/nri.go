package api

// CounterNRIConnected is the status counter (a gauge) that is 1 while
// the agent's NRI plugin is synchronized with the runtime, so the runtime
// calls it at each container's start, and 0 otherwise; an agent without
// --nri has no such counter. ocigate-hook --nri-gate reads it.
const CounterNRIConnected = "nri_connected"
