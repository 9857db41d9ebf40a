// vfioctl-mkhost: writes a named fixture host tree into a directory, for
// benchmarks and for trying vfioctl by hand:
//   vfioctl-mkhost NAME DIR      NAME: seed-before, seed-before-held, seed-after,
//                                amd, shared-group, critical-group, firmware-off,
//                                pvm, vfio-missing, dgx, synthetic-N

#include "fixture/fixture.hpp"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

namespace fs = std::filesystem;
using namespace vfioctl::fixture;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: vfioctl-mkhost NAME DIR\n";
        return 2;
    }
    const std::string name = argv[1];
    const fs::path dir = argv[2];
    static const std::map<std::string, std::function<HostTree()>> named = {
        {"seed-before", [] { return seed_before(false); }},
        {"seed-before-held", [] { return seed_before(true); }},
        {"seed-after", seed_after},
        {"amd", amd_host},
        {"shared-group", shared_group_host},
        {"critical-group", critical_group_host},
        {"firmware-off", firmware_off_host},
        {"pvm", pvm_host},
        {"vfio-missing", vfio_missing_host},
        {"dgx", [] { return dgx_host(false); }},
        {"dgx-vfio", [] { return dgx_host(true); }},
    };
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
        std::cerr << "vfioctl-mkhost: " << dir << " exists and is not empty\n";
        return 1;
    }
    try {
        HostTree t = [&] {
            if (name.rfind("synthetic-", 0) == 0)
                return synthetic_host(std::atoi(name.c_str() + 10));
            auto it = named.find(name);
            if (it == named.end()) throw std::runtime_error("unknown host name '" + name + "'");
            return it->second();
        }();
        t.keep();
        fs::create_directories(dir.parent_path().empty() ? "." : dir.parent_path());
        fs::remove(dir, ec);
        fs::rename(t.root(), dir, ec);
        if (ec) {
            fs::copy(t.root(), dir, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
            fs::remove_all(t.root());
        }
    } catch (const std::exception& e) {
        std::cerr << "vfioctl-mkhost: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
