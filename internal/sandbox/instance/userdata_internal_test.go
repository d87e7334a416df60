package instance

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func multipartOf(parts ...string) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"XYZ\"\r\nMIME-Version: 1.0\r\n\r\n")
	for _, p := range parts {
		b.WriteString("--XYZ\r\n" + p + "\r\n")
	}
	b.WriteString("--XYZ--\r\n")
	return []byte(b.String())
}

func TestParseUserData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		data      []byte
		scripts   []string // paths, in run order
		boothooks []string
		notes     []string // each must be a substring of some note
		noNotes   bool
		runcmd    string // exact script, when not ""
		bootcmd   string
		files     []string // write_files paths
	}{
		{
			name:    "a #! script is the first part",
			data:    []byte("#!/bin/bash\necho hi\n"),
			scripts: []string{"scripts/part-001"},
			noNotes: true,
		},
		{
			name:    "types are found ignoring case and leading white space",
			data:    []byte("\n  #Cloud-Config\nruncmd: [ls]\n"),
			scripts: []string{"scripts/runcmd"},
			runcmd:  "#!/bin/sh\nls\n",
		},
		{
			name:  "cloud-config-archive is not taken for cloud-config",
			data:  []byte("#cloud-config-archive\n- type: text/x-shellscript\n  content: '#!/bin/sh'\n"),
			notes: []string{"text/cloud-config-archive is not supported"},
		},
		{
			name:  "include is not fetched",
			data:  []byte("#include\nhttps://example.com/user-data\n"),
			notes: []string{"text/x-include-url is not supported"},
		},
		{
			name:    "gzip-compressed cloud-config",
			data:    gzipped(t, "#cloud-config\nruncmd:\n  - echo hi\n"),
			scripts: []string{"scripts/runcmd"},
			runcmd:  "#!/bin/sh\necho hi\n",
		},
		{
			name:  "plain text is not executable",
			data:  []byte("just some text\n"),
			notes: []string{`user data is not executable (it starts with "just some text"`},
		},
		{
			name:  "a multipart header without MIME-Version is not MIME, as in cloud-init",
			data:  []byte("Content-Type: multipart/mixed; boundary=\"XYZ\"\n\n--XYZ\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n--XYZ--\n"),
			notes: []string{"user data is not executable"},
		},
		{
			name:    "cloud-config that mentions MIME-Version is still cloud-config",
			data:    []byte("#cloud-config\nwrite_files:\n  - path: /etc/mail.txt\n    content: 'MIME-Version: 1.0'\n"),
			noNotes: true,
			files:   []string{"/etc/mail.txt"},
		},
		{
			name: "gzip part with base64 transfer encoding",
			data: multipartOf("Content-Type: application/x-gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				base64.StdEncoding.EncodeToString(gzipped(t, "#!/bin/sh\necho zipped\n"))),
			scripts: []string{"scripts/part-001"},
			noNotes: true,
		},
		{
			name:    "quoted-printable part",
			data:    multipartOf("Content-Type: text/x-shellscript\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n#!/bin/sh\r\necho a=3Db\r\n"),
			scripts: []string{"scripts/part-001"},
			noNotes: true,
		},
		{
			name: "nested multipart",
			data: multipartOf(
				"Content-Type: multipart/mixed; boundary=\"INNER\"\r\n\r\n--INNER\r\nContent-Type: text/x-shellscript\r\n\r\n#!/bin/sh\r\n--INNER--\r\n",
				"Content-Type: text/x-shellscript\r\n\r\n#!/bin/sh\r\n",
			),
			scripts: []string{"scripts/part-001", "scripts/part-002"},
		},
		{
			name: "per-frequency scripts run before user scripts",
			data: multipartOf(
				"Content-Type: text/x-shellscript\r\n\r\n#!/bin/sh\r\n",
				"Content-Type: text/x-shellscript-per-instance\r\n\r\n#!/bin/sh\r\n",
				"Content-Type: text/x-shellscript-per-boot\r\n\r\n#!/bin/sh\r\n",
				"Content-Type: text/x-shellscript-per-once\r\n\r\n#!/bin/sh\r\n",
			),
			scripts: []string{"scripts-per-once/part-004", "scripts-per-boot/part-003", "scripts-per-instance/part-002", "scripts/part-001"},
		},
		{
			name:    "a shell-script part holding cloud-config is cloud-config",
			data:    multipartOf("Content-Type: text/x-shellscript\r\n\r\n#cloud-config\r\nruncmd: [date]\r\n"),
			scripts: []string{"scripts/runcmd"},
			runcmd:  "#!/bin/sh\ndate\n",
		},
		{
			name: "a part named runcmd is replaced by runcmd, as the file is",
			data: multipartOf(
				"Content-Type: text/x-shellscript\r\nContent-Disposition: attachment; filename=\"runcmd\"\r\n\r\n#!/bin/sh\r\necho part\r\n",
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nruncmd: [date]\r\n",
			),
			scripts: []string{"scripts/runcmd"},
			runcmd:  "#!/bin/sh\ndate\n",
		},
		{
			name:    "file names are cleaned",
			data:    multipartOf("Content-Type: text/x-shellscript\r\nContent-Disposition: attachment; filename=\"../etc/evil script.sh\"\r\n\r\n#!/bin/sh\r\n"),
			scripts: []string{"scripts/.._etc_evilscript.sh"},
		},
		{
			name:      "boothooks lose their header",
			data:      []byte("#cloud-boothook\r\n#!/bin/sh\r\necho boot\r\n"),
			boothooks: []string{"boothooks/part-001"},
		},
		{
			name:  "unknown part types are reported",
			data:  multipartOf("Content-Type: application/json\r\n\r\n{}\r\n"),
			notes: []string{"user data part part-001 of type application/json is not supported"},
		},
		{
			name: "merge_how in the yaml, in list form, appends",
			data: multipartOf(
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nruncmd: [one]\r\n",
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nmerge_how:\r\n - name: list\r\n   settings: [append]\r\n - name: dict\r\n   settings: [no_replace, recurse_list]\r\nruncmd: [two]\r\n",
			),
			runcmd:  "#!/bin/sh\none\ntwo\n",
			noNotes: true,
		},
		{
			name: "dict(no_replace) without recursion keeps the first part's keys",
			data: multipartOf(
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nruncmd: [one]\r\n",
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nmerge_how: 'dict(no_replace)+list()'\r\nruncmd: [two]\r\nbootcmd: [three]\r\n",
			),
			runcmd:  "#!/bin/sh\none\n",
			bootcmd: "#!/bin/sh\nthree\n",
		},
		{
			name: "list(prepend) puts the later part first",
			data: multipartOf(
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nruncmd: [one]\r\n",
				"Content-Type: text/cloud-config\r\nMerge-Type: dict(recurse_array)+list(prepend)\r\n\r\n#cloud-config\r\nruncmd: [two]\r\n",
			),
			runcmd: "#!/bin/sh\ntwo\none\n",
		},
		{
			name: "an unknown merger drops the part",
			data: multipartOf(
				"Content-Type: text/cloud-config\r\n\r\n#cloud-config\r\nruncmd: [one]\r\n",
				"Content-Type: text/cloud-config\r\nMerge-Type: tuple(append)\r\n\r\n#cloud-config\r\nruncmd: [two]\r\n",
			),
			runcmd: "#!/bin/sh\none\n",
			notes:  []string{`cloud-config part-002: merger "tuple": unknown merger; ignored`},
		},
		{
			name:   "runcmd list entries are single-quoted and nulls skipped",
			data:   []byte("#cloud-config\nruncmd:\n  - [echo, \"it's\", 3, true]\n  -\n  - echo $HOME\n"),
			runcmd: "#!/bin/sh\n'echo' 'it'\\''s' '3' 'True'\necho $HOME\n",
		},
		{
			name:  "a runcmd entry that is neither string nor list stops runcmd",
			data:  []byte("#cloud-config\nruncmd:\n  - echo ok\n  - {a: b}\n"),
			notes: []string{"cloud-config runcmd: entry 2 is a mapping, not a string or a list; not run"},
		},
		{
			name:  "yaml that is not a mapping is reported",
			data:  []byte("#cloud-config\n- a\n- b\n"),
			notes: []string{"cloud-config part-001: yaml is a list, not a mapping; ignored"},
		},
		{
			name:  "broken yaml is reported",
			data:  []byte("#cloud-config\nruncmd: [\n"),
			notes: []string{"cloud-config part-001: parse yaml:"},
		},
		{
			name:  "write_files that is not a list is reported",
			data:  []byte("#cloud-config\nwrite_files: /etc/x\n"),
			notes: []string{"write_files is a string, not a list; ignored"},
		},
		{
			name:  "write_files entry without a path is skipped",
			data:  []byte("#cloud-config\nwrite_files:\n  - content: x\n"),
			notes: []string{"write_files entry 1 has no path; skipped"},
		},
		{
			name:    "empty user data",
			data:    nil,
			notes:   []string{"no user data"},
			scripts: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseUserData(tt.data)
			var scripts, boothooks []string
			var runcmd string
			for _, s := range p.scripts {
				scripts = append(scripts, s.path)
				if s.path == "scripts/runcmd" {
					runcmd = string(s.content)
				}
			}
			for _, s := range p.boothooks {
				boothooks = append(boothooks, s.path)
				if got, want := string(s.content), "#!/bin/sh\necho boot\n"; got != want {
					t.Errorf("boothook content = %q, want %q", got, want)
				}
			}
			if tt.scripts != nil && !slices.Equal(scripts, tt.scripts) {
				t.Errorf("scripts = %q, want %q", scripts, tt.scripts)
			}
			if tt.boothooks != nil && !slices.Equal(boothooks, tt.boothooks) {
				t.Errorf("boothooks = %q, want %q", boothooks, tt.boothooks)
			}
			if tt.runcmd != "" && runcmd != tt.runcmd {
				t.Errorf("runcmd = %q, want %q", runcmd, tt.runcmd)
			}
			if tt.bootcmd != "" && string(p.bootcmd) != tt.bootcmd {
				t.Errorf("bootcmd = %q, want %q", p.bootcmd, tt.bootcmd)
			}
			if tt.files != nil {
				var files []string
				for _, f := range p.writeFiles {
					files = append(files, f.path)
				}
				if !slices.Equal(files, tt.files) {
					t.Errorf("write_files paths = %q, want %q", files, tt.files)
				}
			}
			if tt.noNotes && len(p.notes) > 0 {
				t.Errorf("notes = %q, want none", p.notes)
			}
			for _, want := range tt.notes {
				if !slices.ContainsFunc(p.notes, func(n string) bool { return strings.Contains(n, want) }) {
					t.Errorf("notes = %q, want one holding %q", p.notes, want)
				}
			}
		})
	}
}

