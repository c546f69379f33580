package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/oauth2"

	"github.com/gkessh/gkessh/internal/atomicfile"
	"github.com/gkessh/gkessh/internal/filelock"
)

// diskCache keeps access tokens in files of their own, 0600 in a 0700
// directory, named by a hash of principal, source, credentials and scopes.
// A nil *diskCache caches nothing.
type diskCache struct{ dir string }

// cached is a cache file's content.
type cached struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	Expiry      time.Time `json:"expiry"`
	Obtained    time.Time `json:"obtained"`
}

func openCache(dir string) *diskCache {
	if dir == "" {
		return nil
	}
	return &diskCache{dir} // store makes dir: a run that stores nothing writes nothing
}

// key identifies s's tokens: different principals, sources, credentials
// (a new login) or scopes never share one.
func (s *Source) key() string {
	h := sha256.Sum256([]byte(s.Principal + "\x00" + s.Kind + "\x00" + s.id + "\x00" + Scope))
	return hex.EncodeToString(h[:16])
}

func (c *diskCache) path(key string) string { return filepath.Join(c.dir, key+".json") }

// load returns the cached token under key; a missing or unreadable file is
// a miss.
func (c *diskCache) load(key string) (*oauth2.Token, time.Time, bool) {
	if c == nil {
		return nil, time.Time{}, false
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil, time.Time{}, false
	}
	var e cached
	if json.Unmarshal(b, &e) != nil || e.AccessToken == "" || e.Expiry.IsZero() {
		return nil, time.Time{}, false
	}
	return &oauth2.Token{AccessToken: e.AccessToken, TokenType: e.TokenType, Expiry: e.Expiry}, e.Obtained, true
}

// store writes the token whole and owner-only, so a process reading at the
// same time sees the old token or the new, never half.
func (c *diskCache) store(key string, tok *oauth2.Token, obtained time.Time) error {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(cached{tok.AccessToken, tok.Type(), tok.Expiry, obtained})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(c.path(key), b, atomicfile.Options{})
}

// lock serializes the fetches of key's token across processes; with no
// cache there is nothing to share, and no lock.
func (c *diskCache) lock(ctx context.Context, key string) (release func(), err error) {
	if c == nil {
		return nil, errors.New("no disk cache")
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil { // a token is stored next
		return nil, err
	}
	return filelock.Lock(ctx, filepath.Join(c.dir, key+".lock"))
}

func (c *diskCache) remove(key string) {
	if c != nil {
		os.Remove(c.path(key))
	}
}
