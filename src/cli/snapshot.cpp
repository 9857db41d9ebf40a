#include "cli/commands.hpp"
namespace vfioctl::cli {
Command snapshot_command() { return {"snapshot", "record this host's facts into a tree for --root", [](CLI::App&) { return [](Context&) { return 1; }; }}; }
}
