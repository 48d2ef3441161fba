#include "cgroup/session.hpp"

#include <unistd.h>

#include "core/proc.hpp"
#include "core/sys.hpp"

namespace kago::cgroup {

Result<Session> Session::plan(Limits limits, std::string parent, bool if_available,
                              std::vector<std::string>& warnings) {
    Session s;
    s.layout_ = TRY(detect(limits.controllers()));
    s.settings_ = TRY(cgroup::plan(limits, s.layout_.version, if_available, &warnings));
    s.limits_ = std::move(limits);
    s.parent_ = std::move(parent);
    s.if_available_ = if_available;
    return s;
}

Session& Session::operator=(Session&& o) noexcept {
    if (this != &o) {
        discard();
        limits_ = std::move(o.limits_);
        parent_ = std::move(o.parent_);
        if_available_ = o.if_available_;
        layout_ = std::move(o.layout_);
        settings_ = std::move(o.settings_);
        cg_ = std::move(o.cg_);
    }
    return *this;
}

Session::~Session() { discard(); }

std::vector<std::string> Session::reap_leftovers() const { return cgroup::reap_leftovers(layout_, parent_); }

Status Session::create(std::string_view name, std::vector<std::string>& warnings) {
    cg_ = TRY(make(layout_, parent_, leaf_name(name, proc::self())));
    return set_up(*cg_, limits_, settings_, if_available_, warnings);
}

Status Session::enter(pid_t pid) {
    if (!cg_) return {};
    for (const auto& dir : cg_->dirs()) TRY(sys::write_file(cat(dir, "/cgroup.procs").c_str(), std::to_string(pid)));
    return {};
}

Session::Report Session::finish(int wstatus) {
    Report r;
    if (!cg_) return r;
    if (auto st = cg_->kill(); !st) r.kill_error = std::move(st).error();
    r.stats = cg_->stats();
    r.effects = describe_effects(limits_, r.stats, wstatus);
    return r;
}

Status Session::remove() {
    if (!cg_) return {};
    auto st = cg_->remove();
    cg_.reset();
    return st;
}

void Session::discard() {
    if (!cg_) return;
    (void)cg_->kill();
    (void)cg_->remove();
    cg_.reset();
}

}  // namespace kago::cgroup
