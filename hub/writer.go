package hub

// A connection's way out: its bounded send queue and the one writer goroutine that
// owns every write and the closing handshake.

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// sendQueue is a connection's bounded queue of frames. It holds no buffer while
// idle, and the writer takes everything queued at once, to send as few frames as it
// can.
type sendQueue struct {
	mu      sync.Mutex
	items   [][]byte
	max     int
	stopped bool          // the connection is closed: what is pushed is dropped
	ready   chan struct{} // capacity 1: something was queued since the last take
}

// push queues b; it reports false when the queue is full.
func (q *sendQueue) push(b []byte) bool {
	q.mu.Lock()
	switch {
	case q.stopped:
		q.mu.Unlock()
		return true // dropped: the connection is gone
	case len(q.items) >= q.max:
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns what is queued and leaves spare (emptied) as the new queue.
func (q *sendQueue) take(spare [][]byte) [][]byte {
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

func (q *sendQueue) stop() {
	q.mu.Lock()
	q.stopped, q.items = true, nil
	q.mu.Unlock()
}

// writeLoop is the connection's writer: it writes what is queued, as many messages
// per frame as fit in MaxFrame separated by '\n', and performs the closing handshake
// when asked. Writes carry no deadline of their own (a timer per write costs more
// than the write); the hub's sweeper cuts a write stuck past WriteTimeout instead.
func (c *conn) writeLoop() {
	var (
		buf   []byte   // joins the messages of one frame
		spare [][]byte // the queue's other slice, reused while it is small
	)
	ctx := context.Background()
	write := func(items [][]byte) error {
		for len(items) > 0 {
			frame, n := items[0], 1 // one message goes as it is: the shared bytes
			if len(items) > 1 && len(frame) < c.h.cfg.MaxFrame {
				buf = append(buf[:0], frame...)
				for n < len(items) && len(buf)+1+len(items[n]) <= c.h.cfg.MaxFrame {
					buf = append(buf, '\n')
					buf = append(buf, items[n]...)
					n++
				}
				frame = buf
			}
			c.writingSince.Store(time.Now().UnixNano())
			err := c.send(ctx, frame)
			c.writingSince.Store(0)
			if err != nil {
				return err
			}
			c.h.m.messagesOut.Add(float64(n))
			c.h.m.frames.Inc()
			items = items[n:]
		}
		if cap(buf) > 4*c.h.cfg.MaxFrame {
			buf = nil // a burst's buffer is not kept for an idle connection
		}
		return nil
	}
	takeAll := func() [][]byte {
		items := c.queue.take(spare)
		spare = nil
		if cap(items) <= 64 {
			spare = items
		}
		return items
	}
	for {
		select {
		case <-c.queue.ready:
			// Let the fan-out that woke this writer run on a little: under load more
			// messages are queued by then, and each frame (one write(2)) carries them all.
			runtime.Gosched()
			items := takeAll()
			err := write(items)
			clear(items) // the frames are shared: drop the references, not the bytes
			if err != nil {
				c.close(websocket.StatusAbnormalClosure, "", false)
			}
		case <-c.closing:
			if c.flush {
				_ = write(takeAll())
			}
			c.queue.stop()
			switch {
			case c.ws == nil:
			case c.closeCode == websocket.StatusAbnormalClosure:
				_ = c.ws.CloseNow()
			default:
				_ = c.ws.Close(c.closeCode, c.closeMsg)
			}
			close(c.written)
			return
		}
	}
}

// writeStuck reports whether a write has been in progress for longer than d.
func (c *conn) writeStuck(now time.Time, d time.Duration) bool {
	since := c.writingSince.Load()
	return since != 0 && now.Sub(time.Unix(0, since)) > d
}
