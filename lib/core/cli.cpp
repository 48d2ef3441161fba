#include "core/cli.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "core/console.hpp"
#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/ready.hpp"
#include "core/trace.hpp"

namespace kago::cli {
namespace {

// The width of the option column in --help.
constexpr size_t kColumn = 30;

void write_err(std::string_view s) {
    const char* p = s.data();
    size_t n = s.size();
    while (n > 0) {
        ssize_t w = ::write(2, p, n);
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
    }
}

void write_out(const std::string& s) {
    fwrite(s.data(), 1, s.size(), stdout);
    fflush(stdout);
}

}  // namespace

std::string check_descriptor(std::string_view word, int* out) {
    int fd = -1;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), fd);
    if (ec != std::errc() || end != word.data() + word.size() || fd < 0)
        return cat("'", word, "' is not a descriptor number");
    if (fd <= 2)
        return cat(fd, " is the command's ",
                   fd == 0   ? "stdin"
                   : fd == 1 ? "stdout"
                             : "stderr",
                   "; use a descriptor above 2");
    if (::fcntl(fd, F_GETFD) < 0) return cat(fd, " is not an open descriptor");
    if (out) *out = fd;
    return {};
}

Options::Options(std::string_view program, std::string_view about, std::string_view usage)
    : program_(program), about_(about), usage_(usage) {
    trace::set_program(program);
    opts_.reserve(48);
    add("-h,--help", Kind::help, nullptr, "", "Print this help message and exit");
    add("-V,--version", Kind::version, nullptr, "", "Print the version and exit");
    add("-v,--verbose", Kind::flag, &verbose_, "",
        "Trace every kernel call on stderr (also KAGO_TRACE=1, inherited by the chain)");
    add("--dry-run", Kind::flag, &dry_run_, "",
        "Print the kernel calls that would be made, and the command, without making them");
}

Options::Opt& Options::add(std::string_view names, Kind kind, void* into, std::string_view type,
                           std::string_view help) {
    Opt& o = opts_.emplace_back();
    o.names = names;
    o.long_name = names;
    if (names.size() > 3 && names[0] == '-' && names[1] != '-' && names[2] == ',') {
        o.short_name = names[1];
        o.long_name = names.substr(3);
    }
    o.kind = kind;
    o.into = into;
    o.type = type;
    o.help = help;
    return o;
}

Options& Options::flag(std::string_view names, bool& into, std::string_view help) {
    add(names, Kind::flag, &into, "", help);
    return *this;
}

Options& Options::flag(std::string_view names, std::function<void()> on, std::string_view help) {
    add(names, Kind::flag_fn, nullptr, "", help).fn = [on = std::move(on)](const std::string&) {
        on();
        return Status{};
    };
    return *this;
}

Options& Options::flag(std::string_view names, std::string& into, std::string_view type,
                       std::string_view help) {
    add(names, Kind::flag_value, &into, type, help);
    return *this;
}

Options& Options::option(std::string_view names, std::string& into, std::string_view type,
                         std::string_view help) {
    add(names, Kind::text, &into, type, help);
    return *this;
}

Options& Options::choice(std::string_view names, std::string& into, std::string_view choices,
                         std::string_view help) {
    add(names, Kind::choice, &into, choices, help);
    return *this;
}

Options& Options::option(std::string_view names, std::optional<std::string>& into,
                         std::string_view type, std::string_view help) {
    add(names, Kind::maybe_text, &into, type, help);
    return *this;
}

Options& Options::option(std::string_view names, uint32_t& into, std::string_view type,
                         std::string_view help) {
    add(names, Kind::u32, &into, type, help);
    return *this;
}

Options& Options::option(std::string_view names, std::vector<std::string>& into,
                         std::string_view type, std::string_view help) {
    add(names, Kind::texts, &into, type, help);
    return *this;
}

Options& Options::each(std::string_view names, std::string_view type,
                       std::function<Status(const std::string&)> each, std::string_view help) {
    add(names, Kind::each, nullptr, type, help).fn = std::move(each);
    return *this;
}

Options& Options::descriptor(std::string_view names, int& into, std::string_view help) {
    add(names, Kind::fd, &into, "N", help);
    return *this;
}

