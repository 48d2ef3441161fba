#include "caps/json_value.hpp"

#include <cstdio>

namespace kago::caps {
namespace {

class Parser {
  public:
    explicit Parser(std::string_view s) : s_(s) {}

    Result<JsonValue> document() {
        skip_ws();
        JsonValue v = TRY(value(0));
        skip_ws();
        if (pos_ < s_.size()) return fail("unexpected text after the JSON value");
        return v;
    }

  private:
    Error fail(std::string_view what) const { return usage_error(cat(line_, ":", col_, ": ", what)); }
    Error fail_char(std::string_view expected) const {
        if (pos_ >= s_.size()) return fail(cat("unexpected end of input, expected ", expected));
        char c = s_[pos_];
        std::string shown = (c >= 0x20 && c < 0x7f) ? cat("'", c, "'") : cat("byte 0x", [&] {
            char b[8];
            snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(c));
            return std::string(b);
        }());
        return fail(cat("unexpected ", shown, ", expected ", expected));
    }

    void advance() {
        if (s_[pos_] == '\n') {
            ++line_;
            col_ = 1;
        } else {
            ++col_;
        }
        ++pos_;
    }
    bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            advance();
    }

    Result<JsonValue> value(int depth) {
        if (depth > 64) return fail("nested too deeply");
        JsonValue v;
        v.line = line_;
        v.column = col_;
        if (pos_ >= s_.size()) return fail_char("a value");
        char c = s_[pos_];
        if (c == '{') {
            v.type = JsonValue::Type::Object;
            advance();
            skip_ws();
            if (at('}')) {
                advance();
                return v;
            }
            for (;;) {
                skip_ws();
                if (!at('"')) return fail_char("a string (an object key)");
                std::string key = TRY(string());
                skip_ws();
                if (!at(':')) return fail_char("':'");
                advance();
                skip_ws();
                JsonValue member = TRY(value(depth + 1));
                v.fields.emplace_back(std::move(key), std::move(member));
                skip_ws();
                if (at(',')) {
                    advance();
                    continue;
                }
                if (at('}')) {
                    advance();
                    return v;
                }
                return fail_char("',' or '}'");
            }
        }
        if (c == '[') {
            v.type = JsonValue::Type::Array;
            advance();
            skip_ws();
            if (at(']')) {
                advance();
                return v;
            }
            for (;;) {
                skip_ws();
                v.items.push_back(TRY(value(depth + 1)));
                skip_ws();
                if (at(',')) {
                    advance();
                    continue;
                }
                if (at(']')) {
                    advance();
                    return v;
                }
                return fail_char("',' or ']'");
            }
        }
        if (c == '"') {
            v.type = JsonValue::Type::String;
            v.text = TRY(string());
            return v;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            v.type = JsonValue::Type::Number;
            v.text = TRY(number());
            return v;
        }
        for (auto [word, type, b] : {std::tuple{"true", JsonValue::Type::Bool, true},
                                     std::tuple{"false", JsonValue::Type::Bool, false},
                                     std::tuple{"null", JsonValue::Type::Null, false}}) {
            std::string_view w = word;
            if (s_.substr(pos_, w.size()) == w) {
                for (size_t i = 0; i < w.size(); ++i) advance();
                v.type = type;
                v.boolean = b;
                return v;
            }
        }
        return fail_char("a value");
    }

    Result<std::string> number() {
        size_t start = pos_;
        if (at('-')) advance();
        if (at('0')) {
            advance();
        } else if (pos_ < s_.size() && s_[pos_] >= '1' && s_[pos_] <= '9') {
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') advance();
        } else {
            return fail_char("a digit");
        }
        if (at('.')) {
            advance();
            if (!(pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')) return fail_char("a digit");
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') advance();
        }
        if (at('e') || at('E')) {
            advance();
            if (at('+') || at('-')) advance();
            if (!(pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')) return fail_char("a digit");
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') advance();
        }
        return std::string(s_.substr(start, pos_ - start));
    }

    static void put_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }

    Result<uint32_t> hex4() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            if (pos_ >= s_.size()) return fail_char("a hex digit");
            char c = s_[pos_];
            int d = (c >= '0' && c <= '9')   ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
            if (d < 0) return fail_char("a hex digit");
            v = v * 16 + static_cast<uint32_t>(d);
            advance();
        }
        return v;
    }

    Result<std::string> string() {
        advance();  // the opening quote
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) return fail("unterminated string");
            char c = s_[pos_];
            if (c == '"') {
                advance();
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
            if (c != '\\') {
                out += c;
                advance();
                continue;
            }
            advance();
            if (pos_ >= s_.size()) return fail("unterminated string");
            char e = s_[pos_];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                advance();
                uint32_t cp = TRY(hex4());
                if (cp >= 0xd800 && cp < 0xdc00 && s_.substr(pos_, 2) == "\\u") {
                    advance();
                    advance();
                    uint32_t lo = TRY(hex4());
                    if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(out, cp);
                continue;
            }
            default: return fail_char("an escape character");
            }
            advance();
        }
    }

    std::string_view s_;
    size_t pos_ = 0;
    int line_ = 1, col_ = 1;
};

}  // namespace

const JsonValue* JsonValue::get(std::string_view key) const {
    for (const auto& [k, v] : fields)
        if (k == key) return &v;
    return nullptr;
}

bool JsonValue::as_u64(uint64_t& out) const {
    if (type != Type::Number || text.empty() || text[0] == '-') return false;
    uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

const char* JsonValue::type_name() const {
    switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "a boolean";
    case Type::Number: return "a number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    case Type::Object: return "an object";
    }
    return "?";
}

Result<JsonValue> parse_json(std::string_view text) { return Parser(text).document(); }

std::string where(const JsonValue& v) { return cat(v.line, ":", v.column, ": "); }

}  // namespace kago::caps
