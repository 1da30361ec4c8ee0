package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The release artifacts are built for these platforms only (the crossbuild list of .promu.yml
// has more): the one of this machine runs, the other is checked from its build information.
var releaseArchs = []string{"amd64", "arm64"}

const releaseName = "wsgi_exporter" // basename of .promu.yml's repository.path

// releaseTree is a copy of the working tree in which `make` builds release artifacts, with
// what the build reads of git (revision, branch) from this repository.
type releaseTree struct {
	dir                       string
	env                       []string
	version, revision, branch string
}

// newReleaseTree copies the repository's tracked and untracked (not ignored) files, except
// the fixtures and benchmarks the build does not read, into a temporary directory.
func newReleaseTree(t *testing.T) *releaseTree {
	t.Helper()
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", ".."}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	root := git("rev-parse", "--show-toplevel")
	rt := &releaseTree{
		dir:      t.TempDir(),
		revision: git("rev-parse", "HEAD"),
		branch:   git("rev-parse", "--abbrev-ref", "HEAD"),
	}
	files := strings.Split(git("ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00")
	for _, f := range files {
		if f == "" || strings.HasPrefix(f, "fixtures/") || strings.HasPrefix(f, "bench/") {
			continue
		}
		if err := copyPath(filepath.Join(root, f), filepath.Join(rt.dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := os.ReadFile(filepath.Join(rt.dir, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	rt.version = strings.TrimSpace(string(v))
	// A sub-make must not inherit the make running `make test`.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "GIT_DIR" {
			rt.env = append(rt.env, kv)
		}
	}
	rt.env = append(rt.env, "GIT_DIR="+git("rev-parse", "--absolute-git-dir"))
	return rt
}

// copyPath copies a regular file (keeping its mode) or a symbolic link; a tracked file
// deleted in the working tree is skipped.
func copyPath(src, dst string) error {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, fi.Mode().Perm())
}

// make runs make with args in the tree and returns its output; it fails the test on error.
func (rt *releaseTree) make(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir, cmd.Env = rt.dir, rt.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// read returns the content of a file of the tree.
func (rt *releaseTree) read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rt.dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRelease builds the release artifacts as users get them, with the project's own make
// targets in a copy of the working tree: the tarballs and their checksums (linux/amd64 and
// linux/arm64), and the image for both architectures with podman (release_image_test.go).
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds release tarballs and images")
	}
	for _, c := range []string{"make", "git", "tar", "sha256sum", "podman", "uwsgi"} {
		RequireCommand(t, c)
	}
	if !slices.Contains(releaseArchs, runtime.GOARCH) {
		t.Fatalf("the release test runs the %s binary: add %s to releaseArchs", runtime.GOARCH, runtime.GOARCH)
	}
	rt := newReleaseTree(t)
	var platforms []string
	for _, a := range releaseArchs {
		platforms = append(platforms, "linux/"+a)
	}
	out := rt.make(t, "tarballs", "PLATFORMS="+strings.Join(platforms, " "))
	t.Logf("make tarballs:\n%s", out)
	t.Run("tarballs", func(t *testing.T) { checkTarballs(t, rt) })
	t.Run("image", func(t *testing.T) { checkImage(t, rt) })
}

// checkTarballs checks .tarballs/ file by file against what promu's tarball and checksum
// steps write, and the binaries in them.
func checkTarballs(t *testing.T, rt *releaseTree) {
	dir := filepath.Join(rt.dir, ".tarballs")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	var sums strings.Builder
	for _, a := range releaseArchs {
		want = append(want, fmt.Sprintf("%s-%s.linux-%s.tar.gz", releaseName, rt.version, a))
	}
	sort.Strings(want)
	for _, name := range want {
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(rt.read(t, ".tarballs/"+name)), name)
	}
	want = append(want, "sha256sums.txt")
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf(".tarballs holds %q, want %q", got, want)
	}
	if s := string(rt.read(t, ".tarballs/sha256sums.txt")); s != sums.String() {
		t.Errorf("sha256sums.txt:\n%s\nwant:\n%s", s, sums.String())
	}
	cmd := exec.Command("sha256sum", "--check", "--strict", "sha256sums.txt")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}

	for _, a := range releaseArchs {
		t.Run(a, func(t *testing.T) {
			top := fmt.Sprintf("%s-%s.linux-%s", releaseName, rt.version, a)
			files := readTarball(t, filepath.Join(dir, top+".tar.gz"))
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			wantNames := []string{top + "/", top + "/LICENSE", top + "/README.md", top + "/wsgi_exporter"}
			if !slices.Equal(names, wantNames) {
				t.Fatalf("tarball holds %q, want %q", names, wantNames)
			}
			for _, f := range []string{"LICENSE", "README.md"} {
				if !bytes.Equal(files[top+"/"+f].data, rt.read(t, f)) {
					t.Errorf("%s differs from the repository's", f)
				}
			}
			bin := files[top+"/wsgi_exporter"]
			if bin.mode&0o111 != 0o111 {
				t.Errorf("binary mode %o, want executable by all", bin.mode)
			}
			if !bytes.Equal(bin.data, rt.read(t, ".build/linux-"+a+"/wsgi_exporter")) {
				t.Errorf("binary differs from .build/linux-%s/wsgi_exporter", a)
			}
			path := filepath.Join(t.TempDir(), "wsgi_exporter")
			if err := os.WriteFile(path, bin.data, 0o755); err != nil {
				t.Fatal(err)
			}
			checkBinary(t, rt, path, a)
			if a == runtime.GOARCH {
				checkVersionOutput(t, rt, path, a)
			}
		})
	}
}

