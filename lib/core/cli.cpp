#include "core/cli.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "core/console.hpp"
#include "core/env.hpp"
#include "core/ready.hpp"
#include "core/state.hpp"
#include "core/trace.hpp"

namespace kago::cli {
namespace {

class Formatter : public CLI::Formatter {
  public:
    explicit Formatter(std::string usage_tail) : tail_(std::move(usage_tail)) {}
    std::string make_usage(const CLI::App* app, std::string) const override {
        return cat("Usage: ", app->get_name(), " [OPTIONS] ", tail_, "\n");
    }
    // "--layer DIR", never CLI11's "--layer DIR ...": every option takes one word.
    std::string make_option_opts(const CLI::Option* opt) const override {
        std::string out;
        if (opt->get_type_size() != 0 && !opt->get_type_name().empty()) out += cat(" ", opt->get_type_name());
        if (!opt->get_envname().empty()) out += cat(" (Env:", opt->get_envname(), ")");
        return out;
    }

  private:
    std::string tail_;
};

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

}  // namespace

bool repeatable(const CLI::Option& opt) {
    if (opt.get_type_size_max() == 0) return false;  // a flag
    return opt.get_expected_max() >= CLI::detail::expected_max_vector_size || opt.get_trigger_on_parse();
}

std::optional<std::string> one_word_each(CLI::App& app) {
    for (CLI::Option* opt : app.get_options()) {
        if (opt->get_type_size_max() > 1 || opt->get_expected_min() > 1)
            return cat(opt->get_name(), " takes more than one word");
        // CLI11 lets a vector option take every following word that is not an
        // option: "--layer DIR echo hi" would make "echo" a layer. One word per
        // occurrence leaves the command alone.
        opt->allow_extra_args(false);
        if (repeatable(*opt) && opt->get_description().find("repeatable") == std::string::npos)
            opt->description(cat(opt->get_description(), " (repeatable)"));
    }
    return std::nullopt;
}

CLI::Validator descriptor() {
    return CLI::Validator(
        [](std::string& word) -> std::string {
            int fd = -1;
            auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), fd);
            if (ec != std::errc() || end != word.data() + word.size() || fd < 0)
                return cat("'", word, "' is not a descriptor number");
            if (fd <= 2)
                return cat(fd, " is the command's ", fd == 0 ? "stdin" : fd == 1 ? "stdout" : "stderr",
                           "; use a descriptor above 2");
            if (::fcntl(fd, F_GETFD) < 0) return cat(fd, " is not an open descriptor");
            return {};
        },
        "");
}

void setup(CLI::App& app, Common& common, std::string_view positional_usage) {
    trace::set_program(app.get_name());
    app.formatter(std::make_shared<Formatter>(std::string(positional_usage)));
    app.get_formatter()->column_width(30);
    app.prefix_command();
    app.set_version_flag("-V,--version", cat(app.get_name(), " (kago) ", kVersion),
                         "Print the version and exit");
    app.add_flag("-v,--verbose", common.verbose,
                 "Trace every kernel call on stderr (also KAGO_TRACE=1, inherited by the chain)");
    app.add_flag("--dry-run", common.dry_run,
                 "Print the kernel calls that would be made, and the command, without making them");
}

std::optional<int> parse(CLI::App& app, Common& common, int argc, char** argv) {
    if (auto bad = one_word_each(app)) {
        write_err(cat(app.get_name(), ": internal error: ", *bad, "\n"));
        return 125;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        std::string help = app.help();
        fwrite(help.data(), 1, help.size(), stdout);
        fflush(stdout);
        return 0;
    } catch (const CLI::CallForVersion& e) {
        std::string v = cat(app.get_name(), " (kago) ", kVersion, "\n");
        fwrite(v.data(), 1, v.size(), stdout);
        fflush(stdout);
        return 0;
    } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        write_err(cat(app.get_name(), ": ", msg, "\nTry '", app.get_name(),
                      " --help' for more information.\n"));
        return 125;
    }
    std::vector<std::string> rest = app.remaining();
    if (!rest.empty() && rest[0] == "--") {
        rest.erase(rest.begin());
    } else if (!rest.empty() && rest[0].size() > 1 && rest[0][0] == '-') {
        write_err(cat(app.get_name(), ": unrecognized option '", rest[0], "'\nTry '",
                      app.get_name(), " --help' for more information.\n"));
        return 125;
    }
    common.command = std::move(rest);
    if (env::is_true(env::kTrace)) common.verbose = true;
    if (env::is_true(env::kDryRun)) common.dry_run = true;
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
    state::remove_owned_dirs();
    exit(code);
}

void usage_error(std::string_view message) {
    write_err(cat(trace::program(), ": ", message, "\nTry '", trace::program(),
                  " --help' for more information.\n"));
    state::remove_owned_dirs();
    exit(125);
}

void warn(std::string_view message) { write_err(cat(trace::program(), ": warning: ", message, "\n")); }

void note(std::string_view message) { write_err(cat(trace::program(), ": ", message, "\n")); }

void exec_command(const PreparedExec& p, bool strip_env) {
    if (!p.kago && !trace::dry_run()) ready::before_payload();
    if (!p.kago) {  // unshare-run --tty: the payload's own terminal
        auto st = console::before_payload();
        if (!st) die(st.error());
    }
    if (strip_env) env::strip_kago();
    if (trace::dry_run()) {
        bool chain = p.kago;
        trace::emit(cat("execve(", trace::quote(p.program.valid() ? p.program_path : p.argv[0]), ", ",
                        describe_argv(p.argv), ", envp)", chain ? " (dry run continues)" : " (dry run)"));
        if (!chain) {
            fflush(stdout);
            state::remove_owned_dirs();
            exit(0);
        }
        ::setenv(env::kDryRun, "1", 1);
        trace::set_dry_run(false);  // the exec itself is real: it runs the next plan
        trace::set_verbose(false);  // and it was shown above
    }
    Error e = exec_prepared(p);
    int code = exit_code_for_exec_error(e.err);
    report(e);
    state::remove_owned_dirs();
    exit(code);
}

}  // namespace kago::cli
