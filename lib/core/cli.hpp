// The CLI glue every program shares (CLI11 underneath).
//
//   CLI::App app{"Run a command in new namespaces.", "unshare-run"};
//   kago::cli::Common common;
//   kago::cli::setup(app, common, "[--] COMMAND [ARG...]");
//   app.add_flag("--pid", opts.pid, "...");
//   if (auto code = kago::cli::parse(app, common, argc, argv)) return *code;
//
// setup() adds -h/--help, -V/--version, -v/--verbose and --dry-run. parse()
// gives every option exactly one word (see one_word_each), stops at the
// first word that is not an option, drops one leading "--",
// rejects unknown options before the command, turns help into exit 0 and
// every other parse error into 125 with "Try 'PROG --help'", and applies
// the trace settings (KAGO_TRACE and KAGO_DRY_RUN are inherited). This is
// the only part of lib/ that prints: it is the boundary to the user.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/exec.hpp"
#include "core/result.hpp"

namespace kago::cli {

inline constexpr const char kVersion[] = "0.1.0";

struct Common {
    bool verbose = false;
    bool dry_run = false;
    std::vector<std::string> command;  // empty: the default command
};

void setup(CLI::App& app, Common& common, std::string_view positional_usage = "[--] [COMMAND [ARG...]]");

// Every option takes exactly one word each time it is given (the grammar:
// "--layer DIR echo hi" runs echo), and a repeatable option says so in its
// help. parse() applies this to every option of app; std::nullopt, or what
// is wrong (an option declared to take two words).
std::optional<std::string> one_word_each(CLI::App& app);
// Does the option collect every occurrence (a vector, or a callback run on
// each one)?
bool repeatable(const CLI::Option& opt);

// The check of every option that names a descriptor (--info-fd,
// --status-fd, --keep-fd): N is a number above 2 and open. 0, 1 and 2 are
// the command's own; a report written there and closed would take its
// stdout away. A bad N is a usage error (125) naming the option.
//   app.add_option("--info-fd", fd, "...")->type_name("N")->check(cli::descriptor());
CLI::Validator descriptor();

// std::nullopt: go on. Otherwise the program returns this code.
std::optional<int> parse(CLI::App& app, Common& common, int argc, char** argv);

// "PROG: what: reason" (+ "PROG: hint: ..."), then exit(code).
[[noreturn]] void die(const Error& e, int code = 125);
// "PROG: message" + "Try 'PROG --help' for more information.", exit 125.
[[noreturn]] void usage_error(std::string_view message);
// "PROG: warning: message".
void warn(std::string_view message);
// "PROG: message" on stderr.
void note(std::string_view message);
// Print e like die() does, without exiting.
void report(const Error& e);

// Exec the next command of the chain and never return: exit 126/127 with a
// message when the exec fails. In dry-run mode a kago program is still run
// (with KAGO_DRY_RUN=1, so that the rest of the chain prints its plan); any
// other command is only shown, and the program exits 0. When strip_env is
// set, every KAGO_ variable is removed first (the last program's duty).
[[noreturn]] void exec_command(const PreparedExec& p, bool strip_env);

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
