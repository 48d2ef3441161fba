// A small JSON reader for seccomp profiles. Every value remembers the line
// and column where it starts, so that errors about a profile's contents can
// point at the place: "profile.json:12:15: unknown syscall 'kexec_lod'".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace kago::caps {

struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    std::string text;         // String: the decoded string; Number: its digits
    std::vector<JsonValue> items;                          // Array
    std::vector<std::pair<std::string, JsonValue>> fields;  // Object, in order
    int line = 1, column = 1;

    // Declared, so that clang 14 with libstdc++ 12 does not ask whether
    // JsonValue is default-constructible while `fields` is incomplete.
    JsonValue() = default;

    bool is(Type t) const { return type == t; }
    // The field named key, or nullptr.
    const JsonValue* get(std::string_view key) const;
    // The number as an unsigned integer, when it is one.
    bool as_u64(uint64_t& out) const;
    const char* type_name() const;
};

// Parse a whole document. A syntax error reads "LINE:COLUMN: what".
Result<JsonValue> parse_json(std::string_view text);

// "LINE:COLUMN: " for messages about a value.
std::string where(const JsonValue& v);

}  // namespace kago::caps
