package peer

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Exchange is a client of a server in a container or guest: it dials
// 127.0.0.1:port until the server answers (for up to timeout), sends
// in, closes its write side when halfClose, and returns what it read
// back: everything until the server closes, or up to the first until
// (when not empty). timeout also bounds the exchange itself.
func Exchange(port int, in string, halfClose bool, until string, timeout time.Duration) (string, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var c net.Conn
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, in); err != nil {
		return "", fmt.Errorf("send to %s: %w", addr, err)
	}
	if halfClose {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if until != "" && strings.Contains(got.String(), until) || err == io.EOF {
			return got.String(), nil
		}
		if err != nil {
			return got.String(), fmt.Errorf("read from %s: %w", addr, err)
		}
	}
}
