package dirent

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// Read gives every name of a directory but . and .., with its inode and type, and lists
// again from the start on a second call.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	want := map[string]uint8{"a.db": syscall.DT_REG, "sub": syscall.DT_DIR, "link": syscall.DT_LNK}
	if err := os.WriteFile(filepath.Join(dir, "a.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.db", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 64) // smaller than the listing: several getdents calls
	for range 2 {
		var names []string
		err := Read(fd, buf, func(name []byte, ino uint64, typ uint8) error {
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(dir, string(name)), &st); err != nil || st.Ino != ino {
				t.Errorf("%s: inode %d, lstat %d (%v)", name, ino, st.Ino, err)
			}
			if typ != want[string(name)] {
				t.Errorf("%s: type %d, want %d", name, typ, want[string(name)])
			}
			names = append(names, string(name))
			return nil
		})
		slices.Sort(names)
		if err != nil || !slices.Equal(names, []string{"a.db", "link", "sub"}) {
			t.Fatalf("names %v (%v)", names, err)
		}
	}
}
