// A small JSON writer for --info-fd, --status-fd and --show --json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace kago::json {

std::string escape(std::string_view s);  // with the quotes

class Object {
  public:
    Object& add(std::string_view key, std::string_view value);
    Object& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
    Object& add(std::string_view key, int64_t value);
    Object& add(std::string_view key, uint64_t value);
    Object& add(std::string_view key, int value) { return add(key, static_cast<int64_t>(value)); }
    Object& add(std::string_view key, unsigned value) { return add(key, static_cast<uint64_t>(value)); }
    Object& add(std::string_view key, long long value) { return add(key, static_cast<int64_t>(value)); }
    Object& add(std::string_view key, unsigned long long value) { return add(key, static_cast<uint64_t>(value)); }
    Object& add(std::string_view key, bool value);
    Object& add_null(std::string_view key);
    // value must already be JSON (an object, an array).
    Object& add_raw(std::string_view key, std::string_view json);
    std::string str() const { return body_ + "}"; }

  private:
    void key(std::string_view k);
    std::string body_ = "{";
};

// Write text and a newline to fd, then close fd.
Status write_and_close(int fd, std::string_view text);

}  // namespace kago::json
