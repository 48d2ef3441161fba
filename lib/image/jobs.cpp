#include "image/jobs.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace kago::image {

Status run_jobs(size_t n, unsigned jobs, const JobItem& item) {
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::optional<Error> first;  // under mu
    auto work = [&] {
        for (;;) {
            if (stop.load()) return;
            size_t i = next.fetch_add(1);
            if (i >= n) return;
            Status st = item(i, stop);
            if (!st) {
                std::lock_guard<std::mutex> lock(mu);
                if (!first) first = std::move(st).error();
                stop.store(true);
                return;
            }
        }
    };
    size_t threads = std::min<size_t>(std::max(jobs, 1u), n);
    std::vector<std::thread> workers;
    for (size_t k = 1; k < threads; ++k) {
        try {
            workers.emplace_back(work);
        } catch (const std::system_error&) {
            break;
        }
    }
    work();
    for (auto& t : workers) t.join();
    if (first) return std::move(*first);
    return {};
}

}  // namespace kago::image
