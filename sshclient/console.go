package sshclient

import (
	"unicode/utf16"
	"unicode/utf8"
)

// consoleReader reads a console's UTF-16 input (ReadConsoleW on Windows)
// as UTF-8, every character passed on: Ctrl-Z (0x1A) too, which Go's own
// console reader turns into the end of the input, as DOS did, while in a
// terminal session it must reach the node (suspend the job). A surrogate
// pair split across two reads is joined. It makes no OS call itself, so
// its test runs on every OS.
type consoleReader struct {
	read    func(units []uint16) (int, error)
	units   [512]uint16
	held    int    // a high surrogate kept from the last read (0 or 1)
	pending []byte // UTF-8 not yet returned
}

func (c *consoleReader) Read(b []byte) (int, error) {
	for len(c.pending) == 0 {
		n, err := c.read(c.units[c.held:])
		if err != nil {
			return 0, err
		}
		units := c.units[:c.held+n]
		var high uint16
		if last := len(units) - 1; n > 0 && units[last] >= 0xd800 && units[last] < 0xdc00 {
			high, units = units[last], units[:last] // its low half comes in the next read
		}
		c.pending = c.pending[:0]
		for i := 0; i < len(units); i++ {
			r := rune(units[i])
			if utf16.IsSurrogate(r) {
				r = utf8.RuneError
				if i+1 < len(units) {
					if d := utf16.DecodeRune(rune(units[i]), rune(units[i+1])); d != utf8.RuneError {
						r = d
						i++
					}
				}
			}
			c.pending = utf8.AppendRune(c.pending, r)
		}
		c.held = 0
		if high != 0 {
			c.units[0], c.held = high, 1
		}
		if n == 0 && len(c.pending) == 0 {
			return 0, nil // nothing read, as the console said
		}
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
