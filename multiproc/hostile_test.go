package multiproc

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// hostileDir makes a directory with one good file and every kind of name that must not be
// read: links to files in and out of the directory (one root-only, one to /etc/shadow), a
// dangling link, a link to a directory, a FIFO, a unix socket, a character device and a
// directory, all named like .db files. It returns the directory, the bytes of the foreign
// files (none of which may show anywhere), and the problems expected, by name.
func hostileDir(t *testing.T) (dir string, foreign [][]byte, want map[string]string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the hostile directory test makes a device node and a root-only file: run it as root, as make test does")
	}
	dir = t.TempDir()
	outside := t.TempDir()
	good := encodeDB(GenValue, 4096, testEntry{key: counterKey("req", `"code": "200"`), v: 1})
	writeFile(t, dir, "counter_1.db", good)
	secret := encodeDB(GenValue, 4096, testEntry{key: counterKey("req", `"token": "SECRET-TOKEN-0123456789"`), v: 1000})
	if err := os.WriteFile(filepath.Join(outside, "tenant.db"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	shadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	foreign = [][]byte{secret, shadow}
	links := map[string]string{
		"counter_2.db":   filepath.Join(dir, "counter_1.db"), // inside: still not followed
		"counter_3.db":   filepath.Join(outside, "tenant.db"),
		"counter_4.db":   "/etc/shadow",
		"counter_5.db":   outside,
		"gauge_all_6.db": filepath.Join(outside, "missing.db"),
		"notes.db.txt":   "/etc/shadow", // not a .db name: ignored, not opened either
	}
	want = map[string]string{"notes.db.txt": FileReasonIgnored}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if want[name] == "" {
			want[name] = FileReasonSymlink
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "counter_7.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "counter_8.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := syscall.Mknod(filepath.Join(dir, "counter_9.db"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "counter_10.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"counter_7.db", "counter_8.db", "counter_9.db", "counter_10.db"} {
		want[n] = FileReasonNotRegular
	}
	return dir, foreign, want
}

// TestMultiprocHostileDir: only the directory's one regular file is read; every link, FIFO,
// socket, device and directory is skipped with its reason, without blocking, and nothing of a
// foreign file (content or size) shows in the snapshot.
func TestMultiprocHostileDir(t *testing.T) {
	dir, foreign, want := hostileDir(t)
	for _, noMmap := range []bool{false, true} {
		r := NewReader(Options{NoMmap: noMmap})
		for pass := 0; pass < 2; pass++ {
			snap, err := r.Read(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, p := range snap.Problems {
				got[p.Name] = p.Reason
				for _, f := range foreign {
					if leaks(p.Err.Error(), f) {
						t.Errorf("%s: error %q holds bytes of a foreign file", p.Name, p.Err)
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("problems %v, want %v", got, want)
			}
			for n, r := range want {
				if got[n] != r {
					t.Errorf("%s: reason %q, want %q", n, got[n], r)
				}
			}
			if len(snap.Files) != 1 || snap.Files[0].Name != "counter_1.db" || snap.Files[0].Size != 4096 {
				t.Errorf("files read %+v, want counter_1.db alone", snap.Files)
			}
			ts := snap.Types[TypeCounter]
			if ts.Files != 1 || ts.Size != 4096 || len(snap.Types) != 1 {
				t.Errorf("types %+v, want one counter file of 4096 bytes", snap.Types)
			}
			f := famByName(snap, "req")
			if len(snap.Families) != 1 || f == nil || len(f.Series) != 1 || f.Series[0].Value != 1 || f.Series[0].Labels[0].Value != "200" {
				t.Errorf("families %+v, want req{code=200} 1", snap.Families)
			}
		}
		r.Close()
	}
}

// leaks reports whether s holds 8 or more consecutive bytes of f's first 512.
func leaks(s string, f []byte) bool {
	f = f[:min(len(f), 512)]
	for i := 0; i+8 <= len(f); i++ {
		if strings.Contains(s, string(f[i:i+8])) {
			return true
		}
	}
	return false
}

// TestMultiprocOpenChecks: readFile itself, on names a listing would have let through (a
// name that became a link or a special file after the listing), opens nothing it must not:
// a link is not followed (O_NOFOLLOW), a FIFO does not block (O_NONBLOCK), and the opened
// file must be a regular file.
func TestMultiprocOpenChecks(t *testing.T) {
	dir, _, want := hostileDir(t)
	dfd, dst := openDir(t, dir)
	r := NewReader(Options{})
	defer r.Close()
	for name, reason := range want {
		if reason == FileReasonIgnored {
			continue
		}
		var bud budget
		res := r.readFile(context.Background(), dfd, &dst, FileInfo{Name: name, mayMap: true}, nil, &bud)
		if res.problem == nil || res.problem.Reason != reason || res.info.Size != 0 || res.cache != nil {
			t.Errorf("%s: problem %+v, size %d, cache %v; want reason %s and nothing kept", name, res.problem, res.info.Size, res.cache, reason)
		}
	}
}

// openDir opens dir as a read does (closed at the end of the test) and stats it, for tests
// that call readFile alone.
func openDir(t *testing.T, dir string) (int, syscall.Stat_t) {
	t.Helper()
	dfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(dfd) })
	var dst syscall.Stat_t
	if err := syscall.Fstat(dfd, &dst); err != nil {
		t.Fatal(err)
	}
	return dfd, dst
}
