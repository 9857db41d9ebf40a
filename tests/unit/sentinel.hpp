#pragma once
// A directory beside a fixture root that no command may change, shared by
// the safety tests (tests/unit) and the hostile-input suite (tests/hostile).

#include "fixture/fixture.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace vfioctl::test {

// A directory beside a fixture root ("<root>-sentinel") that no command may
// change: files, links and directories, recorded when made.
struct Sentinel {
    std::filesystem::path dir;
    std::map<std::string, std::string> before;

    explicit Sentinel(const fixture::HostTree& t) : dir(t.root().string() + "-sentinel") {
        put(dir / "secret", "outside\n");
        put(dir / "x" / "driver_override", "(null)\n");
        put(dir / "lib" / "keep", "keep\n");
        before = snapshot();
    }
    ~Sentinel() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    Sentinel(const Sentinel&) = delete;
    Sentinel& operator=(const Sentinel&) = delete;

    // Every entry under dir: a file's bytes, a link's target, "dir".
    std::map<std::string, std::string> snapshot() const {
        namespace fs = std::filesystem;
        std::map<std::string, std::string> out;
        for (auto it = fs::recursive_directory_iterator(dir);
             it != fs::recursive_directory_iterator(); ++it) {
            const std::string rel = fs::relative(it->path(), dir).string();
            if (it->is_symlink())
                out[rel] = "link:" + fs::read_symlink(it->path()).string();
            else if (it->is_directory())
                out[rel] = "dir";
            else {
                std::ifstream f(it->path(), std::ios::binary);
                std::ostringstream s;
                s << f.rdbuf();
                out[rel] = "file:" + s.str();
            }
        }
        return out;
    }
    std::string name() const { return dir.filename().string(); }

  private:
    static void put(const std::filesystem::path& p, const std::string& data) {
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << data;
    }
};

} // namespace vfioctl::test