Options& Options::descriptors(std::string_view names, std::vector<int>& into,
                              std::string_view help) {
    add(names, Kind::fds, &into, "N", help);
    return *this;
}

Options& Options::env(const char* name) {
    opts_.back().env = name;
    return *this;
}

int Options::given(std::string_view long_name) const {
    for (const Opt& o : opts_)
        if (o.long_name == long_name) return o.count;
    return 0;
}

std::string Options::help() const {
    std::string out;
    if (!about_.empty()) out += cat(about_, "\n");
    out += cat("Usage: ", program_, " [OPTIONS] ", usage_, "\n\nOptions:\n");
    for (const Opt& o : opts_) {
        std::string left = cat("  ", o.names);
        if (!o.type.empty()) left += cat(" ", o.type);
        if (o.env) left += cat(" (Env:", o.env, ")");
        out += left;
        if (left.size() >= kColumn)
            out += cat("\n", std::string(kColumn, ' '));
        else
            out.append(kColumn - left.size(), ' ');
        for (char c : o.help) {
            out.push_back(c);
            if (c == '\n') out.append(kColumn, ' ');
        }
        if (repeatable(o.kind) && o.help.find("repeatable") == std::string_view::npos)
            out += " (repeatable)";
        out.push_back('\n');
    }
    out.push_back('\n');
    if (!footer_.empty()) out += cat(footer_, "\n");
    return out;
}

std::optional<int> Options::fail(std::string_view message) const {
    write_err(
        cat(program_, ": ", message, "\nTry '", program_, " --help' for more information.\n"));
    return 125;
}

std::string Options::take(Opt& o, std::string value) {
    ++o.count;
    switch (o.kind) {
        case Kind::flag_value:
        case Kind::text:
            if (o.count > 1 && *static_cast<std::string*>(o.into) != value)
                return cat(o.long_name, " is given twice; it takes one value");
            *static_cast<std::string*>(o.into) = std::move(value);
            return {};
        case Kind::choice: {
            // "a|b|c": "expected a, b or c"
            std::string expected;
            for (size_t i = 0, n = 0; i <= o.type.size(); ++n) {
                size_t j = std::min(o.type.find('|', i), o.type.size());
                if (o.type.substr(i, j - i) == value) {
                    *static_cast<std::string*>(o.into) = std::move(value);
                    return {};
                }
                bool last = j == o.type.size();
                expected += cat(n == 0 ? "" : last ? " or " : ", ", o.type.substr(i, j - i));
                i = j + 1;
            }
            return cat(o.long_name, " ", value, ": expected ", expected);
        }
        case Kind::maybe_text:
            if (o.count > 1 && **static_cast<std::optional<std::string>*>(o.into) != value)
                return cat(o.long_name, " is given twice; it takes one value");
            *static_cast<std::optional<std::string>*>(o.into) = std::move(value);
            return {};
        case Kind::u32: {
            auto n = parse::u64(value, o.long_name);
            if (!n) return n.error().message();
            if (*n > UINT32_MAX) return cat(o.long_name, ": '", value, "' is too large");
            *static_cast<uint32_t*>(o.into) = static_cast<uint32_t>(*n);
            return {};
        }
        case Kind::texts:
            static_cast<std::vector<std::string>*>(o.into)->push_back(std::move(value));
            return {};
        case Kind::flag_fn:
        case Kind::each: {
            auto st = o.fn(value);
            return st ? std::string() : st.error().message();
        }
        case Kind::fd:
        case Kind::fds: {
            int fd = -1;
            if (std::string why = check_descriptor(value, &fd); !why.empty())
                return cat(o.long_name, ": ", why);
            if (o.kind == Kind::fd)
                *static_cast<int*>(o.into) = fd;
            else
                static_cast<std::vector<int>*>(o.into)->push_back(fd);
            return {};
        }
        case Kind::flag: *static_cast<bool*>(o.into) = true; return {};
        case Kind::help:
        case Kind::version: return {};
    }
    return {};
}

