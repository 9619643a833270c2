package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// MirrorEnv names the directory or URL that `e2e plugin install
// NAME@VERSION` installs from when no --mirror is given.
const MirrorEnv = "E2E_PLUGIN_MIRROR"

// ChecksumsFile is the name of the list of sha256 sums published beside
// release archives, in the format of sha256sum(1): "HEX  FILE" per line.
const ChecksumsFile = "SHA256SUMS"

// Largest release archive and checksum list Install reads, in bytes.
const (
	maxArchiveBytes   = 1 << 30
	maxChecksumsBytes = 1 << 20
)

// InstallOptions say where Install finds a plugin and how it checks it.
type InstallOptions struct {
	// Force replaces an installed plugin of the same name.
	Force bool
	// Checksums is the SHA256SUMS file or URL a release archive is
	// checked against; empty means the SHA256SUMS beside the archive.
	Checksums string
	// Mirror is the directory or URL NAME@VERSION is looked up in, laid
	// out as NAME/VERSION/ArchiveName(...) beside NAME/VERSION/SHA256SUMS;
	// empty means $E2E_PLUGIN_MIRROR.
	Mirror string
}

// ArchiveName is the file name of a plugin's release archive for one
// platform: e2e-backend-NAME_VERSION_OS_ARCH.tar.gz (OS and ARCH as Go's
// GOOS and GOARCH). The archive holds the executable e2e-backend-NAME.
func ArchiveName(name, version, goos, goarch string) string {
	return Prefix + name + "_" + version + "_" + goos + "_" + goarch + ".tar.gz"
}

// archiveSuffix returns the archive suffix name ends with, or "".
func archiveSuffix(name string) string {
	for _, s := range []string{".tar.gz", ".tgz"} {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return s
		}
	}
	return ""
}

// archiveLabel is what a release archive's file name says it holds.
type archiveLabel struct{ name, version, goos, goarch string }

// parseArchiveName reads an ArchiveName; ok is false for any other name
// (such archives are installed too, without the checks the name allows).
func parseArchiveName(file string) (l archiveLabel, ok bool) {
	stem, found := strings.CutPrefix(strings.TrimSuffix(file, archiveSuffix(file)), Prefix)
	if !found || archiveSuffix(file) == "" {
		return l, false
	}
	// A backend name may hold "_", a version may not: read from the right.
	parts := strings.Split(stem, "_")
	n := len(parts)
	if n < 4 {
		return l, false
	}
	l = archiveLabel{name: strings.Join(parts[:n-3], "_"), version: parts[n-3], goos: parts[n-2], goarch: parts[n-1]}
	if !backendName.MatchString(l.name) || !versionPattern.MatchString(l.version) || l.goos == "" || l.goarch == "" {
		return archiveLabel{}, false
	}
	return l, true
}