type tarFile struct {
	mode int64
	data []byte
}

// readTarball returns the entries of a .tar.gz by name (directories with no data).
func readTarball(t *testing.T, path string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]tarFile{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			t.Fatalf("%s: entry %s of type %c, want files and directories only", path, h.Name, h.Typeflag)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<26))
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = tarFile{mode: h.Mode, data: b}
	}
}

// checkBinary checks what `go version -m` shows of a release binary (debug/buildinfo reads
// the same record) and its ELF headers: built for linux/arch, static (no interpreter, no
// shared libraries), CGO_ENABLED=0, -tags netgo, and version ldflags naming this build.
func checkBinary(t *testing.T, rt *releaseTree, path, arch string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/wsgi-exporter/wsgi_exporter/cmd/wsgi_exporter"; bi.Path != want {
		t.Errorf("build path %q, want %q", bi.Path, want)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"GOOS": "linux", "GOARCH": arch, "CGO_ENABLED": "0", "-tags": "netgo"} {
		if settings[k] != v {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], v)
		}
	}
	const pkg = "github.com/prometheus/common/version"
	for _, x := range []string{pkg + ".Version=" + rt.version, pkg + ".Revision=" + rt.revision, pkg + ".Branch=" + rt.branch} {
		if !slices.Contains(strings.Fields(settings["-ldflags"]), x) {
			t.Errorf("-ldflags %q lacks -X %s", settings["-ldflags"], x)
		}
	}
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if ef.Machine != machine {
		t.Errorf("ELF machine %v, want %v", ef.Machine, machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has an ELF interpreter: not static")
		}
	}
	if libs, _ := ef.ImportedLibraries(); len(libs) != 0 {
		t.Errorf("binary needs shared libraries %q", libs)
	}
}

// checkVersionOutput runs `<binary> --version` and checks that it names this build.
func checkVersionOutput(t *testing.T, rt *releaseTree, path, arch string) {
	t.Helper()
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", path, err, out)
	}
	lines := strings.Split(string(out), "\n")
	if want := fmt.Sprintf("wsgi_exporter, version %s (branch: %s, revision: %s)", rt.version, rt.branch, rt.revision); lines[0] != want {
		t.Errorf("--version says %q, want %q", lines[0], want)
	}
	for _, want := range []string{"platform:         linux/" + arch, "tags:             netgo"} {
		if !strings.Contains(string(out), "  "+want+"\n") {
			t.Errorf("--version lacks %q:\n%s", want, out)
		}
	}
}
