#pragma once
// Kernel parameters where boot configurations write them: GRUB's shell
// variables (/etc/default/grub and its drop-ins), a cmdline file
// (/etc/kernel/cmdline), the 'options' lines of a loader entry, kernelstub's
// JSON list. A ParamSet is one kernel command line spread over files: it
// lists every parameter with the place it was written, and removes, replaces
// or adds one at a time while keeping every other byte of the files. Pure:
// files are given and returned as text.

#include "boot/cmdline.hpp"
#include "util/result.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vfioctl::boot {

enum class Format {
    grub_shell,      // /etc/default/grub and /etc/default/grub.d/*.cfg, sourced in order
    cmdline_file,    // /etc/kernel/cmdline: the whole file is the command line
    loader_entry,    // a BootLoaderSpec entry: its 'options' lines
    kernelstub_json, // /etc/kernelstub/configuration: user.kernel_options
    whole_file, // a file vfioctl writes whole (a trial boot entry, a bind.d entry): no parameters
};

// "grub_shell", "cmdline_file", "loader_entry", "kernelstub_json", "whole_file".
const char* format_id(Format f);

// One file of a configuration, by host path, with its current text.
struct ConfigFile {
    std::string path;
    Format format = Format::cmdline_file;
    std::string text;
};

// A parameter as written in one of the files.
struct Param {
    std::string text;     // as the kernel gets it ("intel_iommu=off")
    Token token;          // its key and value
    size_t file = 0;      // index into the set's files
    std::string variable; // GRUB_CMDLINE_LINUX_DEFAULT, options, cmdline, kernel_options
    size_t line = 0;      // 1-based line, 0 when not applicable
    size_t slot = 0;      // assignment index, options line index or list index
    size_t begin = 0;     // source range in the file's text when editable
    size_t end = 0;
    bool editable = false;  // written as one plain literal: it can be removed or replaced in place
    bool effective = false; // part of the command line that boots
    std::string where;      // "/etc/default/grub:9 (GRUB_CMDLINE_LINUX_DEFAULT)"
};

// What a set of files gives the kernel.
struct CmdlineView {
    std::string cmdline;          // the effective command line
    std::vector<Param> effective; // its parameters, in order
    std::vector<Param> written;   // every parameter each place writes itself, effective or not
    // Why the effective command line cannot be known for sure (an assignment
    // inside an if block, a command substitution, a syntax error): vfioctl
    // does not edit such a configuration.
    std::vector<std::string> uncertain;
    std::vector<std::string> notes;
};

// Splits like the kernel (whitespace separates, double quotes group);
// returns each parameter's [begin, end) in text.
std::vector<std::pair<size_t, size_t>> split_params(std::string_view text);

class ParamSet {
  public:
    // files in the order they are read; new_variable is the GRUB variable a
    // missing assignment is added as (GRUB_CMDLINE_LINUX_DEFAULT or GRUB_CMDLINE_LINUX).
    ParamSet(std::string label, std::vector<ConfigFile> files,
             std::string new_variable = "GRUB_CMDLINE_LINUX_DEFAULT");

    const std::string& label() const { return m_label; }
    const std::vector<ConfigFile>& files() const { return m_files; }

    // The command line and every parameter, from the files' current text.
    CmdlineView view() const;

    // Removes p with the whitespace that separated it; an Error when p is
    // not editable or no longer where it was.
    Status remove(const Param& p);
    // Writes text in place of p, in p's quoting; an Error when p is not
    // editable or text cannot be written in that quoting.
    Status replace(const Param& p, std::string_view text);
    // Adds text to the place that decides the command line: the place of
    // near when given, else the last GRUB_CMDLINE_LINUX_DEFAULT assignment
    // (then GRUB_CMDLINE_LINUX, then a new assignment), the last 'options'
    // line, the end of the cmdline file or the list.
    Status append(std::string_view text, const std::optional<Param>& near = std::nullopt);
    // Adds text to the last place in file that writes variable (a new
    // assignment or 'options' line when there is none).
    Status append_to(size_t file, std::string_view variable, std::string_view text);

  private:
    // Adds text at the end of an assignment's value, inside its quoting.
    Status append_shell(size_t file, size_t assignment, std::string_view text);
    // Adds VARIABLE="text" after the commented-out assignment, the last
    // command line assignment, or at the end of the file.
    Status add_assignment(size_t file, const std::string& variable, std::string_view text);
    // Erases [begin, end) and the whitespace that separated it from its
    // neighbours inside [range_begin, range_end).
    Status remove_range(size_t file, size_t range_begin, size_t range_end, size_t begin, size_t end,
                        bool content_before, bool content_after);

    std::string m_label;
    std::vector<ConfigFile> m_files;
    std::string m_new_variable;
};

} // namespace vfioctl::boot
