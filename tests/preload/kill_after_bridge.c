// LD_PRELOAD shim for the reliability tests: the process that asks the
// kernel to create a bridge (RTM_NEWLINK, NLM_F_CREATE, kind "bridge") gets
// SIGKILL as soon as the request has been sent, so the bridge exists and
// nothing the program meant to do next has been done. rtnetlink handles a
// request inside sendto(), before it returns.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

static int creates_bridge(const void* buf, size_t len) {
    const struct nlmsghdr* h = buf;
    if (len < sizeof *h || h->nlmsg_type != RTM_NEWLINK || !(h->nlmsg_flags & NLM_F_CREATE))
        return 0;
    return memmem(buf, len, "bridge", sizeof "bridge") != NULL;  // IFLA_INFO_KIND, with its NUL
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to,
               socklen_t tolen) {
    static ssize_t (*real)(int, const void*, size_t, int, const struct sockaddr*, socklen_t);
    if (!real) real = dlsym(RTLD_NEXT, "sendto");
    ssize_t n = real(fd, buf, len, flags, to, tolen);
    if (n >= 0 && creates_bridge(buf, len)) raise(SIGKILL);
    return n;
}
