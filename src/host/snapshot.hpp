#pragma once
// Records, read-only, what vfioctl reads from a host into a tree that
// '--root DIR' runs against: a bug report and a test fixture. Copies
// attributes, links and names; never device memory, never secrets (no
// environment, no command lines of processes, no keys).

#include "host/host.hpp"

#include <filesystem>
#include <functional>
#include <string>

namespace vfioctl::host {

struct SnapshotStats {
    size_t files = 0;
    size_t links = 0;
    size_t dirs = 0;
    size_t bytes = 0;
    std::vector<std::string> skipped; // paths that could not be read, in words
};

// Writes the snapshot of src into dest, which must not exist or be empty.
// progress, when given, is called with a short phase name.
Result<SnapshotStats> snapshot(const Tree& src, const std::filesystem::path& dest,
                               const std::function<void(const std::string&)>& progress = {});

} // namespace vfioctl::host
