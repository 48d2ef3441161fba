// Traced wrappers for the kernel calls that several programs make. Each one
// prints its trace line through trace::call() and returns an Error whose
// `what` names the object. Mechanism-specific calls live in their own
// module and follow the same pattern.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "core/trace.hpp"

namespace kago::sys {

Status mount(const char* source, const char* target, const char* fstype, unsigned long flags,
             const char* data);
Status umount2(const char* target, int flags);
Status pivot_root(const char* new_root, const char* put_old);
Status unshare(unsigned long flags);
Status setns(int fd, int nstype, std::string_view what);
Status sethostname(std::string_view name);
Status setdomainname(std::string_view name);
Status chdir(const char* path);
Status fchdir(int fd, std::string_view what);
Status chroot(const char* path);
// mkdir(2); EEXIST is success when exist_ok (then nothing was made).
Result<trace::Made> mkdir(const char* path, mode_t mode, bool exist_ok = true);
// mkdir -p.
// The Made of its last directory: Made::no when it was there already (or
// in a dry run).
Result<trace::Made> mkdir_p(std::string_view path, mode_t mode);
Status rmdir(const char* path);
Status symlink(const char* target, const char* linkpath);
// open(path, O_WRONLY|O_CLOEXEC[|flags]) + write + close, traced as one
// write("path", "content").
Status write_file(const char* path, std::string_view content, int extra_flags = 0);
// The call behind write_file, untraced and without allocation (usable after
// clone()): open, one write of all of it, close. Returns the bytes written,
// or -1 with errno (EIO for a short write); *open_failed tells which step
// failed.
long write_whole(const char* path, std::string_view content, int extra_flags = 0, bool* open_failed = nullptr);
// A message over a unix socket with one descriptor attached (SCM_RIGHTS),
// or none when fd is -1: sendmsg(MSG_NOSIGNAL), again on EINTR. Untraced
// and without allocation (usable after clone()). Returns what sendmsg does.
long send_with_fd(int sock, const void* data, size_t size, int fd);
// The receiving end: recvmsg(MSG_CMSG_CLOEXEC | flags), again on EINTR.
// *fd gets the first descriptor that came along, or -1; any others are
// closed, so that a peer cannot leave descriptors with us. Returns what
// recvmsg does.
long receive_with_fd(int sock, void* data, size_t size, int flags, int* fd);
// write(2) until all n bytes are written, again on EINTR; a write that
// returns 0 is EIO. Untraced and without allocation (usable after clone()).
// Returns 0, or -1 with errno.
int write_all(int fd, const void* p, size_t n);
// The same, for callers that hold a Result: the error is "write WHAT".
Status write_all(int fd, const void* p, size_t n, std::string_view what);
// openat2(dirfd, path, {flags|O_CLOEXEC, mode, RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS}): the path may not leave
// dirfd by "..", an absolute path or a /proc magic link, and follows no
// symlink at all unless follow_symlinks (then only those that stay beneath
// dirfd). mode counts only with O_CREAT or O_TMPFILE. Untraced and without
// allocation. Returns the descriptor, or -1 with errno (EXDEV: the path
// climbs out; ELOOP: a symlink it may not follow).
int open_beneath(int dirfd, const char* path, int flags, mode_t mode = 0,
                 bool follow_symlinks = false);
// Untraced reads: they change nothing.
Result<std::string> read_file(const char* path);
Result<UniqueFd> open(const char* path, int flags, mode_t mode = 0);
Status kill(pid_t pid, int sig);

}  // namespace kago::sys
