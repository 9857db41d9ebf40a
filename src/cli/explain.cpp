#include "cli/commands.hpp"
namespace vfioctl::cli {
Command explain_command() { return {"explain", "explain a QEMU/VFIO error message on this host", [](CLI::App&) { return [](Context&) { return 1; }; }}; }
}
