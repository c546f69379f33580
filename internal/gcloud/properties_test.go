package gcloud

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	cases := []struct {
		name, in string
		want     Properties
		err      bool
	}{
		{"gcloud's own output", "[core]\naccount = ann@example.com\nproject = p1\n\n[compute]\nzone = us-west1-a\n",
			Properties{"core": {"account": "ann@example.com", "project": "p1"}, "compute": {"zone": "us-west1-a"}}, false},
		{"colon and case", "[core]\nProject: p1\r\n", Properties{"core": {"project": "p1"}}, false},
		{"comments", "# c\n[auth]\n; c\nimpersonate_service_account = sa@x # not a comment\n",
			Properties{"auth": {"impersonate_service_account": "sa@x # not a comment"}}, false},
		{"continuation", "[a]\nk = one\n  two\n\nj = 3\n", Properties{"a": {"k": "one\ntwo", "j": "3"}}, false},
		{"percent", "[a]\nk = 100%%\n", Properties{"a": {"k": "100%"}}, false},
		{"empty value", "[a]\nk =\n", Properties{"a": {"k": ""}}, false},
		{"first delimiter splits", "[a]\nk = x=y:z\n", Properties{"a": {"k": "x=y:z"}}, false},
		{"empty section", "[a]\n", Properties{"a": {}}, false},
		{"empty file", "", Properties{}, false},
		{"no section", "k = v\n", nil, true},
		{"no delimiter", "[a]\nk\n", nil, true},
		{"no name", "[a]\n= v\n", nil, true},
		{"duplicate section", "[a]\n[a]\n", nil, true},
		{"duplicate name", "[a]\nk = 1\nK = 2\n", nil, true},
		{"bad header", "[]\n", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProperties([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPropertiesDefaultSection(t *testing.T) {
	p, err := ParseProperties([]byte("[DEFAULT]\nk = d\n[a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Get("a", "K"); got != "d" {
		t.Errorf("Get(a, K) = %q, want d from [DEFAULT]", got)
	}
}

// FuzzParseProperties: never panics; every value it returns is found again
// by Get, and names are lower case without surrounding space.
func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{"[core]\nproject = p\n", "[a]\nk: v\n  more\n", "#x\n[a]\n;y\nk=%%\n", "[DEFAULT]\nk=1\n[b]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProperties(data)
		if err != nil {
			return
		}
		for s, opts := range p {
			for name, v := range opts {
				if name != strings.ToLower(strings.TrimSpace(name)) || name == "" {
					t.Errorf("name %q in [%s]", name, s)
				}
				if p.Get(s, name) != v {
					t.Errorf("Get(%s, %s) = %q, want %q", s, name, p.Get(s, name), v)
				}
			}
		}
	})
}
