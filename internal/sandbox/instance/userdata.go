package instance

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"
)

// Content types, as cloud-init names them.
const (
	typeNotMultipart   = "text/x-not-multipart"
	typePlain          = "text/plain"
	typeShellScript    = "text/x-shellscript"
	typeCloudConfig    = "text/cloud-config"
	typeBoothook       = "text/cloud-boothook"
	typeIncludeURL     = "text/x-include-url"
	typeIncludeOnceURL = "text/x-include-once-url"
	typeArchive        = "text/cloud-config-archive"
)

// startsWith maps how user data starts (lower-cased) to its content type,
// longest first so that "#cloud-config-archive" is not taken for
// "#cloud-config".
var startsWith = []struct{ prefix, ctype string }{
	{"## template: jinja", "text/jinja2"},
	{"#cloud-config-archive", typeArchive},
	{"#cloud-config-jsonp", "text/cloud-config-jsonp"},
	{"#cloud-boothook", typeBoothook},
	{"#include-once", typeIncludeOnceURL},
	{"#cloud-config", typeCloudConfig},
	{"#part-handler", "text/part-handler"},
	{"#upstart-job", "text/upstart-job"},
	{"#include", typeIncludeURL},
	{"#!", typeShellScript},
}

// decompTypes are the content types whose payload cloud-init gunzips.
var decompTypes = []string{
	"application/gzip",
	"application/gzip-compressed",
	"application/gzipped",
	"application/x-compress",
	"application/x-compressed",
	"application/x-gunzip",
	"application/x-gzip",
	"application/x-gzip-compressed",
}

// scriptBuckets are the directories of scripts run in cloud-init's final
// stage, in the order it runs them, keyed by content type.
var scriptBuckets = []struct{ ctype, dir string }{
	{typeShellScript + "-per-once", "scripts-per-once"},
	{typeShellScript + "-per-boot", "scripts-per-boot"},
	{typeShellScript + "-per-instance", "scripts-per-instance"},
	{typeShellScript, "scripts"},
}

// mimeSniffLen is how much of the user data cloud-init searches for a
// "MIME-Version:" header.
const mimeSniffLen = 4096

// plan is what the user data asks for, in the order it runs.
type plan struct {
	notes      []string // console lines, printed before anything runs
	boothooks  []script
	bootcmd    []byte // a /bin/sh script, nil when there is no bootcmd
	writeFiles []file
	deferred   []file
	scripts    []script // final-stage scripts, in run order
}

// script is an executable file the supervisor writes, then runs.
type script struct {
	path    string // relative to the instance directory: "scripts/part-001"
	content []byte
}

// file is one write_files entry, decoded.
type file struct {
	path    string // as given
	content []byte
	perm    uint32
	append  bool
	err     error // set when the entry cannot be decoded; writing stops there
}

// part is one leaf of the user data's MIME tree.
type part struct {
	ctype    string
	filename string
	header   textproto.MIMEHeader
	payload  []byte
}

// parseUserData turns raw (base64-decoded) user data into a plan.
func parseUserData(data []byte) plan {
	var p plan
	if len(data) == 0 {
		p.notes = append(p.notes, "no user data")
		return p
	}
	data = maybeGunzip(data)
	parts, notes := splitParts(data)
	p.notes = append(p.notes, notes...)

	var (
		cc      cloudConfig
		buckets = map[string]map[string][]byte{} // dir -> file name -> content
		n       int
	)
	for _, pt := range parts {
		ctype, payload := pt.ctype, pt.payload
		if slices.Contains(decompTypes, ctype) {
			d, err := gunzip(payload)
			if err != nil {
				p.notes = append(p.notes, fmt.Sprintf("could not decompress user data part of type %s: %v; ignored", ctype, err))
				continue
			}
			ctype, payload = "", d
		}
		if ctype == "" {
			ctype = typePlain
		}
		if ctype == typePlain || ctype == typeNotMultipart || ctype == typeShellScript {
			if t := typeFromStart(payload); t != "" {
				ctype = t
			}
		}
		switch ctype {
		case typeIncludeURL, typeIncludeOnceURL, typeArchive:
			p.notes = append(p.notes, fmt.Sprintf("user data of type %s is not supported in the sandbox; ignored", ctype))
			continue
		}
		n++
		name := pt.filename
		if name == "" {
			name = fmt.Sprintf("part-%03d", n)
		}
		name = cleanFilename(name)

		if dir, ok := bucketDir(ctype); ok {
			if buckets[dir] == nil {
				buckets[dir] = map[string][]byte{}
			}
			buckets[dir][name] = payload // a later part of the same name wins, as files do
			continue
		}
		switch ctype {
		case typeCloudConfig:
			if err := cc.mergePart(payload, pt.header); err != nil {
				p.notes = append(p.notes, fmt.Sprintf("cloud-config %s: %v; ignored", name, err))
			}
		case typeBoothook:
			p.boothooks = append(p.boothooks, script{path: "boothooks/" + name, content: boothookContent(payload)})
		case typeNotMultipart:
			if len(bytes.TrimSpace(payload)) > 0 {
				p.notes = append(p.notes, fmt.Sprintf("user data is not executable (it starts with %q, not #! or #cloud-config); nothing runs", firstLine(payload)))
			}
		default:
			if len(payload) > 0 {
				p.notes = append(p.notes, fmt.Sprintf("user data part %s of type %s is not supported in the sandbox; ignored", name, ctype))
			}
		}
	}

	if cc.cfg != nil {
		cp := cc.plan()
		p.notes = append(p.notes, cp.notes...)
		p.bootcmd = cp.bootcmd
		p.writeFiles = cp.writeFiles
		p.deferred = cp.deferred
		if cp.runcmd != nil {
			if buckets["scripts"] == nil {
				buckets["scripts"] = map[string][]byte{}
			}
			buckets["scripts"]["runcmd"] = cp.runcmd
		}
	}
	for _, b := range scriptBuckets {
		names := make([]string, 0, len(buckets[b.dir]))
		for name := range buckets[b.dir] {
			names = append(names, name)
		}
		slices.Sort(names) // cloud-init's runparts runs a directory in name order
		for _, name := range names {
			p.scripts = append(p.scripts, script{path: b.dir + "/" + name, content: buckets[b.dir][name]})
		}
	}
	return p
}

