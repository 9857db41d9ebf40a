#pragma once
// The serial console of a running VM, relayed to this terminal, and the
// terminal facts the commands need.

#include "util/result.hpp"

#include <string>

namespace vfioctl::services {

// Relays between the console socket and our stdin/stdout until the guest
// side closes. On a terminal: raw mode (restored after), banner written
// to stderr first, Ctrl-] quits. Piped input is sent, then the output is
// relayed until the console has been quiet for a second. An Error when
// the socket cannot be connected.
Status relay_console(const std::string& socket, const std::string& banner);

// True when standard input is a terminal (a question can be asked).
bool stdin_is_terminal();

} // namespace vfioctl::services
