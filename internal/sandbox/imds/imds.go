// Package imds serves one simulated instance's EC2 Instance Metadata Service
// (IMDSv2) on its own loopback listener.
//
// The handler reads the instance's metadata from a Source on every request
// and caches nothing, so changes to tags, the Auto Scaling target lifecycle
// state or a spot interruption notice show up on the next request.
//
// Deliberate differences from AWS:
//   - IMDSv2 only. Every GET must carry a valid session token, whatever the
//     instance's HttpTokens option says; a GET without one (IMDSv1) gets 401
//     Unauthorized, which is what AWS answers when HttpTokens is "required".
//   - Tokens expire on the sandbox's clock (the handler's now). When a test
//     advances it past a token's TTL, the next GET gets 401; the SDK then
//     fetches a new token and retries, after its retry delay (up to 1 s).
//   - HttpEndpoint "disabled": AWS refuses the connection; this handler answers
//     404 on every path, the token PUT included.
//   - An instance without an instance profile still has a role,
//     [DefaultRoleName], so the SDK's default credential chain works inside the
//     sandbox. Credentials are fixed dummy values (the sandbox does not check
//     signatures).
//   - availability-zone-id is derived, not assigned per account: the
//     region's short code, "-az", and the zone letter's position (a → 1).
//     The short code is the region's first part, the initials of its middle
//     parts (north n, south s, east e, west w, central c, northeast ne,
//     southeast se, northwest nw, southwest sw; any other word its first
//     letter) and its number: us-east-1a → use1-az1, ap-northeast-1c →
//     apne1-az3, us-gov-west-1b → usgw1-az2.
//   - local-hostname and hostname are EC2's private DNS names for the
//     loopback address: ip-127-0-0-5.ec2.internal in us-east-1,
//     ip-127-0-0-5.<region>.compute.internal elsewhere.
//   - The identity document's architecture is arm64 for Graviton families
//     (a "g" after the generation digit: m6g, c7gn, t4g) and x86_64
//     otherwise.
//   - mac is 02:00:00 followed by the low three bytes of the private IPv4
//     address (the sandbox's addresses are 127.x.y.z, so it is unique).
//   - Only what is listed in the package's directory listings is served;
//     anything else (public-ipv4, events/…, network/…) is 404, as on an
//     instance without a public address.
//   - Version prefixes other than "latest" (a date such as 2021-03-23, or
//     1.0) are served as "latest".
package imds

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// Source supplies an instance's metadata; [world.World] satisfies it.
type Source interface {
	// InstanceMetadata returns the instance's metadata, false when the
	// instance is unknown.
	InstanceMetadata(id string) (world.Metadata, bool)
}

var _ Source = (*world.World)(nil)

// DefaultRoleName is the role served to an instance launched without an
// instance profile.
const DefaultRoleName = "lifeguard-sandbox"

// Header names (net/http canonicalises them; matching is case-insensitive).
const (
	ttlHeader   = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenHeader = "X-Aws-Ec2-Metadata-Token"
)

// Token TTL bounds in seconds, as on AWS.
const (
	minTTL = 1
	maxTTL = 21600
)

const tokenPath = "/latest/api/token"

// handler serves one instance's IMDS.
type handler struct {
	src    Source
	id     string
	now    func() time.Time
	tokens tokenStore
}

// NewHandler returns the IMDSv2 handler for instance id. It reads src on
// every request and judges token expiry by now (time.Now when nil). A nil
// src behaves as a source that knows no instance. The handler is safe for
// concurrent use and never blocks on anything but src.
//
// Answers: 200 with the value; 400 for a token PUT without a valid TTL
// (1–21600 s); 401 for a GET without a valid, unexpired token; 403 for a
// token PUT carrying X-Forwarded-For; 404 for unknown paths, an unknown
// instance or a disabled endpoint; 405 for a method other than PUT on the
// token path or other than GET/HEAD elsewhere. Errors carry AWS's small HTML
// page ("404 - Not Found").
func NewHandler(src Source, instanceID string, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return &handler{src: src, id: instanceID, now: now}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "EC2ws")
	md, known := h.metadata()
	if known && md.Options.HttpEndpoint == "disabled" {
		writeError(w, http.StatusNotFound)
		return
	}
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	switch {
	case path == tokenPath && (known || r.Method == http.MethodPut):
		// Tokens do not depend on the instance: an instance the source
		// does not know yet can still be asked for one.
		h.serveToken(w, r)
		return
	case !known:
		writeError(w, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed)
		return
	}
	if !h.tokens.valid(r.Header.Get(tokenHeader), h.now()) {
		writeError(w, http.StatusUnauthorized)
		return
	}
	n := lookup(tree(md, h.now()), path)
	if n == nil {
		writeError(w, http.StatusNotFound)
		return
	}
	body, ctype := n.content()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (h *handler) metadata() (world.Metadata, bool) {
	if h.src == nil {
		return world.Metadata{}, false
	}
	return h.src.InstanceMetadata(h.id)
}

// serveToken answers PUT /latest/api/token.
func (h *handler) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		writeError(w, http.StatusMethodNotAllowed)
		return
	}
	if len(r.Header.Values("X-Forwarded-For")) > 0 {
		writeError(w, http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(ttlHeader)))
	if err != nil || ttl < minTTL || ttl > maxTTL {
		writeError(w, http.StatusBadRequest)
		return
	}
	tok, err := h.tokens.issue(h.now(), time.Duration(ttl)*time.Second)
	if err != nil {
		// crypto/rand does not fail on supported platforms; refuse the token
		// rather than hand out a guessable one.
		writeError(w, http.StatusBadRequest)
		return
	}
	w.Header().Set(ttlHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(tok)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(tok))
}

// writeError writes AWS IMDS's HTML error page for status.
func writeError(w http.ResponseWriter, status int) {
	title := strconv.Itoa(status) + " - " + http.StatusText(status)
	body := `<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
	"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>` + title + `</title>
 </head>
 <body>
  <h1>` + title + `</h1>
 </body>
</html>
`
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
