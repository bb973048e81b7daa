package redacttest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/neonmeter/neonmeter/internal/redact"
)

// Finding is one place that holds a prefix of a secret at least redact.MinPrefix bytes long
// (or a whole secret shorter than that). It never holds the secret itself, so a test may print
// it: Context shows the surroundings with the found bytes replaced by a marker.
type Finding struct {
	// Where names the place: "path:line" for files and text, "db.table.column" for ClickHouse.
	Where string
	// Secret is the index of the secret, in the order the scan was given them.
	Secret int
	// Len is how many bytes of the secret were found (the longest prefix at that place).
	Len int
	// Rows is, for ClickHouse, how many rows of the column hold a prefix; 0 for text.
	Rows uint64
	// Context is up to 60 bytes either side of the find, the find itself masked.
	Context string
}

func (f Finding) String() string {
	rows := ""
	if f.Rows > 0 {
		rows = fmt.Sprintf(" in %d row(s)", f.Rows)
	}
	return fmt.Sprintf("%s: %d bytes of secret #%d%s: %q", f.Where, f.Len, f.Secret, rows, f.Context)
}

// contextBytes is how much text either side of a find a Finding shows.
const contextBytes = 60

// head returns what a secret's leak must contain: its first MinPrefix bytes, or the whole of a
// shorter secret ("" for an empty one, which is ignored).
func head(secret string) string {
	return secret[:min(len(secret), redact.MinPrefix)]
}

// findIn returns, for each secret, the longest prefix of it that s holds (at least its head),
// as Findings named where; secrets found nowhere give none.
func findIn(where string, s []byte, secrets []string) []Finding {
	var out []Finding
	for i, secret := range secrets {
		h := head(secret)
		if h == "" {
			continue
		}
		best, at := 0, 0
		for off := 0; ; {
			j := bytes.Index(s[off:], []byte(h))
			if j < 0 {
				break
			}
			j += off
			n := len(h)
			for n < len(secret) && j+n < len(s) && s[j+n] == secret[n] {
				n++
			}
			if n > best {
				best, at = n, j
			}
			off = j + 1
		}
		if best > 0 {
			out = append(out, Finding{Where: where, Secret: i, Len: best, Context: masked(s, at, best, i, secrets)})
		}
	}
	return out
}

// masked returns the text around s[at:at+n] with the find replaced by a marker, and any other
// secret nearby redacted. The mask covers the longest match of any secret at at: secrets that
// share a prefix would otherwise show the rest of the longer one.
func masked(s []byte, at, n, secret int, secrets []string) string {
	end := at + n
	for _, other := range secrets {
		m := 0
		for m < len(other) && at+m < len(s) && s[at+m] == other[m] {
			m++
		}
		end = max(end, at+m)
	}
	lo, hi := max(0, at-contextBytes), min(len(s), end+contextBytes)
	r := redact.New(secrets...)
	return fmt.Sprintf("%s<secret #%d[:%d]>%s", r.Bytes(s[lo:at]), secret, n, r.Bytes(s[end:hi]))
}

// ScanText scans text line by line; findings are named "name:line".
func ScanText(name, text string, secrets ...string) []Finding {
	f, _ := ScanReader(name, strings.NewReader(text), secrets...)
	return f
}

// ScanReader scans what r yields line by line (lines of any length); findings are named
// "name:line". The error is r's.
func ScanReader(name string, r io.Reader, secrets ...string) ([]Finding, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []Finding
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			out = append(out, findIn(fmt.Sprintf("%s:%d", name, line), b, secrets)...)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("redacttest: read %s: %w", name, err)
		}
	}
}

// ScanDir scans every regular file under root (root itself when it is a file), following no
// symbolic links; a file whose name ends in .gz is scanned decompressed. Findings are named
// "path:line" with the path as found under root. Nothing is skipped silently: a file that
// cannot be read, or a .gz that does not decompress, is an error naming it, since a scan that
// did not read everything proves nothing.
func ScanDir(root string, secrets ...string) ([]Finding, error) {
	var out []Finding
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("redacttest: %w", err)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := scanFile(path, secrets)
		out = append(out, f...)
		return err
	})
	return out, err
}

func scanFile(path string, secrets []string) ([]Finding, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("redacttest: %w", err)
	}
	defer file.Close()
	var r io.Reader = file
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(file)
		if err != nil {
			return nil, fmt.Errorf("redacttest: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return ScanReader(path, r, secrets...)
}

// Failures returns the findings as one message per line, for t.Error; "" when there are none.
func Failures(findings []Finding) string {
	var b strings.Builder
	for _, f := range findings {
		fmt.Fprintln(&b, f.String())
	}
	return b.String()
}
