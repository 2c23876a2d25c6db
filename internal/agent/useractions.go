package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/stacks"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/oci/ocispec"
)

// Bounds of what the agent does in user space for a policy's actions.
const (
	maxRateKeys    = 1 << 14          // rateLimit windows remembered
	maxRequests    = 8                // GetUrl and DnsLookup requests in flight
	requestTimeout = 5 * time.Second  // per GetUrl or DnsLookup
	maxHashSize    = 64 << 20         // imaHash: larger files are not hashed
	maxHashCache   = 1024             // imaHash results remembered by file
	hashTimeout    = 10 * time.Second // imaHash per file
)

// userActs is the state of the actions the agent carries out on events:
// Post's rateLimit windows, the GetUrl and DnsLookup requests in flight,
// the executed files hashed for imaHash.
type userActs struct {
	mu     sync.Mutex
	last   map[string]time.Time // rateLimit key -> last event written
	hashes map[fileID]string
	sem    chan struct{}
	client *http.Client
	ksyms  *stacks.Kernel // kernel symbols for stack traces, made on first use
}

// fileID names a file's content: device, inode, size and change time.
type fileID struct {
	dev, ino uint64
	size     int64
	ctime    int64
}

// afterConvert applies the actions of the event's selector that the
// agent carries out: it returns false when rateLimit drops the event,
// adds the executed file's hash (imaHash), and starts the GetUrl and
// DnsLookup requests.
func (a *Agent) afterConvert(raw *record.RawEvent, ev *events.Event) bool {
	sel := a.selectorOf(raw)
	if sel == nil {
		return true
	}
	if sel.RateLimit > 0 && a.acts.limited(raw, sel, ev) {
		return false
	}
	if sel.ImaHash {
		if k := ev.Hook(); k != nil {
			a.imaHash(raw, k, ev.Ocigate)
		}
	}
	if sel.KernelStack || sel.UserStack {
		if k := ev.Hook(); k != nil {
			a.stackTraces(raw, sel, k, ev.Ocigate)
		}
	}
	if sel.URL != "" {
		a.request(func(ctx context.Context) error { return getURL(ctx, a.acts.httpClient(), sel.URL) }, "GetUrl", sel.URL)
	}
	if sel.FQDN != "" {
		a.request(func(ctx context.Context) error { _, err := net.DefaultResolver.LookupHost(ctx, sel.FQDN); return err }, "DnsLookup", sel.FQDN)
	}
	return true
}

// selectorOf is the selector a decision record names, nil if unknown.
func (a *Agent) selectorOf(raw *record.RawEvent) *profiles.Selector {
	p, ok := a.profileByID(raw.Profile)
	if !ok {
		return nil
	}
	sels := p.Points[raw.Point]
	if raw.Selector < 0 || raw.Selector >= len(sels) {
		return nil
	}
	return &sels[raw.Selector]
}

// limited reports whether the event falls in its selector's rateLimit
// window: the same selector, arguments and thread (or process, or any:
// the scope) posted within it. The first event of a window is written.
func (u *userActs) limited(raw *record.RawEvent, sel *profiles.Selector, ev *events.Event) bool {
	scope := strconv.FormatUint(uint64(raw.Pid), 10)
	switch sel.RateLimitScope {
	case "process":
		scope = strconv.FormatUint(uint64(raw.Tgid), 10)
	case "global":
		scope = "*"
	}
	var args []byte
	if k := ev.Hook(); k != nil {
		for i := range k.Args {
			args = k.Args[i].AppendJSONTo(args)
		}
	}
	key := fmt.Sprintf("%d/%d/%d/%s/%s", raw.Profile, raw.Point, raw.Selector, scope, args)
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil || len(u.last) >= maxRateKeys {
		u.prune(now, sel.RateLimit)
	}
	if t, ok := u.last[key]; ok && now.Sub(t) < sel.RateLimit {
		return true
	}
	u.last[key] = now
	return false
}

// prune forgets windows older than window (all of them when the map is
// still full).
func (u *userActs) prune(now time.Time, window time.Duration) {
	if u.last == nil {
		u.last = map[string]time.Time{}
		return
	}
	for k, t := range u.last {
		if now.Sub(t) >= window {
			delete(u.last, k)
		}
	}
	if len(u.last) >= maxRateKeys {
		u.last = map[string]time.Time{}
	}
}

// httpClient is the client of GetUrl requests.
func (u *userActs) httpClient() *http.Client {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.client == nil {
		u.client = &http.Client{Timeout: requestTimeout}
	}
	return u.client
}

