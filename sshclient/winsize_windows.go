package sshclient

import (
	"time"

	"golang.org/x/term"
)

// sizePoll is how often the console's size is looked at: a resize shows
// on the remote side within a quarter second, as with Windows OpenSSH,
// for one cheap call per tick.
const sizePoll = 250 * time.Millisecond

// watchSize calls resize with the console's new size, read from the
// output handle fd, whenever it differs from the last one (w, h at
// first), until done is closed.
func watchSize(done <-chan struct{}, fd, w, h int, resize func(w, h int)) {
	t := time.NewTicker(sizePoll)
	defer t.Stop()
	pollSize(done, t.C, w, h, func() (int, int, error) { return term.GetSize(fd) }, resize)
}