func TestWriteFilesEntries(t *testing.T) {
	t.Parallel()
	zipped := base64.StdEncoding.EncodeToString(gzipped(t, "unzipped"))
	data := []byte(`#cloud-config
write_files:
  - path: /a
    content: plain
  - path: /b
    permissions: '0600'
    encoding: text/plain
    content: text
  - path: /c
    permissions: 0755
    encoding: gz+b64
    content: ` + zipped + `
  - path: /d
    permissions: "755"
    encoding: gzip
    content: !!binary |
      ` + zipped + `
  - path: /e
    permissions: bogus
    append: "yes"
    encoding: base64
    content: |
      aGVs
      bG8=
  - path: /f
    defer: true
  - path: /g
    encoding: b64
    content: "not base64!"
`)
	p := parseUserData(data)
	type entry struct {
		path, content string
		perm          uint32
		append        bool
		err           bool
	}
	var got []entry
	for _, f := range append(slices.Clone(p.writeFiles), p.deferred...) {
		got = append(got, entry{f.path, string(f.content), f.perm, f.append, f.err != nil})
	}
	want := []entry{
		{"/a", "plain", 0o644, false, false},
		{"/b", "text", 0o600, false, false},
		{"/c", "unzipped", 0o755, false, false},
		{"/d", "unzipped", 0o755, false, false},
		{"/e", "hello", 0o644, true, false},
		{"/g", "", 0o644, false, true},
		{"/f", "", 0o644, false, false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("write_files =\n%+v\nwant\n%+v", got, want)
	}
	if len(p.notes) > 0 {
		t.Errorf("notes = %q, want none", p.notes)
	}
}
