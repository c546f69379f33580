package keys

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// gcloud's duration units (core/util/iso_duration.py): a year is 365.2422
// days and a month a twelfth of it.
const (
	day   = 24 * 60 * 60.0
	year  = 365.2422 * day
	month = year / 12
)

// maxLifetime bounds a key lifetime well inside time.Duration.
const maxLifetime = 100 * 365 * 24 * time.Hour

// ParseLifetime reads a key lifetime as gcloud's --ssh-key-expire-after
// does (ISO 8601 durations with P optional, as in gcloud topic datetimes):
// "90" is 90 seconds, "30m", "1d12h", "P1D", "PT1H30M", "P1M" (a month:
// without P, M is minutes), "1.5h", "500ms". It must be at least a second,
// except "0", which means the key never expires.
func ParseLifetime(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	secs, err := gcloudSeconds(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %v: want a duration like 30m, 24h, 1d12h, P1D or 90 (seconds)", s, err)
	}
	if secs < 1 {
		return 0, fmt.Errorf("%q: shorter than a second (0 means never expire)", s)
	}
	d := time.Duration(math.Round(secs * float64(time.Second)))
	if secs*float64(time.Second) > float64(maxLifetime) {
		return 0, fmt.Errorf("%q: longer than %v", s, maxLifetime)
	}
	return d, nil
}

// gcloudSeconds is times.ParseDuration with default suffix "s": a plain
// integer is seconds, else iso_duration.Duration.Parse's grammar.
func gcloudSeconds(in string) (float64, error) {
	if n, err := strconv.ParseUint(in, 10, 63); err == nil {
		return float64(n), nil
	}
	s := strings.ToUpper(in)
	s = strings.TrimPrefix(s, "+") // a sign: gcloud's lower bound refuses '-'
	tImplied := !strings.HasPrefix(s, "P")
	s = strings.TrimPrefix(s, "P")
	tSeen := false
	total := 0.0
	var num strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			num.WriteByte(c)
			continue
		case c == '.' || c == ',':
			num.WriteByte('.')
			continue
		case c == 'T':
			if tSeen {
				return 0, errors.New("more than one T")
			}
			tSeen, tImplied = true, true
			continue
		case num.Len() == 0:
			return 0, fmt.Errorf("unit %q without a number", s[i:])
		}
		n, err := strconv.ParseFloat(num.String(), 64)
		if err != nil {
			return 0, fmt.Errorf("bad number %q", num.String())
		}
		num.Reset()
		// ms, us and ns only as the last part.
		if (c == 'M' || c == 'U' || c == 'N') && i+2 == len(s) && s[i+1] == 'S' {
			total += n / map[byte]float64{'M': 1e3, 'U': 1e6, 'N': 1e9}[c]
			i++
			continue
		}
		switch {
		case c == 'Y':
			total += n * year
		case c == 'W':
			total += n * 7 * day
		case c == 'D':
			total += n * day
		case c == 'M' && !tImplied:
			tImplied = true
			total += n * month
		case c == 'H':
			tImplied = true
			total += n * 3600
		case c == 'M':
			tImplied = true
			total += n * 60
		case c == 'S':
			tImplied = true
			total += n
		default:
			return 0, fmt.Errorf("unknown unit %q", string(c))
		}
		if math.IsInf(total, 0) || total > 1e12 {
			return 0, errors.New("too long")
		}
	}
	if num.Len() > 0 {
		return 0, errors.New("a duration must end with a unit")
	}
	return total, nil
}

// ParseExpiration reads gcloud's --ssh-key-expiration: a time such as
// 2017-08-29T18:52:51.142Z (RFC 3339), 2017-08-29T18:52:51 or 2017-08-29
// (local time), which must be after now. It returns the lifetime left.
func ParseExpiration(s string, now time.Time) (time.Duration, error) {
	var t time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02"} {
		if layout == time.RFC3339Nano {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, time.Local)
		}
		if err == nil {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%q: want a time like 2017-08-29T18:52:51Z or 2017-08-29", s)
	}
	if !t.After(now) {
		return 0, fmt.Errorf("%q: must be in the future", s)
	}
	if t.Sub(now) > maxLifetime {
		return 0, fmt.Errorf("%q: further off than %v", s, maxLifetime)
	}
	return t.Sub(now), nil
}
