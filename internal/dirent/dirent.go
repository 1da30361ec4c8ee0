// Package dirent lists a directory with getdents into a caller's buffer: names, inode numbers
// and types, with no stat and no allocation per entry.
package dirent

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Read lists the open directory fd from its start into buf and calls fn for each entry but
// "." and "..". name is valid only during the call: fn must copy it to keep it. An error of
// fn ends the listing and is returned.
func Read(fd int, buf []byte, fn func(name []byte, ino uint64, typ uint8) error) error {
	if _, err := syscall.Seek(fd, 0, 0); err != nil {
		return err
	}
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		// struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name, NUL, padding to 8,
		// in the machine's byte order.
		for b := buf[:n]; len(b) >= 19; {
			ino := binary.NativeEndian.Uint64(b[0:])
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return fmt.Errorf("getdents: bad record length %d", reclen)
			}
			typ := b[18]
			name := b[19:reclen]
			if i := indexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if !(len(name) == 1 && name[0] == '.') && !(len(name) == 2 && name[0] == '.' && name[1] == '.') {
				if err := fn(name, ino, typ); err != nil {
					return err
				}
			}
			b = b[reclen:]
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
