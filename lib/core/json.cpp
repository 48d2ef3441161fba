#include "core/json.hpp"

#include <errno.h>
#include <unistd.h>

#include <cstdio>

#include "core/sys.hpp"

namespace kago::json {

std::string escape(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char b[8];
                snprintf(b, sizeof b, "\\u%04x", c);
                out += b;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    out += '"';
    return out;
}

void Object::key(std::string_view k) {
    if (body_.size() > 1) body_ += ',';
    body_ += escape(k);
    body_ += ':';
}

Object& Object::add(std::string_view k, std::string_view v) {
    key(k);
    body_ += escape(v);
    return *this;
}
Object& Object::add(std::string_view k, int64_t v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}
Object& Object::add(std::string_view k, uint64_t v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}
Object& Object::add(std::string_view k, bool v) {
    key(k);
    body_ += v ? "true" : "false";
    return *this;
}
Object& Object::add_null(std::string_view k) {
    key(k);
    body_ += "null";
    return *this;
}
Object& Object::add_raw(std::string_view k, std::string_view j) {
    key(k);
    body_ += j;
    return *this;
}

Status write_and_close(int fd, std::string_view text) {
    std::string line(text);
    line += '\n';
    if (sys::write_all(fd, line.data(), line.size()) != 0) {
        Error e = sys_error(cat("write to descriptor ", fd));
        ::close(fd);
        return e;
    }
    if (::close(fd) < 0 && errno != EINTR) return sys_error(cat("close descriptor ", fd));
    return {};
}

}  // namespace kago::json
