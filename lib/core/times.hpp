// Step timestamps for measuring a start (KAGO_TIMES=1): each mark() writes
// one line to standard error,
//   kago-times: PID MICROSECONDS STEP
// the microseconds counted from enable(). Made with system calls alone, so
// that a child after clone may mark too; nothing at all when not enabled.
#pragma once

#include <time.h>
#include <unistd.h>

namespace kago::times {

namespace detail {
inline bool on = false;
inline struct timespec start;
}  // namespace detail

inline void enable() {
    detail::on = true;
    ::clock_gettime(CLOCK_MONOTONIC, &detail::start);
}
inline bool enabled() {
    return detail::on;
}

inline void mark(const char* step) {
    if (!detail::on) return;
    struct timespec t;
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    long us =
        (t.tv_sec - detail::start.tv_sec) * 1000000L + (t.tv_nsec - detail::start.tv_nsec) / 1000;
    char buf[160];
    char* p = buf;
    for (const char* s = "kago-times: "; *s;) *p++ = *s++;
    auto number = [&p](long v) {
        char d[24];
        int n = 0;
        do d[n++] = static_cast<char>('0' + v % 10);
        while ((v /= 10) > 0);
        while (n) *p++ = d[--n];
    };
    number(::getpid());
    *p++ = ' ';
    number(us < 0 ? 0 : us);
    *p++ = ' ';
    for (const char* s = step; *s && p < buf + sizeof buf - 1;) *p++ = *s++;
    *p++ = '\n';
    (void)!::write(2, buf, static_cast<size_t>(p - buf));
}

}  // namespace kago::times
