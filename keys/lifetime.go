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
// integer is seconds, else iso_duration.Duration.Parse's grammar, each
// part its length in seconds.
func gcloudSeconds(in string) (float64, error) {
	if n, err := strconv.ParseUint(in, 10, 63); err == nil {
		return float64(n), nil
	}
	if strings.HasPrefix(in, "-") {
		return 0, errors.New("a lifetime cannot be negative")
	}
	d, err := parseISODuration(in)
	if err != nil {
		return 0, err
	}
	return d.years*year + d.months*month + d.days*day + d.hours*3600 + d.minutes*60 + d.seconds, nil
}

// isoDuration is a duration as gcloud's iso_duration.Duration reads it:
// its parts as given, a week as 7 days, ms, us and ns as seconds.
type isoDuration struct{ years, months, days, hours, minutes, seconds float64 }

// parseISODuration is iso_duration.Duration.Parse: an optional sign, an
// optional P (without it, T is implied: M is minutes), then numbers each
// followed by Y, M (months before T, minutes after), W, D, T, H, M, S, or
// a last MS, US or NS.
func parseISODuration(in string) (isoDuration, error) {
	var d isoDuration
	s := strings.ToUpper(in)
	sign := 1.0
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		s, sign = rest, -1
	} else {
		s = strings.TrimPrefix(s, "+")
	}
	tImplied := !strings.HasPrefix(s, "P")
	s = strings.TrimPrefix(s, "P")
	tSeen := false
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
				return d, errors.New("more than one T")
			}
			tSeen, tImplied = true, true
			continue
		case num.Len() == 0:
			return d, fmt.Errorf("unit %q without a number", s[i:])
		}
		n, err := strconv.ParseFloat(num.String(), 64)
		if err != nil {
			return d, fmt.Errorf("bad number %q", num.String())
		}
		n *= sign
		num.Reset()
		// ms, us and ns only as the last part.
		if (c == 'M' || c == 'U' || c == 'N') && i+2 == len(s) && s[i+1] == 'S' {
			d.seconds += n / map[byte]float64{'M': 1e3, 'U': 1e6, 'N': 1e9}[c]
			i++
			continue
		}
		switch {
		case c == 'Y':
			d.years += n
		case c == 'W':
			d.days += n * 7
		case c == 'D':
			d.days += n
		case c == 'M' && !tImplied:
			tImplied = true
			d.months += n
		case c == 'H':
			tImplied = true
			d.hours += n
		case c == 'M':
			tImplied = true
			d.minutes += n
		case c == 'S':
			tImplied = true
			d.seconds += n
		default:
			return d, fmt.Errorf("unknown unit %q", string(c))
		}
		if total := math.Abs(d.years*year + d.months*month + d.days*day + d.hours*3600 + d.minutes*60 + d.seconds); math.IsInf(total, 0) || total > 1e12 {
			return d, errors.New("too long")
		}
	}
	// "P0" is gcloud's one number without a unit.
	if num.Len() > 0 && strings.TrimLeft(strings.ToUpper(in), "+-") != "P0" {
		return d, errors.New("a duration must end with a unit")
	}
	return d, nil
}
