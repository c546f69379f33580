package fleet

import "testing"

func TestParallelFor(t *testing.T) {
	for _, tt := range []struct {
		files uint64
		want  int
	}{
		{0, 1},
		{64, 1},
		{130, 1},
		{256, 64},
		{1024, 448},
		{1 << 20, (1<<20 - 128) / 2},
		{1 << 62, 1 << 20},
	} {
		if got := parallelFor(tt.files); got != tt.want {
			t.Errorf("parallelFor(%d) = %d, want %d", tt.files, got, tt.want)
		}
	}
}