std::optional<int> Options::parse(int argc, char** argv, Common& common) {
    int i = 1;
    // One option, its value (when the word holds it) or none.
    auto use = [&](Opt& o, std::string_view shown,
                   std::optional<std::string_view> value) -> std::optional<int> {
        if (o.kind == Kind::help) {
            write_out(help());
            return 0;
        }
        if (o.kind == Kind::version) {
            write_out(cat(program_, " (kago) ", kVersion, "\n"));
            return 0;
        }
        std::string word;
        if (takes_word(o.kind)) {
            if (value)
                word = *value;
            else if (i + 1 < argc)
                word = argv[++i];
            else
                return fail(cat("option '", shown, "' needs a value (", o.type, ")"));
        } else if (value && o.kind != Kind::flag_value) {
            return fail(cat("option '", o.long_name, "' takes no value"));
        } else {
            word = value ? *value : "true";
        }
        if (std::string why = take(o, std::move(word)); !why.empty()) return fail(why);
        return std::nullopt;
    };
    for (; i < argc; ++i) {
        std::string_view w = argv[i];
        if (w == "--") {
            ++i;
            break;
        }
        if (w.size() < 2 || w[0] != '-') break;
        if (w[1] == '-') {
            size_t eq = w.find('=');
            std::string_view name = w.substr(0, eq);
            Opt* found = nullptr;
            for (Opt& o : opts_)
                if (o.long_name == name) found = &o;
            if (!found) return fail(cat("unrecognized option '", w, "'"));
            std::optional<std::string_view> value;
            if (eq != std::string_view::npos) value = w.substr(eq + 1);
            if (auto code = use(*found, name, value)) return code;
            continue;
        }
        // Short options, maybe bundled: "-Upm", "-oFILE", "-o FILE".
        for (size_t j = 1; j < w.size(); ++j) {
            Opt* found = nullptr;
            for (Opt& o : opts_)
                if (o.short_name == w[j]) found = &o;
            if (!found)
                return fail(w.size() == 2 ? cat("unrecognized option '", w, "'")
                                          : cat("unrecognized option '-", w[j], "' in '", w, "'"));
            char shown[3] = {'-', w[j], 0};
            bool rest = takes_word(found->kind) && j + 1 < w.size();
            std::optional<std::string_view> value;
            if (rest) value = w.substr(j + 1);
            if (auto code = use(*found, shown, value)) return code;
            if (rest) break;
        }
    }
    common.command.assign(argv + i, argv + argc);
    for (Opt& o : opts_) {
        if (!o.env || o.count > 0) continue;
        std::string_view v = env::get(o.env);
        if (v.empty()) continue;
        if (std::string why = take(o, std::string(v)); !why.empty())
            return fail(cat(why, " (from ", o.env, ")"));
        o.count = 0;  // given() counts the command line
    }
    common.contract = env::Contract::from_environ();
    common.verbose = verbose_ || common.contract.trace;
    common.dry_run = dry_run_ || common.contract.dry_run;
    trace::set_verbose(common.verbose);
    trace::set_dry_run(common.dry_run);
    return std::nullopt;
}

void report(const Error& e) {
    std::string line = cat(trace::program(), ": ", e.message(), "\n");
    if (!e.hint.empty()) line += cat(trace::program(), ": hint: ", e.hint, "\n");
    write_err(line);
}

void die(const Error& e, int code) {
    report(e);
    exit(code);
}

void usage_error(std::string_view message) {
    write_err(cat(trace::program(), ": ", message, "\nTry '", trace::program(),
                  " --help' for more information.\n"));
    exit(125);
}

void warn(std::string_view message) { write_err(cat(trace::program(), ": warning: ", message, "\n")); }

void note(std::string_view message) { write_err(cat(trace::program(), ": ", message, "\n")); }

int fail(const Error& e) {
    if (e.what.empty()) return e.status ? e.status : 125;  // reported_elsewhere()
    if (e.usage) {
        write_err(cat(trace::program(), ": ", e.message(), "\nTry '", trace::program(),
                      " --help' for more information.\n"));
        return 125;
    }
    report(e);
    return e.status ? e.status : 125;
}