// request runs a GetUrl or DnsLookup in the background, at most
// maxRequests at a time; one over that is dropped and logged.
func (a *Agent) request(do func(ctx context.Context) error, action, target string) {
	a.acts.mu.Lock()
	if a.acts.sem == nil {
		a.acts.sem = make(chan struct{}, maxRequests)
	}
	sem := a.acts.sem
	a.acts.mu.Unlock()
	select {
	case sem <- struct{}{}:
	default:
		a.log.Warn("policy action dropped: too many requests in flight", zap.String("action", action), zap.String("target", target))
		return
	}
	go func() {
		defer func() { <-sem }()
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if err := do(ctx); err != nil {
			a.log.Warn("policy action failed", zap.String("action", action), zap.String("target", target), zap.Error(err))
		}
	}()
}

// getURL requests url (GET) and reads the answer away.
func getURL(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GetUrl %s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GetUrl %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}

// imaHash adds the executed file's sha256 to the event as Tetragon's
// ima_hash ("sha256:HEX"), read through the process's root; a file it
// cannot read or hash is said in the event's note.
func (a *Agent) imaHash(raw *record.RawEvent, k *events.Kprobe, og *events.Ocigate) {
	path := execPath(raw)
	// The process may be gone (killed at its exec): its parent's root, or
	// the container's first process's, is the same file system.
	var roots []string
	for _, pid := range []uint32{raw.Tgid, raw.Ppid} {
		if pid != 0 {
			roots = append(roots, fmt.Sprintf("/proc/%d/root", pid))
		}
	}
	if w, ok := a.eventWorkload(raw.WorkloadCgroupID); ok {
		if w.Pid > 0 {
			roots = append(roots, fmt.Sprintf("/proc/%d/root", w.Pid))
		}
		if root := bundleRoot(w.Bundle); root != "" {
			roots = append(roots, root) // every process of it is gone
		}
	}
	var sum string
	err := errors.New("no process to read it through")
	for _, root := range roots {
		if sum, err = a.acts.hashFile(root, path); err == nil {
			break
		}
	}
	if err != nil {
		if og != nil {
			og.Note = fmt.Sprintf("imaHash: %s not hashed: %v", path, err)
		}
		return
	}
	k.ImaHash = "sha256:" + sum
}

// stackTraces adds the stack traces the kernel took for the selector
// (Post kernelStackTrace, userStackTrace): kernel frames with their
// symbols, user frames with the file mapped there; what could not be
// resolved is said in the note.
func (a *Agent) stackTraces(raw *record.RawEvent, sel *profiles.Selector, k *events.Kprobe, og *events.Ocigate) {
	root := a.procfs.root
	if root == "" {
		root = "/proc"
	}
	var errs []string
	// the user's first: the process may exit while kallsyms is read
	if sel.UserStack && len(raw.UserStack) > 0 {
		var err error
		if k.UserStackTrace, err = stacks.User(root, raw.Tgid, raw.UserStack); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if sel.KernelStack && len(raw.KernelStack) > 0 {
		a.acts.mu.Lock()
		if a.acts.ksyms == nil {
			a.acts.ksyms = stacks.NewKernel(filepath.Join(root, "kallsyms"))
		}
		ks := a.acts.ksyms
		a.acts.mu.Unlock()
		var err error
		if k.KernelStackTrace, err = ks.Entries(raw.KernelStack); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 && og != nil && og.Note == "" {
		og.Note = "stack traces: " + strings.Join(errs, "; ")
	}
}

// bundleRoot is the root file system of a bundle's container, "" when
// its config does not tell.
func bundleRoot(bundle string) string {
	if bundle == "" {
		return ""
	}
	spec, err := ocispec.ReadBundleConfig(bundle)
	if err != nil || spec.Root == nil || spec.Root.Path == "" {
		return ""
	}
	if filepath.IsAbs(spec.Root.Path) {
		return spec.Root.Path
	}
	return filepath.Join(bundle, spec.Root.Path)
}

// hashFile is the sha256 of the content of path in the file system
// rooted at root (resolved inside it: the container's own symlinks
// cannot lead out), remembered by file.
func (u *userActs) hashFile(root, path string) (string, error) {
	f, err := openInRoot(root, path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat: %w", err)
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	if sys == nil || !st.Mode().IsRegular() || st.Size() > maxHashSize {
		return "", fmt.Errorf("not a regular file of at most %d bytes", maxHashSize)
	}
	id := fileID{dev: sys.Dev, ino: sys.Ino, size: st.Size(), ctime: sys.Ctim.Nano()}
	u.mu.Lock()
	sum, ok := u.hashes[id]
	u.mu.Unlock()
	if ok {
		return sum, nil
	}
	_ = f.SetDeadline(time.Now().Add(hashTimeout))
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	u.mu.Lock()
	if u.hashes == nil || len(u.hashes) >= maxHashCache {
		u.hashes = map[fileID]string{}
	}
	u.hashes[id] = sum
	u.mu.Unlock()
	return sum, nil
}

// openInRoot opens path for reading as a process whose root is root sees
// it (openat2 RESOLVE_IN_ROOT), without blocking on a fifo.
func openInRoot(root, path string) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(dir)
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(dir, strings.TrimPrefix(path, "/"), &how)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", path, root, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
