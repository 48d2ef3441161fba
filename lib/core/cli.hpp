// The command line every program shares (DESIGN.md, "The grammar every
// program shares"), and the messages at the boundary to the user.
//
//   cli::Options opts("unshare-run", "Run a command in new Linux namespaces.");
//   opts.flag("-p,--pid", o.pid, "New PID namespace");
//   opts.option("--hostname", o.hostname, "NAME", "Set the hostname");
//   opts.option("--join", o.joins, "TYPE=PATH", "Join ...");  // a vector: repeatable
//   cli::Common common;
//   if (auto code = opts.parse(argc, argv, common)) return *code;
//
// Every program has -h/--help, -V/--version, -v/--verbose and --dry-run.
// An option takes exactly one word ("--layer DIR" or "--layer=DIR"), also
// when it is repeatable; short options may be bundled ("-Upm", "-oFILE").
// Parsing stops at the first word that is not an option; one leading "--"
// is dropped. An unknown option before the command, a missing or bad
// value is a usage error (125, "Try 'PROG --help'"); help and version
// print on stdout and give 0. parse() then applies the trace settings
// (KAGO_TRACE and KAGO_DRY_RUN are inherited). The declarations keep
// pointers to the variables they fill and the strings they are given
// (literals): no copies, no static constructors, no iostreams. This is
// the only part of lib/ that prints: it is the boundary to the user.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/result.hpp"

namespace kago::cli {

inline constexpr const char kVersion[] = "0.1.0";

struct Common {
    bool verbose = false;
    bool dry_run = false;
    std::vector<std::string> command;  // empty: the default command
    // The environment contract, read once by parse() and passed down; what
    // this program sets for the rest of the chain is applied at its exec.
    env::Contract contract;
};

class Options {
  public:
    // `usage`: what follows "Usage: PROGRAM [OPTIONS] " in --help.
    Options(std::string_view program, std::string_view about,
            std::string_view usage = "[--] [COMMAND [ARG...]]");
    Options(const Options&) = delete;
    Options& operator=(const Options&) = delete;

    // `names`: "--long", or "-s,--long". `type`: the word's name in --help.
    Options& flag(std::string_view names, bool& into, std::string_view help);
    // A flag that calls `on` each time it is given.
    Options& flag(std::string_view names, std::function<void()> on, std::string_view help);
    // A flag with an optional "=VALUE" (mount-layers --tmp-upper[=SIZE]):
    // "true" when given bare.
    Options& flag(std::string_view names, std::string& into, std::string_view type,
                  std::string_view help);
    Options& option(std::string_view names, std::string& into, std::string_view type,
                    std::string_view help);
    Options& option(std::string_view names, std::optional<std::string>& into, std::string_view type,
                    std::string_view help);
    // One of the words of `choices` ("none|host|user-mode"), which --help
    // shows as the option's type.
    Options& choice(std::string_view names, std::string& into, std::string_view choices,
                    std::string_view help);
    // A decimal number up to UINT32_MAX.
    Options& option(std::string_view names, uint32_t& into, std::string_view type,
                    std::string_view help);
    // Repeatable: one value each time it is given; --help says so.
    Options& option(std::string_view names, std::vector<std::string>& into, std::string_view type,
                    std::string_view help);
    // Repeatable, each value handed to `each` as it comes; an error is a
    // usage error naming what is wrong.
    Options& each(std::string_view names, std::string_view type,
                  std::function<Status(const std::string&)> each, std::string_view help);
    // A descriptor (--info-fd, --status-fd, --keep-fd): N is a number above
    // 2 and open. 0, 1 and 2 are the command's own; a report written there
    // and closed would take its stdout away. A bad N is a usage error.
    Options& descriptor(std::string_view names, int& into, std::string_view help);
    Options& descriptors(std::string_view names, std::vector<int>& into, std::string_view help);
    // The option declared last takes the variable NAME's value when it is
    // not given (the command line wins; an empty variable is unset).
    Options& env(const char* name);
    // Text printed at the end of --help.
    void footer(std::string text) { footer_ = std::move(text); }

    // std::nullopt: go on. Otherwise the program returns this code.
    std::optional<int> parse(int argc, char** argv, Common& common);
    // How many times the option (a long name) was given.
    int given(std::string_view long_name) const;
    std::string help() const;

