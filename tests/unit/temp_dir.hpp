// A temporary directory for a unit test, removed with everything in it.
#pragma once

#include <stdlib.h>

#include <fstream>
#include <string>

namespace kago::test {

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/kago-unit-test.XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
    // Write NAME in the directory; its path.
    std::string write(const std::string& name, const std::string& text) const {
        std::string p = path_ + "/" + name;
        std::ofstream(p) << text;
        return p;
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace kago::test
