#include "core/ready.hpp"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <utility>

#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/state.hpp"

namespace kago::ready {

int take() {
    const char* raw = ::getenv(env::kReadyFd);
    if (!raw) return -1;
    auto n = parse::u64(raw, env::kReadyFd);
    ::unsetenv(env::kReadyFd);
    if (!n || *n < 3 || *n > 65535) return -1;
    int fd = static_cast<int>(*n);
    return ::fcntl(fd, F_GETFD) < 0 ? -1 : fd;
}

bool wait(int fd) {
    char c = 0;
    ssize_t n;
    do n = ::read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    ::close(fd);
    return n == 1 && c == 'y';
}

void before_payload() {
    int fd = take();
    if (fd >= 0 && !wait(fd)) {
        state::remove_owned_dirs();
        _exit(125);
    }
}

Result<Gate> Gate::create() {
    before_payload();
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return sys_error("pipe2 (the chain's readiness gate)");
    Gate g;
    g.read_ = p[0];
    g.write_ = p[1];
    ::setenv(env::kReadyFd, std::to_string(g.read_).c_str(), 1);
    return g;
}

Gate::Gate(Gate&& o) noexcept
    : read_(std::exchange(o.read_, -1)), write_(std::exchange(o.write_, -1)) {}

Gate& Gate::operator=(Gate&& o) noexcept {
    if (this != &o) {
        fail();
        read_ = std::exchange(o.read_, -1);
        write_ = std::exchange(o.write_, -1);
    }
    return *this;
}

Gate::~Gate() {
    fail();
}

void Gate::Ends::keep_in_child() const {
    if (read >= 0) ::fcntl(read, F_SETFD, 0);
    if (write >= 0) ::close(write);  // the child must see end of file when we fail
}

void Gate::forked() {
    if (read_ < 0) return;
    ::close(std::exchange(read_, -1));
    ::unsetenv(env::kReadyFd);
}

void Gate::open() {
    if (write_ < 0) return;
    ssize_t n;
    do n = ::write(write_, "y", 1);
    while (n < 0 && errno == EINTR);
    ::close(std::exchange(write_, -1));
}

void Gate::fail() {
    forked();
    if (write_ >= 0) ::close(std::exchange(write_, -1));
}

}  // namespace kago::ready