  private:
    // The flags first: takes_word() is what comes after flag_value.
    enum class Kind : uint8_t {
        help,
        version,
        flag,
        flag_fn,
        flag_value,
        text,
        choice,
        maybe_text,
        u32,
        texts,
        each,
        fd,
        fds
    };
    struct Opt {
        std::string_view names, long_name, type, help;
        char short_name = 0;
        Kind kind = Kind::flag;
        int count = 0;
        void* into = nullptr;
        const char* env = nullptr;
        std::function<Status(const std::string&)> fn;
    };
    static bool takes_word(Kind k) { return k > Kind::flag_value; }
    static bool repeatable(Kind k) { return k == Kind::texts || k == Kind::each || k == Kind::fds; }
    Opt& add(std::string_view names, Kind kind, void* into, std::string_view type,
             std::string_view help);
    // An error message for a bad value, or "".
    std::string take(Opt& o, std::string value);
    std::optional<int> fail(std::string_view message) const;

    std::string_view program_, about_, usage_;
    std::string footer_;
    std::vector<Opt> opts_;
    bool verbose_ = false, dry_run_ = false;
};

// A descriptor number's check: "" when N is above 2 and open, otherwise
// what is wrong ("1 is the command's stdout; use a descriptor above 2").
std::string check_descriptor(std::string_view word, int* fd);

// "PROG: what: reason" (+ "PROG: hint: ..."), then exit(code).
[[noreturn]] void die(const Error& e, int code = 125);
// "PROG: message" + "Try 'PROG --help' for more information.", exit 125.
[[noreturn]] void usage_error(std::string_view message);
// "PROG: warning: message".
void warn(std::string_view message);
// "PROG: message" on stderr.
void note(std::string_view message);

// One progress row: LABEL, a bar `width` wide (none when total is 0, not
// known), the percentage, done / total, and the rate (done over `seconds`):
//   "LABEL [#######.......]  45%  90 MiB / 202 MiB  150 MiB/s"
std::string progress_line(std::string_view label, uint64_t done, uint64_t total, double seconds,
                          int width = 16);

// Several bars at once on a terminal, one row each (the layers of a pull
// in flight), redrawn in place below what was printed before:
//   add(KEY, LABEL)          a new row at the bottom; its rate counts from here
//   update(KEY, DONE, TOTAL) its progress; the rows are redrawn at most ten
//                            times a second
//   done(KEY, LINE)          the row goes; LINE is printed above the rows
//                            left, which move down
//   keep(KEY)                the row goes, its last state printed above
//                            (one bar: pack-selfexec's write)
//   print(LINE)              LINE above the rows
// Rows are cut to the terminal's width, so that each is one line (the
// redraw moves the cursor up over them). Not thread-safe: one caller at a
// time. `out` and `now` are seams for tests (stderr, CLOCK_MONOTONIC).
class ProgressBoard {
  public:
    using Writer = std::function<void(std::string_view)>;
    explicit ProgressBoard(int columns = 80, Writer out = {}, std::function<double()> now = {},
                           double interval = 0.1);
    void add(size_t key, std::string label);
    void update(size_t key, uint64_t done, uint64_t total);
    void done(size_t key, std::string_view line);
    void keep(size_t key);
    void print(std::string_view line);
    size_t rows() const { return rows_.size(); }

  private:
    struct Row {
        size_t key;
        std::string label;
        uint64_t done = 0, total = 0;
        double started = 0;
    };
    void draw(std::string_view above);
    int columns_;
    Writer out_;
    std::function<double()> now_;
    double interval_, shown_ = -1;
    std::vector<Row> rows_;
    size_t drawn_ = 0;  // rows on the screen, the cursor on the line below them
};
// The terminal's width on fd, or 80.
int terminal_columns(int fd);

// Print e like die() does, without exiting.
void report(const Error& e);

// The one place a program's failure is printed, from main: report(e), or
// usage_error()'s lines when e.usage. Returns the status to exit with:
// e.status, or 125.
int fail(const Error& e);

// Exec the next command of the chain; returns only when it did not: 0 in
// a dry run whose command is only shown (the program exits 0), or the
// exec's error with its exit status (126, 127). In dry-run mode a kago
// program is still run (with KAGO_DRY_RUN=1, so that the rest of the chain
// prints its plan). When strip_env is set, every KAGO_ variable is removed
// first (the last program's duty). `contract`'s settings become the exec's
// environment here (Contract::apply()).
Result<int> exec_next(const PreparedExec& p, env::Contract& contract, bool strip_env);
// exec_next() for a program that holds nothing to undo: never returns.
[[noreturn]] void exec_command(const PreparedExec& p, env::Contract& contract, bool strip_env);

// The value of an option unwrapped, or die(125).
template <class T>
T value_or_die(Result<T> r) {
    if (!r) die(r.error());
    return std::move(r).value();
}
inline void check_or_die(const Status& s) {
    if (!s) die(s.error());
}

}  // namespace kago::cli
