#include "mount/resolve.hpp"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <vector>

#include "core/parse.hpp"
#include "core/trace.hpp"

namespace kago::mount {
namespace {

constexpr unsigned long long kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += "/" + p;
    return out.empty() ? "/" : out;
}

Result<UniqueFd> open_at(const Root& root, const std::string& path, int flags) {
    // A leading "/" is fine: with RESOLVE_IN_ROOT it means the root.
    return ops::openat2(root.fd.get(), path, O_PATH | flags, kInRoot, root.shown(path));
}

bool has_dotdot(const std::string& path) {
    for (const auto& c : parse::split(path, '/'))
        if (c == "..") return true;
    return false;
}

}  // namespace

Status check_no_escape(const Root& root, const std::string& dst, std::string_view what) {
    auto r = resolve_in_root(root, dst, what);
    if (!r) return std::move(r).error();
    return {};
}

Result<std::string> resolve_in_root(const Root& root, const std::string& dst, std::string_view what) {
    std::vector<std::string> done;
    std::deque<std::string> todo;
    for (auto& c : parse::split(dst, '/')) todo.push_back(c);
    int links = 0;
    bool missing = false;
    std::string via;  // the last symlink followed, for the message
    while (!todo.empty()) {
        std::string c = std::move(todo.front());
        todo.pop_front();
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (done.empty()) {
                errno = EXDEV;
                if (via.empty()) return usage_error(cat(what, ": '", dst, "' escapes the root through '..'"));
                return usage_error(cat(what, ": '", dst, "' escapes the root through the symlink ", via,
                                       " in the image"));
            }
            done.pop_back();
            continue;
        }
        done.push_back(c);
        if (missing) continue;
        std::string path = join(done);
        auto fd = open_at(root, path, O_NOFOLLOW);
        if (!fd) {
            if (fd.error().err == ENOENT || fd.error().err == ENOTDIR) {
                missing = true;
                continue;
            }
            return Error{fd.error().err, cat(what, ": ", fd.error().what), {}};
        }
        struct stat st;
        if (::fstat(fd->get(), &st) != 0) return sys_error(cat("stat ", root.shown(path)));
        if (!S_ISLNK(st.st_mode)) continue;
        if (++links > 40) {
            errno = ELOOP;
            return sys_error(cat(what, ": resolve ", dst, " in the root"));
        }
        char buf[PATH_MAX];
        ssize_t n = ::readlinkat(fd->get(), "", buf, sizeof buf - 1);
        if (n < 0) return sys_error(cat("read link ", root.shown(path)));
        std::string target(buf, static_cast<size_t>(n));
        via = cat(path, " -> ", target);
        done.pop_back();
        if (!target.empty() && target[0] == '/') done.clear();
        auto parts = parse::split(target, '/');
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
    }
    return join(done);
}

Result<ops::Fd> open_in_root(const Root& root, const std::string& dst, Create create, mode_t mode,
                             std::string_view what) {
    if (!root.fd.made()) return ops::not_made(root.shown(dst));  // a dry run's root
    // The common case in one call: no ".." and no symlink on the way, so
    // nothing to resolve by hand. ENOENT is then final too: every component
    // before the missing one was a plain directory.
    if (!has_dotdot(dst)) {
        auto fd = ops::openat2(root.fd.get(), dst, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS, root.shown(dst));
        if (fd) return ops::Fd{std::move(fd).value(), root.shown(dst)};
        if (fd.error().err == ENOENT && create == Create::none)
            return Error{ENOENT, cat(what, ": ", fd.error().what), {}};
    }
    std::string resolved = TRY(resolve_in_root(root, dst, what));
    auto fd = open_at(root, dst, 0);
    if (fd) return ops::Fd{std::move(fd).value(), root.shown(dst)};
    if (fd.error().err != ENOENT || create == Create::none)
        return Error{fd.error().err, cat(what, ": ", fd.error().what), {}};
    // Create along the resolved path: a dangling symlink in the image gets
    // its target made inside the root.
    auto parent = TRY(open_parent_in_root(root, resolved, what));
    Status made = create == Create::dir
                      ? ops::mkdirat(parent.dir, parent.name, mode ? mode : 0755, root.shown(dst))
                      : ops::touchat(parent.dir, parent.name, mode ? mode : 0644, root.shown(dst));
    if (!made && made.error().err != EEXIST) {
        Error e = std::move(made).error();
        e.what = cat(what, ": ", e.what);
        if (e.err == EROFS)
            e.hint = "the root is read-only: add --tmp-upper or --upper DIR, or create the path in the image";
        return e;
    }
    auto again = open_at(root, resolved, 0);
    if (!again) return Error{again.error().err, cat(what, ": ", again.error().what), {}};
    return ops::Fd{std::move(again).value(), root.shown(dst)};
}

Result<Parent> open_parent_in_root(const Root& root, const std::string& dst, std::string_view what) {
    auto parts = parse::split(dst, '/');
    std::vector<std::string> comps;
    for (auto& p : parts)
        if (!p.empty() && p != ".") comps.push_back(p);
    if (comps.empty()) return usage_error(cat(what, ": no parent for the root itself"));
    Parent out;
    out.name = comps.back();
    comps.pop_back();
    if (!root.fd.made()) {  // a dry run's root
        out.dir = ops::not_made(root.shown(join(comps)));
        return out;
    }
    // The parent, with its symlinks resolved inside the root; the last name
    // is left alone (it may be a symlink that the step replaces or checks).
    std::string parent = TRY(resolve_in_root(root, join(comps), what));
    comps.clear();
    for (auto& p : parse::split(parent, '/'))
        if (!p.empty()) comps.push_back(p);
    auto top = open_at(root, "/", O_DIRECTORY);
    if (!top) return std::move(top).error();
    ops::Fd cur{std::move(top).value(), root.path};
    std::vector<std::string> done;
    for (const auto& c : comps) {
        done.push_back(c);
        std::string p = join(done);
        auto next = open_at(root, p, O_DIRECTORY);
        if (!next && next.error().err == ENOENT) {
            auto made = ops::mkdirat(cur, c, 0755, root.shown(p));
            if (!made && made.error().err != EEXIST) {
                Error e = std::move(made).error();
                e.what = cat(what, ": ", e.what);
                if (e.err == EROFS)
                    e.hint = "the root is read-only: add --tmp-upper or --upper DIR, or create the path in the image";
                return e;
            }
            next = open_at(root, p, O_DIRECTORY);
        }
        if (!next) return Error{next.error().err, cat(what, ": ", next.error().what), {}};
        cur = ops::Fd{std::move(next).value(), root.shown(p)};
    }
    out.dir = std::move(cur);
    return out;
}

}  // namespace kago::mount
