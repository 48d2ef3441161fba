#include "core/parse.hpp"

#include <cstdio>
#include <limits>

namespace kago::parse {

Result<uint64_t> u64(std::string_view s, std::string_view what) {
    if (s.empty()) return usage_error(cat(what, ": empty value; expected a number"));
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return usage_error(cat(what, ": '", s, "' is not a number"));
        uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (std::numeric_limits<uint64_t>::max() - d) / 10)
            return usage_error(cat(what, ": '", s, "' is too large"));
        v = v * 10 + d;
    }
    return v;
}

Result<int64_t> i64(std::string_view s, std::string_view what) {
    bool neg = !s.empty() && s[0] == '-';
    if (neg || (!s.empty() && s[0] == '+')) s.remove_prefix(1);
    auto v = u64(s, what);
    if (!v) return std::move(v).error();
    if (*v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return usage_error(cat(what, ": '", s, "' is too large"));
    int64_t r = static_cast<int64_t>(*v);
    return neg ? -r : r;
}

Result<uint64_t> size(std::string_view s, std::string_view what) {
    if (s == "max") return std::numeric_limits<uint64_t>::max();
    std::string_view digits = s;
    uint64_t mult = 1;
    auto strip = [&](std::string_view suffix) {
        if (digits.size() > suffix.size() &&
            digits.substr(digits.size() - suffix.size()) == suffix) {
            digits.remove_suffix(suffix.size());
            return true;
        }
        return false;
    };
    if (!strip("iB")) strip("B");
    if (!digits.empty()) {
        switch (digits.back()) {
        case 'k': case 'K': mult = 1ull << 10; break;
        case 'm': case 'M': mult = 1ull << 20; break;
        case 'g': case 'G': mult = 1ull << 30; break;
        case 't': case 'T': mult = 1ull << 40; break;
        default: break;
        }
        if (mult != 1) digits.remove_suffix(1);
    }
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
        return usage_error(cat(what, ": '", s,
                               "' is not a size; expected a number with an optional K, M, G "
                               "or T suffix, or 'max'"));
    auto v = u64(digits, what);
    if (!v) return std::move(v).error();
    if (*v > std::numeric_limits<uint64_t>::max() / mult)
        return usage_error(cat(what, ": '", s, "' is too large"));
    return *v * mult;
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t p = s.find(sep, start);
        if (p == std::string_view::npos) {
            out.emplace_back(s.substr(start));
            return out;
        }
        out.emplace_back(s.substr(start, p - start));
        start = p + 1;
    }
}

Result<uint64_t> fraction(std::string_view s, uint64_t scale, std::string_view what) {
    size_t dot = s.find('.');
    std::string_view ip = s.substr(0, dot);
    std::string_view fp = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
    if ((ip.empty() && fp.empty()) || (dot != std::string_view::npos && fp.empty()) ||
        ip.find_first_not_of("0123456789") != std::string_view::npos ||
        fp.find_first_not_of("0123456789") != std::string_view::npos)
        return usage_error(cat(what, ": '", s, "' is not a decimal number"));
    uint64_t i = 0;
    if (!ip.empty()) {
        auto v = u64(ip, what);
        if (!v) return std::move(v).error();
        i = *v;
    }
    if (i > std::numeric_limits<uint64_t>::max() / scale)
        return usage_error(cat(what, ": '", s, "' is too large"));
    uint64_t r = i * scale;
    uint64_t place = scale;
    for (char c : fp) {
        place /= 10;
        r += static_cast<uint64_t>(c - '0') * place;
    }
    return r;
}

std::string human_size(uint64_t bytes) {
    static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    if (bytes == std::numeric_limits<uint64_t>::max()) return "max";
    int u = 0;
    double v = static_cast<double>(bytes);
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0)
        snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
    else if (v == static_cast<double>(static_cast<uint64_t>(v)))
        snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(v), units[u]);
    else
        snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

}  // namespace kago::parse