// backendName is the SDK's rule for backend names; versionPattern is a
// version as it can appear in a file name (semver and the like).
var (
	backendName    = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+-]*$`)
	nameAtVersion  = regexp.MustCompile(`^([a-z][a-z0-9_-]*)@([0-9A-Za-z][0-9A-Za-z.+-]*)$`)
)

// ErrBadArchive is wrapped by the errors that refuse a release archive:
// its checksum does not match, it is not listed, or its content is not one
// plugin executable for this machine.
var ErrBadArchive = errors.New("bad release archive")

// ErrBadSource is wrapped by the errors that refuse what was given to
// install: a URL that is not https, NAME@VERSION without a mirror.
var ErrBadSource = errors.New("bad plugin source")

// errNoChecksums is an ErrBadArchive: the checksum list is not there.
var errNoChecksums = fmt.Errorf("%w: no checksum list", ErrBadArchive)

// refused is one line saying why an install is refused; kind is
// ErrBadArchive or ErrBadSource.
type refused struct {
	msg  string
	kind error
}

func (e *refused) Error() string { return e.msg }

// Unwrap returns the kind of refusal.
func (e *refused) Unwrap() error { return e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refused{msg: fmt.Sprintf(format, args...), kind: kind}
}

// source is what Install was asked to install, resolved.
type source struct {
	display string // for messages and the manifest: the path or URL, without credentials or query
	exec    string // a plugin executable's absolute path, or ""
	archive string // a release archive's absolute path or URL, or ""
	sums    string // the SHA256SUMS path or URL for the archive
	file    string // the archive's file name, as SHA256SUMS lists it
	label   archiveLabel
	labeled bool   // the archive's name is an ArchiveName
	at      bool   // given as NAME@VERSION
	mirror  string // where NAME@VERSION was looked up, for messages
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// checkURL parses a URL Install may fetch: https, or http to this machine
// only (a checksum fetched over plain http from elsewhere proves nothing).
func checkURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, refuse(ErrBadSource, "%s %q is not a URL", what, raw)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, refuse(ErrBadSource, "refusing %s %s: plain http is accepted only from this machine (127.0.0.1, ::1, localhost); use https", what, redact(u))
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact is u without credentials, query or fragment, which can hold
// tokens (pre-signed URLs) that belong neither in messages nor on disk.
func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment, c.ForceQuery = nil, "", "", false
	return c.String()
}

func displayLoc(loc string) string {
	if isURL(loc) {
		if u, err := url.Parse(loc); err == nil {
			return redact(u)
		}
	}
	return loc
}

// resolve works out what src names: a URL of a release archive,
// NAME@VERSION in the mirror, a local release archive (.tar.gz, .tgz), or
// a plugin executable.
func resolve(src string, opts InstallOptions) (source, error) {
	var s source
	if opts.Checksums != "" && isURL(opts.Checksums) {
		if _, err := checkURL(opts.Checksums, "--checksums"); err != nil {
			return s, err
		}
	}
	switch {
	case isURL(src):
		u, err := checkURL(src, "the plugin URL")
		if err != nil {
			return s, err
		}
		file := path.Base(u.Path)
		if archiveSuffix(file) == "" {
			return s, refuse(ErrBadSource, "the plugin URL %s does not name a release archive (FILE.tar.gz or FILE.tgz)", redact(u))
		}
		sums := *u
		sums.Path, sums.RawPath, sums.RawQuery, sums.Fragment = path.Join(path.Dir(u.Path), ChecksumsFile), "", "", ""
		s = source{display: redact(u), archive: src, sums: sums.String(), file: file}
		s.label, s.labeled = parseArchiveName(file)
	case nameAtVersion.MatchString(src):
		m := nameAtVersion.FindStringSubmatch(src)
		mirror := opts.Mirror
		if mirror == "" {
			mirror = os.Getenv(MirrorEnv)
		}
		if mirror == "" {
			return s, refuse(ErrBadSource, "installing %s needs a mirror: give --mirror DIR|URL or set $%s (it holds NAME/VERSION/%s and NAME/VERSION/%s)",
				src, MirrorEnv, ArchiveName("NAME", "VERSION", "OS", "ARCH"), ChecksumsFile)
		}
		s.label = archiveLabel{name: m[1], version: m[2], goos: runtime.GOOS, goarch: runtime.GOARCH}
		s.labeled, s.at, s.mirror = true, true, displayLoc(mirror)
		file := ArchiveName(m[1], m[2], runtime.GOOS, runtime.GOARCH)
		s.file = file
		if isURL(mirror) {
			u, err := checkURL(mirror, "the plugin mirror")
			if err != nil {
				return s, err
			}
			s.archive = u.JoinPath(m[1], m[2], file).String()
			s.sums = u.JoinPath(m[1], m[2], ChecksumsFile).String()
			s.display = src + " from " + displayLoc(s.archive)
		} else {
			abs, err := filepath.Abs(mirror)
			if err != nil {
				return s, err
			}
			// m[1] and m[2] match nameAtVersion: no separator, no "..".
			s.archive = filepath.Join(abs, m[1], m[2], file)
			s.sums = filepath.Join(abs, m[1], m[2], ChecksumsFile)
			s.display = src + " from " + s.archive
		}
	case archiveSuffix(filepath.Base(src)) != "":
		abs, err := filepath.Abs(src)
		if err != nil {
			return s, err
		}
		s = source{display: abs, archive: abs, sums: filepath.Join(filepath.Dir(abs), ChecksumsFile), file: filepath.Base(abs)}
		s.label, s.labeled = parseArchiveName(filepath.Base(abs))
	default:
		if opts.Checksums != "" {
			return s, refuse(ErrBadSource, "--checksums checks release archives (FILE.tar.gz, a URL or NAME@VERSION), and %s is none", src)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return s, err
		}
		return source{display: abs, exec: abs}, nil
	}
	if opts.Checksums != "" {
		s.sums = opts.Checksums
		if !isURL(s.sums) {
			abs, err := filepath.Abs(s.sums)
			if err != nil {
				return s, err
			}
			s.sums = abs
		}
	}
	if s.labeled && (s.label.goos != runtime.GOOS || s.label.goarch != runtime.GOARCH) {
		return s, refuse(ErrBadArchive, "refusing to install %s: it is built for %s/%s and this machine is %s/%s: take the archive that ends in _%s_%s.tar.gz",
			s.display, s.label.goos, s.label.goarch, runtime.GOOS, runtime.GOARCH, runtime.GOOS, runtime.GOARCH)
	}
	return s, nil
}

// notFound is a file or URL that is not there; it is an fs.ErrNotExist.
type notFound struct{ what, why string }

func (e *notFound) Error() string { return e.what + ": " + e.why }

// Unwrap makes it an fs.ErrNotExist.
func (e *notFound) Unwrap() error { return fs.ErrNotExist }

// fetch copies the file or URL at loc to w, at most limit bytes, and
// returns the hex sha256 of what it copied. What is not there is a
// *notFound; more than limit bytes is an ErrBadArchive.
func fetch(ctx context.Context, loc string, w io.Writer, limit int64) (string, error) {
	var body io.Reader
	if isURL(loc) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
		if err != nil {
			return "", err
		}
		resp, err := httpClient().Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", fmt.Errorf("downloading %s: %w", displayLoc(loc), err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			return "", &notFound{displayLoc(loc), "not found (HTTP " + resp.Status + ")"}
		case resp.StatusCode != http.StatusOK:
			return "", fmt.Errorf("downloading %s: HTTP %s", displayLoc(loc), resp.Status)
		}
		body = resp.Body
	} else {
		f, err := os.Open(loc)
		if errors.Is(err, fs.ErrNotExist) {
			return "", &notFound{loc, "no such file"}
		}
		if err != nil {
			return "", err
		}
		defer f.Close()
		body = f
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(readerCtx{ctx, body}, limit+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", displayLoc(loc), err)
	}
	if n > limit {
		return "", refuse(ErrBadArchive, "refusing %s: it is larger than %d MiB", displayLoc(loc), limit>>20)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// httpClient is like http.DefaultClient (proxies from the environment),
// but follows a redirect only to where checkURL lets a download go.
func httpClient() *http.Client {
	return &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.URL.Scheme != "https" && !loopback(req.URL.Hostname()) {
			return fmt.Errorf("refusing a redirect to %s: plain http is accepted only from this machine", redact(req.URL))
		}
		return nil
	}}
}

// readerCtx stops reading once ctx is done (a Ctrl-C during a download of
// a local file, which no request carries).
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// checksumFor reads the SHA256SUMS at loc and returns the sum it lists for
// file. A list that is missing, malformed or silent about file, or that
// lists file twice with different sums, is an error naming it (the same
// line twice is fine).
func checksumFor(ctx context.Context, loc, file string) (string, error) {
	found, foundLine := "", 0
	var buf bytes.Buffer
	if _, err := fetch(ctx, loc, &buf, maxChecksumsBytes); err != nil {
		var nf *notFound
		if errors.As(err, &nf) {
			return "", &refused{msg: fmt.Sprintf("no checksum list for %s: %s is not there; a release publishes a %s beside its archives, or give --checksums FILE|URL",
				file, displayLoc(loc), ChecksumsFile), kind: errNoChecksums}
		}
		return "", err
	}
	for i, line := range strings.Split(buf.String(), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		// sha256sum's format: 64 hex digits, a space, then " " (text
		// mode) or "*" (binary mode), then the file name.
		if len(line) < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
			return "", refuse(ErrBadArchive, "%s is not a checksum list: line %d is not \"SHA256  FILE\" (as sha256sum writes)", displayLoc(loc), i+1)
		}
		sum := strings.ToLower(line[:64])
		if _, err := hex.DecodeString(sum); err != nil {
			return "", refuse(ErrBadArchive, "%s is not a checksum list: line %d does not start with a sha256", displayLoc(loc), i+1)
		}
		if strings.TrimPrefix(line[66:], "./") != file {
			continue
		}
		switch {
		case found == "":
			found, foundLine = sum, i+1
		case sum != found:
			// Which one is the release's cannot be told: refuse both.
			return "", refuse(ErrBadArchive, "refusing to install %s: %s lists it twice with different sums (line %d: %s, line %d: %s): the list is damaged or tampered with; get it again from the release",
				file, displayLoc(loc), foundLine, found, i+1, sum)
		}
	}
	if found != "" {
		return found, nil
	}
	return "", refuse(ErrBadArchive, "refusing to install %s: %s does not list it", file, displayLoc(loc))
}
