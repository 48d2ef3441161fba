// Result<T>: a value or an Error{errno, what}. lib/ never prints and never
// exits; it returns one of these and cmd/ turns errors into messages.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace kago {

struct Error {
    int err = 0;       // errno value, 0 when the error is not a system error
    std::string what;  // the object: a path, an interface, a syscall with its arguments
    std::string hint;  // optional second line: the likely cause
    int status = 0;    // the exit status the program leaves with; 0 means 125
    bool usage = false;  // a bad command line: "Try 'PROG --help'" follows the message

    // "what: strerror(err)", or just "what" when err is 0.
    std::string message() const;
    Error&& with_hint(std::string h) && {
        hint = std::move(h);
        return std::move(*this);
    }
    Error&& with_status(int s) && {
        status = s;
        return std::move(*this);
    }
    Error&& as_usage() && {
        usage = true;
        return std::move(*this);
    }
};

// The error for a failed system call: takes errno now.
Error sys_error(std::string what);
// The error for bad input, with no errno.
Error usage_error(std::string what);
// A failure that another process has reported already (the supervisor of
// the chain's readiness gate): the program exits `status` quietly. Its
// `what` is empty.
Error reported_elsewhere(int status = 125);

template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}
    explicit operator bool() const { return v_.index() == 0; }
    bool ok() const { return v_.index() == 0; }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return std::get<0>(v_); }
    const T& operator*() const& { return std::get<0>(v_); }
    T&& operator*() && { return std::get<0>(std::move(v_)); }
    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

  private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error e) : err_(std::move(e)), failed_(true) {}
    explicit operator bool() const { return !failed_; }
    bool ok() const { return !failed_; }
    void value() const {}
    const Error& error() const& { return err_; }
    Error&& error() && { return std::move(err_); }

  private:
    Error err_;
    bool failed_ = false;
};

using Status = Result<void>;

// Concatenate strings and numbers without iostreams.
inline void cat_into(std::string&) {}
template <class... Rest>
void cat_into(std::string& out, std::string_view s, Rest&&... rest);
template <class N, class... Rest>
    requires std::is_arithmetic_v<std::remove_cvref_t<N>>
void cat_into(std::string& out, N n, Rest&&... rest) {
    if constexpr (std::is_same_v<std::remove_cvref_t<N>, char>)
        out.push_back(n);
    else if constexpr (std::is_same_v<std::remove_cvref_t<N>, bool>)
        out += n ? "true" : "false";
    else
        out += std::to_string(n);
    cat_into(out, std::forward<Rest>(rest)...);
}
template <class... Rest>
void cat_into(std::string& out, std::string_view s, Rest&&... rest) {
    out.append(s.data(), s.size());
    cat_into(out, std::forward<Rest>(rest)...);
}
template <class... Args>
std::string cat(Args&&... args) {
    std::string out;
    cat_into(out, std::forward<Args>(args)...);
    return out;
}

}  // namespace kago

// TRY(expr): evaluate a Result; on error return it from the enclosing
// function, otherwise yield the value (or void).
#define TRY(expr)                                      \
    ({                                                 \
        auto _kago_try = (expr);                       \
        if (!_kago_try) return std::move(_kago_try).error(); \
        std::move(_kago_try).value();                  \
    })
