package agentlog

import (
	"fmt"
	"os"
	"strings"
)

// Tail returns the last n lines of the file at path (an agent's log), for
// failure messages; when the file cannot be read, the error in brackets.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
