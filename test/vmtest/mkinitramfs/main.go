// Command mkinitramfs packs a directory into a gzip-compressed newc cpio
// archive, the format the Linux kernel unpacks as its initramfs.
//
//	mkinitramfs -o initrd.gz [-dev dev/console:c:5:1:0600 ...] DIR
//
// The archive is reproducible: entries in lexical order, owner root,
// mtime 0, inode numbers assigned in order, no gzip name or time. Regular
// files, directories and symbolic links are packed; -dev adds device nodes
// (which need no privileges to describe).
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const trailer = "TRAILER!!!"

// entry is one archive member.
type entry struct {
	name         string // relative, no leading "./"
	mode         uint32 // file type and permission bits (S_IF* | perm)
	data         []byte // file contents or symlink target
	rmaj, rmin   uint32 // device numbers of a device node
	nlink        uint32
	sourcePath   string // regular files are read when written
	sourceLength int64
}

// writer writes newc entries.
type writer struct {
	w   io.Writer
	ino uint32
	off int64
}

func (cw *writer) write(p []byte) error {
	n, err := cw.w.Write(p)
	cw.off += int64(n)
	return err
}

func (cw *writer) pad() error {
	if r := cw.off % 4; r != 0 {
		return cw.write(make([]byte, 4-r))
	}
	return nil
}

// header writes the 110-byte newc header and the padded name.
func (cw *writer) header(e *entry, size int64) error {
	cw.ino++
	ino := cw.ino
	if e.name == trailer {
		ino = 0
	}
	fields := []uint32{ino, e.mode, 0, 0, e.nlink, 0, uint32(size), 0, 0, e.rmaj, e.rmin, uint32(len(e.name) + 1), 0}
	var b strings.Builder
	b.WriteString("070701")
	for _, f := range fields {
		fmt.Fprintf(&b, "%08X", f)
	}
	b.WriteString(e.name)
	b.WriteByte(0)
	if err := cw.write([]byte(b.String())); err != nil {
		return err
	}
	return cw.pad()
}

func (cw *writer) entry(e *entry) error {
	if e.sourcePath != "" {
		if e.sourceLength > 0xffffffff {
			return fmt.Errorf("%s: too large for newc (%d bytes)", e.name, e.sourceLength)
		}
		if err := cw.header(e, e.sourceLength); err != nil {
			return err
		}
		f, err := os.Open(e.sourcePath)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(writerFunc(cw.write), f)
		if err != nil {
			return fmt.Errorf("%s: %w", e.sourcePath, err)
		}
		if n != e.sourceLength {
			return fmt.Errorf("%s changed size while packing", e.sourcePath)
		}
		return cw.pad()
	}
	if err := cw.header(e, int64(len(e.data))); err != nil {
		return err
	}
	if err := cw.write(e.data); err != nil {
		return err
	}
	return cw.pad()
}

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// collect lists dir's contents as entries, in lexical order.
func collect(dir string) ([]*entry, error) {
	var out []*entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		perm := uint32(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSetuid != 0 {
			perm |= syscall.S_ISUID
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			perm |= syscall.S_ISVTX
		}
		e := &entry{name: filepath.ToSlash(rel), nlink: 1}
		switch {
		case fi.IsDir():
			e.mode, e.nlink = syscall.S_IFDIR|perm, 2
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.mode, e.data = syscall.S_IFLNK|0o777, []byte(target)
		case fi.Mode().IsRegular():
			e.mode, e.sourcePath, e.sourceLength = syscall.S_IFREG|perm, p, fi.Size()
		default:
			return fmt.Errorf("%s: unsupported file type %s (use -dev for device nodes)", p, fi.Mode().Type())
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// parseDev parses PATH:c|b:MAJOR:MINOR:MODE.
func parseDev(s string) (*entry, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 5 {
		return nil, fmt.Errorf("-dev %q: want PATH:c|b:MAJOR:MINOR:MODE", s)
	}
	var typ uint32
	switch parts[1] {
	case "c":
		typ = syscall.S_IFCHR
	case "b":
		typ = syscall.S_IFBLK
	default:
		return nil, fmt.Errorf("-dev %q: type must be c or b", s)
	}
	var nums [3]uint64
	for i, base := range []int{10, 10, 8} {
		n, err := strconv.ParseUint(parts[2+i], base, 32)
		if err != nil {
			return nil, fmt.Errorf("-dev %q: %w", s, err)
		}
		nums[i] = n
	}
	name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(parts[0])), "/")
	return &entry{name: name, mode: typ | uint32(nums[2]&0o7777), rmaj: uint32(nums[0]), rmin: uint32(nums[1]), nlink: 1}, nil
}

type devFlags []*entry

func (d *devFlags) String() string { return "" }
func (d *devFlags) Set(s string) error {
	e, err := parseDev(s)
	if err != nil {
		return err
	}
	*d = append(*d, e)
	return nil
}

// pack writes the archive of dir plus devs to w (uncompressed).
func pack(w io.Writer, dir string, devs []*entry) error {
	entries, err := collect(dir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.name] = true
	}
	for _, d := range devs {
		if seen[d.name] {
			return fmt.Errorf("-dev %s: already in %s", d.name, dir)
		}
		entries = append(entries, d)
	}
	cw := &writer{w: w}
	for _, e := range entries {
		if err := cw.entry(e); err != nil {
			return err
		}
	}
	return cw.entry(&entry{name: trailer, nlink: 1})
}

func main() {
	out := flag.String("o", "", "output file (gzip-compressed newc cpio)")
	var devs devFlags
	flag.Var(&devs, "dev", "add a device node PATH:c|b:MAJOR:MINOR:MODE (repeatable)")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkinitramfs -o FILE [-dev PATH:c:MAJ:MIN:MODE ...] DIR")
		os.Exit(2)
	}
	if err := run(*out, flag.Arg(0), devs); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}

func run(out, dir string, devs []*entry) (err error) {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := pack(zw, dir, devs); err != nil {
		return err
	}
	if err := errors.Join(zw.Close(), bw.Flush(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
