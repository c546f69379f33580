package sshclient

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestPollSize drives the Windows console-size poller with a fake clock
// and a fake console: a resize is sent once, when the size changes and
// only then, and a failed read changes nothing.
func TestPollSize(t *testing.T) {
	type size struct {
		w, h int
		err  error
	}
	tests := []struct {
		name  string
		reads []size // one per tick
		want  [][2]int
	}{
		{"unchanged", []size{{80, 24, nil}, {80, 24, nil}}, nil},
		{"one resize", []size{{80, 24, nil}, {120, 40, nil}, {120, 40, nil}}, [][2]int{{120, 40}}},
		{"width only", []size{{100, 24, nil}}, [][2]int{{100, 24}}},
		{"there and back", []size{{100, 30, nil}, {80, 24, nil}}, [][2]int{{100, 30}, {80, 24}}},
		{"read fails", []size{{0, 0, errors.New("not a console")}, {80, 24, nil}, {90, 24, nil}}, [][2]int{{90, 24}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tick := make(chan time.Time)
			done := make(chan struct{})
			reads := make(chan size, len(tt.reads))
			for _, r := range tt.reads {
				reads <- r
			}
			var got [][2]int
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				pollSize(done, tick, 80, 24, func() (int, int, error) {
					r := <-reads
					return r.w, r.h, r.err
				}, func(w, h int) { got = append(got, [2]int{w, h}) })
			}()
			for range tt.reads {
				tick <- time.Time{}
			}
			// The unbuffered tick above returns once pollSize took it; the
			// last read is done by the time it takes the next select.
			close(done)
			<-finished
			if len(reads) != 0 {
				t.Fatalf("%d sizes not read", len(reads))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("resized to %v, want %v", got, tt.want)
			}
		})
	}
}
