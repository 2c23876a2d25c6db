package apiserver

import (
	"container/list"
	"net"
	"sync"
)

// waitingConns are the accepted connections whose request has not been
// read, oldest first.
type waitingConns struct {
	mu    sync.Mutex
	order list.List // of *net.UnixConn
	index map[*net.UnixConn]*list.Element
}

// add records conn; when more than max wait, the oldest is closed (its
// read fails and its goroutine ends).
func (w *waitingConns) add(conn *net.UnixConn, max int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.index == nil {
		w.index = map[*net.UnixConn]*list.Element{}
	}
	w.index[conn] = w.order.PushBack(conn)
	for w.order.Len() > max {
		oldest := w.order.Front()
		c := w.order.Remove(oldest).(*net.UnixConn)
		delete(w.index, c)
		c.Close()
	}
}

// remove forgets conn once its request is read (or failed).
func (w *waitingConns) remove(conn *net.UnixConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.index[conn]; ok {
		w.order.Remove(e)
		delete(w.index, conn)
	}
}
