package gce

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSetMetadataValue(t *testing.T) {
	tests := []struct {
		name       string
		kv         []string
		key, value string
		want       string
	}{
		{"replace in place", []string{"a", "1", "ssh-keys", "x", "b", "2"}, "ssh-keys", "y", "a=1 ssh-keys=y b=2"},
		{"append", []string{"a", "1"}, "ssh-keys", "y", "a=1 ssh-keys=y"},
		{"empty removes", []string{"a", "1", "ssh-keys", "x", "b", "2"}, "ssh-keys", "", "a=1 b=2"},
		{"empty absent is a no-op", []string{"a", "1"}, "ssh-keys", "", "a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := md(tt.kv...)
			SetMetadataValue(m, tt.key, tt.value)
			var got []string
			for _, it := range m.Items {
				got = append(got, it.Key+"="+*it.Value)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Fatalf("items %s, want %s", s, tt.want)
			}
		})
	}
}

func TestOperationError(t *testing.T) {
	tests := []struct {
		name     string
		op       *operation
		wantCode int // 0 = no error
	}{
		{"done", &operation{Status: "DONE"}, 0},
		{"http status", &operation{HttpErrorStatusCode: 412, HttpErrorMessage: "Precondition Failed"}, 412},
		{"errors only", &operation{Error: &opError{Errors: []*opErrorItem{{Code: "X", Message: "boom"}}}}, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := operationError(tt.op)
			if statusCode(err) != tt.wantCode || (err == nil) != (tt.wantCode == 0) {
				t.Fatalf("operationError = %v (code %d), want code %d", err, statusCode(err), tt.wantCode)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		d := backoff(attempt)
		if d < 25*time.Millisecond || d >= 3*time.Second {
			t.Errorf("backoff(%d) = %v, out of bounds", attempt, d)
		}
	}
}

// TestUpdate drives the read-modify-write loop with a fake store that
// conflicts a given number of times.
func TestUpdate(t *testing.T) {
	conflict := &APIError{Code: http.StatusPreconditionFailed, Message: "Supplied fingerprint does not match current metadata fingerprint."}
	tests := []struct {
		name       string
		conflicts  int
		change     bool
		editErr    error
		writeErr   error
		wantWrites int
		wantReads  int
		wantErr    string
	}{
		{"first try", 0, true, nil, nil, 1, 0, ""},
		{"no change writes nothing", 0, false, nil, nil, 0, 0, ""},
		{"retries conflicts", 3, true, nil, nil, 4, 3, ""},
		{"gives up", MaxAttempts, true, nil, nil, MaxAttempts, MaxAttempts - 1, "after 10 attempts"},
		{"edit error", 0, true, errors.New("too big"), nil, 0, 0, "too big"},
		{"other errors are not retried", 0, true, nil, &APIError{Code: 403}, 1, 0, "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads, writes, left := 0, 0, tt.conflicts
			read := func(context.Context) (*Metadata, error) { reads++; return md("k", "v"), nil }
			write := func(_ context.Context, m *Metadata) error {
				writes++
				if tt.writeErr != nil {
					return tt.writeErr
				}
				if left > 0 {
					left--
					return conflict
				}
				return nil
			}
			first := md("k", "v")
			edit := func(m *Metadata) (bool, error) {
				SetMetadataValue(m, "k", "changed")
				return tt.change, tt.editErr
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			changed, err := update(ctx, first, read, write, edit, func(int) time.Duration { return 0 })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil || changed != tt.change {
				t.Fatalf("update = %v, %v; want changed %v", changed, err, tt.change)
			}
			if reads != tt.wantReads || writes != tt.wantWrites {
				t.Fatalf("%d reads, %d writes; want %d, %d", reads, writes, tt.wantReads, tt.wantWrites)
			}
			if v, _ := MetadataValue(first, "k"); v != "v" {
				t.Fatal("update changed the caller's metadata")
			}
		})
	}
}