func bucketDir(ctype string) (string, bool) {
	for _, b := range scriptBuckets {
		if b.ctype == ctype {
			return b.dir, true
		}
	}
	return "", false
}

// typeFromStart types a payload by how it starts, as cloud-init does; it
// returns "" when nothing matches or the payload is not UTF-8.
func typeFromStart(payload []byte) string {
	if !utf8.Valid(payload) {
		return ""
	}
	head := strings.TrimLeft(string(payload), " \t\r\n\v\f")
	if len(head) > 64 {
		head = head[:64]
	}
	lc := strings.ToLower(head)
	for _, s := range startsWith {
		if strings.HasPrefix(lc, s.prefix) {
			return s.ctype
		}
	}
	return ""
}

// maybeGunzip decompresses gzip data; data that is not gzip, or does not
// decompress, is returned unchanged, as cloud-init's decomp_gzip does.
func maybeGunzip(data []byte) []byte {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data
	}
	d, err := gunzip(data)
	if err != nil {
		return data
	}
	return d
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	d, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return d, nil
}

// splitParts returns the leaves of the user data's MIME tree, or the user
// data itself as one text/x-not-multipart part when it is not MIME.
func splitParts(data []byte) ([]part, []string) {
	sniff := data
	if len(sniff) > mimeSniffLen {
		sniff = sniff[:mimeSniffLen]
	}
	if !bytes.Contains(bytes.ToLower(sniff), []byte("mime-version:")) {
		return []part{{ctype: typeNotMultipart, payload: data}}, nil
	}
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	hdr, err := tr.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		// Python's email parser takes text that does not start with
		// headers for a body without headers: plain text, typed by how it
		// starts. "mime-version:" was somewhere else, in a cloud-config
		// perhaps.
		return []part{{ctype: typePlain, payload: data}}, nil
	}
	var w mimeWalker
	w.walk(hdr, tr.R, 0)
	return w.parts, w.notes
}

// maxMIMEDepth bounds nested multiparts.
const maxMIMEDepth = 10

type mimeWalker struct {
	parts []part
	notes []string
}

func (w *mimeWalker) walk(hdr textproto.MIMEHeader, body io.Reader, depth int) {
	ctype, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
	if err != nil {
		ctype, params = typePlain, nil // what Python's email package assumes
	}
	if strings.HasPrefix(ctype, "multipart/") {
		if depth >= maxMIMEDepth {
			w.notes = append(w.notes, "MIME user data is nested too deep; the rest is ignored")
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				w.notes = append(w.notes, fmt.Sprintf("could not read MIME user data: %v; the rest is ignored", err))
				return
			}
			w.walk(p.Header, p, depth+1)
		}
	}
	payload, err := io.ReadAll(body)
	if err != nil {
		w.notes = append(w.notes, fmt.Sprintf("could not read MIME user data part: %v; ignored", err))
		return
	}
	switch strings.ToLower(strings.TrimSpace(hdr.Get("Content-Transfer-Encoding"))) {
	case "base64":
		if d, err := decodeBase64(payload); err == nil {
			payload = d
		}
	case "quoted-printable": // multipart.Part decodes it itself; this is a top-level one
		if d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(payload))); err == nil {
			payload = d
		}
	}
	w.parts = append(w.parts, part{ctype: ctype, filename: filename(hdr, params), header: hdr, payload: payload})
}

// decodeBase64 decodes base64 that may be split into lines.
func decodeBase64(b []byte) ([]byte, error) {
	clean := bytes.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', ' ', '\t':
			return -1
		}
		return r
	}, b)
	d, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		d, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(string(clean), "="))
	}
	if err != nil {
		return nil, fmt.Errorf("decode base64: %w", err)
	}
	return d, nil
}

// filename is the part's file name from Content-Disposition, else the
// Content-Type name parameter, as Python's get_filename.
func filename(hdr textproto.MIMEHeader, ctypeParams map[string]string) string {
	if _, params, err := mime.ParseMediaType(hdr.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		return params["filename"]
	}
	return ctypeParams["name"]
}

// cleanFilename keeps the characters cloud-init keeps in part file names,
// turning "/" into "_".
func cleanFilename(name string) string {
	name = strings.ReplaceAll(name, "/", "_")
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_-.()", r):
			return r
		}
		return -1
	}, name)
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		name = "part"
	}
	return name
}

// boothookContent strips the "#cloud-boothook" line, as cloud-init does.
func boothookContent(payload []byte) []byte {
	s := string(payload)
	if i := strings.IndexByte(s, '\n'); i > 0 && s[i-1] == '\r' {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	s = strings.TrimPrefix(s, "#cloud-boothook")
	return []byte(strings.TrimLeft(s, " \t\r\n\v\f"))
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 24 {
		s = s[:24] + "..."
	}
	return strings.TrimRight(s, "\r")
}
