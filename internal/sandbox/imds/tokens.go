package imds

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// maxTokens bounds how many unexpired tokens one handler remembers; past it
// the token closest to expiry is forgotten.
const maxTokens = 4096

// tokenStore remembers issued session tokens and when they expire. The zero
// value is ready to use.
type tokenStore struct {
	mu     sync.Mutex
	expiry map[string]time.Time
}

// issue returns a new random token valid for ttl from now.
func (s *tokenStore) issue(now time.Time, ttl time.Duration) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	tok := base64.StdEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry == nil {
		s.expiry = map[string]time.Time{}
	}
	s.pruneLocked(now)
	s.expiry[tok] = now.Add(ttl)
	return tok, nil
}

// valid reports whether tok was issued here and has not expired at now.
func (s *tokenStore) valid(tok string, now time.Time) bool {
	if tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expiry[tok]
	return ok && now.Before(exp)
}

// pruneLocked forgets expired tokens and, at the bound, the one closest to
// expiry. s.mu must be held.
func (s *tokenStore) pruneLocked(now time.Time) {
	for t, exp := range s.expiry {
		if !now.Before(exp) {
			delete(s.expiry, t)
		}
	}
	for len(s.expiry) >= maxTokens {
		var oldest string
		var oldestExp time.Time
		for t, exp := range s.expiry {
			if oldest == "" || exp.Before(oldestExp) {
				oldest, oldestExp = t, exp
			}
		}
		delete(s.expiry, oldest)
	}
}
