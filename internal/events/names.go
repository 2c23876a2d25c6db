package events

import "strconv"

var families = map[uint8]string{1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}

var sockTypes = map[uint8]string{1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET"}

var protocols = map[uint8]string{0: "IPPROTO_IP", 1: "IPPROTO_ICMP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 58: "IPPROTO_ICMPV6", 132: "IPPROTO_SCTP", 255: "IPPROTO_RAW"}

func name(m map[uint8]string, v uint8) string {
	if s, ok := m[v]; ok {
		return s
	}
	return strconv.Itoa(int(v))
}

// FamilyName returns AF_* for a socket family.
func FamilyName(v uint8) string { return name(families, v) }

// SockTypeName returns SOCK_* for a socket type.
func SockTypeName(v uint8) string { return name(sockTypes, v) }

// ProtocolName returns IPPROTO_* for a protocol.
func ProtocolName(v uint8) string { return name(protocols, v) }

var states = map[uint8]string{1: "TCP_ESTABLISHED", 2: "TCP_SYN_SENT", 3: "TCP_SYN_RECV", 4: "TCP_FIN_WAIT1",
	5: "TCP_FIN_WAIT2", 6: "TCP_TIME_WAIT", 7: "TCP_CLOSE", 8: "TCP_CLOSE_WAIT", 9: "TCP_LAST_ACK",
	10: "TCP_LISTEN", 11: "TCP_CLOSING", 12: "TCP_NEW_SYN_RECV"}

// StateName returns TCP_* for a socket state; "" for 0 (unknown).
func StateName(v uint8) string {
	if v == 0 {
		return ""
	}
	return name(states, v)
}
