package keys

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// unreadDatetimes are the forms of gcloud's parser that ParseDatetime
// refuses rather than reads (month and weekday names, other date orders
// and separators, bare numbers, dateutil's decimal hours).
var unreadDatetimes = map[string]bool{
	"Thu, 25 Sep 2003 10:49:41 -0300": true, "Thu Sep 25 10:36:28 EDT 2003": true, "2003 10:36:28 EDT 25 Sep Thu": true,
	"Thu Sep 25 10:36:28 2003": true, "Thu Sep 25 10:36:28": true, "Thu Sep 10:36:28": true, "Thu 10:36:28": true,
	"Thu 10:36": true, "Thu Sep 25 2003": true, "Sep 25 2003": true, "Sep 2003": true, "Sep": true, "2003": true,
	"2003-Sep-25": true, "25-Sep-2003": true, "Sep-25-2003": true, "09-25-2003": true, "2003.Sep.25": true,
	"2003/09/25": true, "2003 Sep 25": true, "2003 09 25": true, "90": true, "1.5h": true, "1,5h": true,
}

// TestParseDatetimeAsGcloud: for every input of testdata/gcloud-datetimes.json
// (gcloud topic datetimes' examples, the forms users type, and edge
// cases), ParseDatetime gives the time gcloud's own parser gave, at the
// same now in the same zone; or refuses what gcloud refuses; or refuses
// one of the forms it does not read, never reading it differently. The
// table was made by running gcloud's Python (testdata/gcloud-datetimes.py).
func TestParseDatetimeAsGcloud(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "gcloud-datetimes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Now  string `json:"now"`
		TZ   string `json:"tz"`
		Rows []struct {
			In  string `json:"in"`
			Out string `json:"out"`
			Err string `json:"err"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(table.TZ)
	if err != nil {
		t.Skipf("no zone data for %s: %v", table.TZ, err)
	}
	now, err := time.ParseInLocation("2006-01-02T15:04:05.999999", table.Now, loc)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, row := range table.Rows {
		got, err := ParseDatetime(row.In, now)
		switch {
		case unreadDatetimes[row.In]:
			if err == nil {
				t.Errorf("%q: read as %v; it is listed as a form gkessh refuses", row.In, got)
			}
		case row.Err != "":
			if err == nil {
				t.Errorf("%q: read as %v, gcloud refuses it (%s)", row.In, got, row.Err)
			}
		default:
			want, perr := time.Parse("2006-01-02T15:04:05.999999-07:00", row.Out)
			if perr != nil {
				t.Fatalf("table: %v", perr)
			}
			if err != nil || !got.Equal(want) {
				t.Errorf("%q: got %v, %v; gcloud: %v", row.In, got, err, want)
			}
			read++
		}
	}
	if read < 80 {
		t.Errorf("only %d of %d inputs read: the table lost its point", read, len(table.Rows))
	}
}

func TestParseExpirationForms(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"2026-12-08T10:00:00Z", 24 * time.Hour, false},
		{"2026-12-07 12:30", 150 * time.Minute, false},
		{"+1d", 24 * time.Hour, false},
		{"+PT30M", 30 * time.Minute, false},
		{"1d12h", 36 * time.Hour, false},
		{"11:00", time.Hour, false},
		{"1h", 0, true},         // today at 01:00: past
		{"-1d", 0, true},        // past
		{"+p", 0, true},         // now
		{"2001-01-01", 0, true}, // past
		{"2200-01-01", 0, true}, // over maxLifetime
		{"soon", 0, true},
		{"Sep 2030", 0, true},
	}
	for _, tt := range tests {
		at, err := ParseExpiration(tt.in, now)
		if got := at.Sub(now); (err != nil) != tt.err || !tt.err && got != tt.want {
			t.Errorf("ParseExpiration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// FuzzParseDatetime: any input gives an error or a time; a duration's
// time and an explicit time agree with the time ParseExpiration says.
func FuzzParseDatetime(f *testing.F) {
	for _, s := range []string{"2030-08-29T18:52:51.142Z", "2030-08-29 10:00", "+1d", "1h", "20300829T1049", "+P1Y2M3DT4H5M6.7S", "10:36", "t30m", "90m", "2030-08-29T10:00:00+05:30"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 10, 20, 30, 123456000, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDatetime(s, now)
		if err != nil {
			return
		}
		if at, err := ParseExpiration(s, now); err == nil && !at.Equal(got) {
			t.Errorf("%q: ParseDatetime %v, ParseExpiration %v", s, got, at)
		}
	})
}
