package main

import "github.com/ocigate/ocigate/internal/testenv/peer"

// listen starts a loopback TCP peer (internal/testenv/peer) that writes
// greeting to each connection and records what it receives; r fails if
// it cannot listen.
func listen(r *result, greeting string) *peer.Listener {
	ln, err := peer.Listen("127.0.0.1:0", []byte(greeting))
	if err != nil {
		r.fatalf("%v", err)
	}
	return ln
}
