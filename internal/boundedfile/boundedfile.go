// Package boundedfile reads files that another program writes, such as a
// runtime's records, without trusting their size.
package boundedfile

import (
	"fmt"
	"io"
	"os"
)

// Read returns the contents of file, or an error naming it when it holds
// more than max bytes (the size from stat is not trusted: the file may
// grow while it is read).
func Read(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s exceeds %d bytes", file, max)
	}
	return data, nil
}
