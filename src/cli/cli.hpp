#pragma once
// The command-line front end: parses arguments, runs one command from the
// table, prints its result as text or JSON, and maps errors to exit codes
// (0 ok, 1 failure, 2 usage, 3 "passthrough will not work").

namespace vfioctl::cli {

int run(int argc, char** argv);

} // namespace vfioctl::cli
