// Unit tests for run_jobs (lib/core/jobs.hpp), which schedules a pull's
// layers, and cli::ProgressBoard, which shows them on a terminal.
#include "image/jobs.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/cli.hpp"

using namespace kago;
using kago::image::run_jobs;

TEST(RunJobs, EveryItemOnceAtMostJobsAtOnce) {
    for (unsigned jobs : {1u, 2u, 3u, 8u}) {
        std::atomic<int> running{0}, peak{0};
        std::mutex mu;
        std::multiset<size_t> seen;
        Status st = run_jobs(20, jobs, [&](size_t i, const std::atomic<bool>&) -> Status {
            int now = ++running;
            int p = peak.load();
            while (now > p && !peak.compare_exchange_weak(p, now)) {
            }
            {
                std::lock_guard<std::mutex> lock(mu);
                seen.insert(i);
            }
            --running;
            return {};
        });
        ASSERT_TRUE(st) << st.error().what;
        EXPECT_LE(peak.load(), static_cast<int>(jobs));
        ASSERT_EQ(seen.size(), 20u);
        for (size_t i = 0; i < 20; ++i) EXPECT_EQ(seen.count(i), 1u) << i;
    }
}

TEST(RunJobs, NoItemsAndZeroJobs) {
    EXPECT_TRUE(run_jobs(0, 4, [](size_t, const std::atomic<bool>&) -> Status {
        ADD_FAILURE() << "called";
        return {};
    }));
    int n = 0;
    EXPECT_TRUE(run_jobs(3, 0, [&](size_t, const std::atomic<bool>&) -> Status {
        ++n;
        return {};
    }));
    EXPECT_EQ(n, 3);
}

// Two items really at once: the first waits until the second has started,
// then fails; the second sees `stop` and gives up; its error is not the
// one reported, and no later item starts.
TEST(RunJobs, TheFirstFailureStopsTheOthersAndIsTheError) {
    std::mutex mu;
    std::condition_variable cv;
    bool second_started = false;
    std::atomic<int> started{0};
    Status st = run_jobs(10, 2, [&](size_t i, const std::atomic<bool>& stop) -> Status {
        ++started;
        if (i == 0) {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return second_started; });
            return usage_error("layer sha256:aaa: the transfer broke");
        }
        if (i == 1) {
            {
                std::lock_guard<std::mutex> lock(mu);
                second_started = true;
            }
            cv.notify_all();
            while (!stop.load()) {
            }
            return usage_error("stopped: another layer failed");
        }
        return {};
    });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().what, "layer sha256:aaa: the transfer broke");
    EXPECT_EQ(started.load(), 2);
}

TEST(RunJobs, OneJobStopsAtTheFirstFailure) {
    std::vector<size_t> order;
    Status st = run_jobs(5, 1, [&](size_t i, const std::atomic<bool>&) -> Status {
        order.push_back(i);
        if (i == 2) return usage_error("two");
        return {};
    });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().what, "two");
    EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2}));
}

namespace {
struct Screen {
    std::string all;
    double t = 0;
    cli::ProgressBoard board{40, [this](std::string_view s) { all += s; }, [this] { return t; }, 0};
};
}  // namespace

TEST(ProgressBoard, RowsAddedRedrawnInPlaceAndDone) {
    Screen sc;
    sc.board.add(1, "layer 1/2");
    EXPECT_EQ(sc.all, "\rlayer 1/2 0 bytes  0 bytes/s\033[K\n");
    sc.all.clear();
    sc.board.add(2, "layer 2/2");
    // Up over the one row drawn, then both.
    EXPECT_EQ(sc.all,
              "\033[1A\rlayer 1/2 0 bytes  0 bytes/s\033[K\nlayer 2/2 0 bytes  0 bytes/s\033[K\n");
    sc.all.clear();
    sc.t = 1;
    sc.board.update(1, 50, 100);
    EXPECT_TRUE(sc.all.starts_with("\033[2A\rlayer 1/2 [########........]  50%")) << sc.all;
    sc.all.clear();
    sc.board.done(1, "layer 1/2: fetched");
    // The line above, the row left, and what was below cleared.
    EXPECT_EQ(sc.all,
              "\033[2A\rlayer 1/2: fetched\033[K\nlayer 2/2 0 bytes  0 bytes/s\033[K\n\033[J");
    EXPECT_EQ(sc.board.rows(), 1u);
    sc.all.clear();
    sc.board.done(2, "layer 2/2: fetched");
    EXPECT_EQ(sc.all, "\033[1A\rlayer 2/2: fetched\033[K\n\033[J");
    EXPECT_EQ(sc.board.rows(), 0u);
}

TEST(ProgressBoard, KeepLeavesTheLastStateAsALine) {
    Screen sc;
    sc.board.add(0, "");
    sc.t = 2;
    sc.board.update(0, 100, 100);
    sc.all.clear();
    sc.board.keep(0);
    EXPECT_EQ(sc.all,
              "\033[1A\r[################] 100%  100 bytes / 100 bytes  50 bytes/s\033[K\n\033[J");
    EXPECT_EQ(sc.board.rows(), 0u);
    sc.all.clear();
    sc.board.keep(0);  // gone already: nothing
    EXPECT_EQ(sc.all, "");
}

TEST(ProgressBoard, RowsAreCutToTheWidth) {
    Screen sc;
    sc.board.add(1, std::string(100, 'x'));
    std::string row = sc.all.substr(1, sc.all.find('\033') - 1);
    EXPECT_EQ(row.size(), 39u);
}

TEST(ProgressBoard, UpdatesAreThrottled) {
    std::string all;
    double t = 0;
    cli::ProgressBoard b(
        80, [&](std::string_view s) { all += s; }, [&] { return t; }, 0.1);
    b.add(1, "l");
    all.clear();
    t = 0.05;
    b.update(1, 1, 10);
    EXPECT_EQ(all, "");
    t = 0.2;
    b.update(1, 2, 10);
    EXPECT_NE(all, "");
}