Result<int> exec_next(const PreparedExec& p, env::Contract& contract, bool strip_env) {
    if (!p.kago && !trace::dry_run() && !ready::before_payload(contract))
        return reported_elsewhere();
    if (!p.kago)
        TRY(console::before_payload(contract));  // unshare-run --tty: the payload's own terminal
    if (strip_env) contract.strip_kago();
    if (trace::dry_run()) {
        bool chain = p.kago;
        trace::emit(cat("execve(", trace::quote(p.program.valid() ? p.program_path : p.argv[0]), ", ",
                        describe_argv(p.argv), ", envp)", chain ? " (dry run continues)" : " (dry run)"));
        if (!chain) {
            fflush(stdout);
            return 0;
        }
        contract.set(env::kDryRun, "1");
        trace::set_dry_run(false);  // the exec itself is real: it runs the next plan
        trace::set_verbose(false);  // and it was shown above
    }
    contract.apply();
    Error e = exec_prepared(p);
    int code = exit_code_for_exec_error(e.err);
    return std::move(e).with_status(code);
}

void exec_command(const PreparedExec& p, env::Contract& contract, bool strip_env) {
    auto r = exec_next(p, contract, strip_env);
    exit(r ? *r : fail(r.error()));
}

namespace {
double monotonic_seconds() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
}  // namespace

std::string progress_line(std::string_view label, uint64_t done, uint64_t total, double seconds,
                          int width) {
    std::string line = cat(label, label.empty() ? "" : " ");
    if (total > 0) {
        int filled = static_cast<int>(std::min<uint64_t>(done, total) * width / total);
        line += cat("[", std::string(filled, '#'), std::string(width - filled, '.'), "] ");
        char pct[8];
        snprintf(pct, sizeof pct, "%3d%%",
                 static_cast<int>(std::min<uint64_t>(done, total) * 100 / total));
        line += cat(pct, "  ", parse::human_size(done), " / ", parse::human_size(total));
    } else {
        line += parse::human_size(done);
    }
    uint64_t rate = seconds > 0 ? static_cast<uint64_t>(static_cast<double>(done) / seconds) : 0;
    return line + cat("  ", parse::human_size(rate), "/s");
}

int terminal_columns(int fd) {
    struct winsize ws {};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

ProgressBoard::ProgressBoard(int columns, Writer out, std::function<double()> now, double interval)
    : columns_(std::max(columns, 20)),
      out_(out ? std::move(out) : Writer([](std::string_view s) { write_err(s); })),
      now_(now ? std::move(now) : std::function<double()>(monotonic_seconds)),
      interval_(interval) {}

void ProgressBoard::add(size_t key, std::string label) {
    rows_.push_back(Row{key, std::move(label), 0, 0, now_()});
    draw("");
}

void ProgressBoard::update(size_t key, uint64_t done, uint64_t total) {
    for (auto& r : rows_)
        if (r.key == key) r.done = done, r.total = total;
    if (now_() - shown_ >= interval_) draw("");
}

void ProgressBoard::done(size_t key, std::string_view line) {
    std::erase_if(rows_, [&](const Row& r) { return r.key == key; });
    draw(line);
}

void ProgressBoard::keep(size_t key) {
    for (const auto& r : rows_)
        if (r.key == key)
            return done(key, progress_line(r.label, r.done, r.total, now_() - r.started));
}

void ProgressBoard::print(std::string_view line) {
    draw(line);
}

void ProgressBoard::draw(std::string_view above) {
    double now = now_();
    shown_ = now;
    std::string s;
    if (drawn_ > 0) s += cat("\033[", drawn_, "A");  // up to the first row
    s += "\r";
    if (!above.empty()) s += cat(above, "\033[K\n");
    for (const auto& r : rows_) {
        std::string line = progress_line(r.label, r.done, r.total, now - r.started);
        if (line.size() >= static_cast<size_t>(columns_)) line.resize(columns_ - 1);
        s += cat(line, "\033[K\n");
    }
    if (rows_.size() < drawn_ || !above.empty()) s += "\033[J";  // rows that went
    drawn_ = rows_.size();
    out_(s);
}

}  // namespace kago::cli
