package functions

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxUnzipped is Lambda's limit on a function's unzipped code.
const maxUnzipped = 262144000

// unzip writes a function's zip into dir, keeping each file's executable
// bits. Entries that would land outside dir are refused.
func unzip(data []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
	}
	if total > maxUnzipped {
		return invalid("Unzipped size must be smaller than %d bytes", maxUnzipped)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("code directory: %w", err)
	}
	for _, f := range zr.File {
		name := filepath.FromSlash(f.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) || strings.Contains(name, string(filepath.Separator)+".."+string(filepath.Separator)) {
			return invalid("Could not unzip uploaded file: the entry %q points outside the function's directory.", f.Name)
		}
		path := filepath.Join(dir, name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if f.Mode()&os.ModeSymlink != 0 {
			return invalid("Could not unzip uploaded file: the entry %q is a symbolic link, which the sandbox does not unpack.", f.Name)
		}
		mode := f.Mode().Perm() | 0o400
		if mode&0o077 == 0 && f.Mode().Perm() == 0 {
			mode = 0o644
		}
		if err := writeEntry(f, path, mode); err != nil {
			return invalid("Could not unzip uploaded file. Please check your file, then try to upload again. (%s: %v)", f.Name, err)
		}
	}
	return nil
}

func writeEntry(f *zip.File, path string, mode os.FileMode) error {
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, io.LimitReader(r, maxUnzipped)); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}
