#include "core/ready.hpp"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <utility>

#include "core/env.hpp"
#include "core/parse.hpp"

namespace kago::ready {

int take(env::Contract& contract) {
    std::string raw = contract.get(env::kReadyFd);
    if (raw.empty()) return -1;
    contract.unset(env::kReadyFd);
    auto n = parse::u64(raw, env::kReadyFd);
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

bool before_payload(env::Contract& contract) {
    int fd = take(contract);
    return fd < 0 || wait(fd);
}

Result<Gate> Gate::create(env::Contract& contract) {
    if (!before_payload(contract)) return reported_elsewhere();
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return sys_error("pipe2 (the chain's readiness gate)");
    Gate g;
    g.read_ = p[0];
    g.write_ = p[1];
    g.contract_ = &contract;
    contract.set(env::kReadyFd, std::to_string(g.read_));
    return g;
}

Gate::Gate(Gate&& o) noexcept
    : read_(std::exchange(o.read_, -1)),
      write_(std::exchange(o.write_, -1)),
      contract_(o.contract_) {}

Gate& Gate::operator=(Gate&& o) noexcept {
    if (this != &o) {
        fail();
        read_ = std::exchange(o.read_, -1);
        write_ = std::exchange(o.write_, -1);
        contract_ = o.contract_;
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
    if (contract_) contract_->unset(env::kReadyFd);
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
