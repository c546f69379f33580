package sshclient

import "time"

// pollSize calls resize whenever size reports something other than the
// last size seen (w, h at first), checking at every tick until done is
// closed. It is how Windows consoles are followed, since no signal tells a
// console program of a resize; it makes no OS call itself, so its test
// runs on every OS.
func pollSize(done <-chan struct{}, tick <-chan time.Time, w, h int, size func() (int, int, error), resize func(w, h int)) {
	for {
		select {
		case <-done:
			return
		case <-tick:
		}
		nw, nh, err := size()
		if err != nil || (nw == w && nh == h) {
			continue
		}
		w, h = nw, nh
		resize(w, h)
	}
}
