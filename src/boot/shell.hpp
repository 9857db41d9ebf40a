#pragma once
// POSIX shell fragments as distributions write /etc/default/grub and its
// drop-ins: the assignments in them, with each value's quoting kept apart
// from what it expands to, and their evaluation in the order /bin/sh would
// source the files, remembering where every character of a value was
// written. Pure: takes text, returns data.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::boot {

// A piece of an assignment's value word, in source order.
struct WordUnit {
    enum Kind {
        quote,   // an opening or closing ' or "; expands to nothing
        literal, // characters that expand to themselves, written as they are
        escape,  // a backslash sequence; expands to text (or nothing: a line continuation)
        ref,     // $NAME or ${NAME}: text is the variable's name
        opaque,  // command substitution or an expansion vfioctl does not evaluate
    };
    Kind kind = literal;
    size_t begin = 0; // source range in the file's text
    size_t end = 0;
    std::string text; // expansion (literal, escape), name (ref), source (opaque)
    char context = 0; // '\'', '"' or 0 when unquoted
};

// NAME=WORD at the top of a simple command (also after "export").
struct Assignment {
    std::string name;
    size_t line = 0; // 1-based line of the name
    size_t name_begin = 0;
    size_t word_begin = 0; // the value word's source range (empty for NAME=)
    size_t word_end = 0;
    size_t line_end = 0; // offset of the end of the statement's last line (before its newline)
    std::vector<WordUnit> units;
    bool exported = false;
    bool conditional = false; // inside if/case/while/for/{ }: it may or may not run
    bool prefix = false;      // a prefix of a command ("A=b cmd"): it does not persist
};

// A commented-out assignment ("#GRUB_CMDLINE_LINUX=..."), where a new one belongs.
struct CommentedAssignment {
    std::string name;
    size_t line = 0;
    size_t line_end = 0;
};

struct ShellFile {
    std::vector<Assignment> assignments;
    std::vector<CommentedAssignment> commented;
    std::vector<std::string> problems; // syntax it could not follow, in words
    bool complex = false;              // has commands besides assignments (if, functions, ...)
    std::string eol = "\n";            // "\r\n" when the file's lines end so
};

// Parses text as /bin/sh would read it, as far as assignments go. Never
// fails: what it cannot follow is listed in problems.
ShellFile parse_shell(std::string_view text);

// Where a character of an evaluated value was written.
struct Origin {
    int file = -1;        // index of the file in the evaluation, -1 when not written anywhere
    int assignment = -1;  // index into that file's assignments
    size_t offset = 0;    // in that file's text
    bool literal = false; // a literal character: it can be edited in place
};

struct ValueChar {
    char c = 0;
    Origin origin;
};

using Value = std::vector<ValueChar>;

// The text of a value.
std::string value_text(const Value& v);

// Variables after sourcing files in order, with the origin of every character.
struct ShellEnv {
    std::map<std::string, Value, std::less<>> vars;
    bool cut = false; // an expansion went past the size limit and was cut there
    std::vector<std::string>
        unset_refs; // variables referenced but set nowhere (empty here, maybe not at boot)
    std::vector<std::string> opaque; // expansions that were not evaluated, as written
};

// Evaluates the assignments of files in order (prefix assignments do not
// persist; conditional ones count as run). Never fails: expansions stop
// (and cut is set) once the values written add up to expansion_budget(files),
// so "A=$A$A" repeated cannot make it run out of memory.
ShellEnv evaluate(const std::vector<const ShellFile*>& files);

// How many value characters evaluating these files may produce in all:
// generous for any real configuration, linear in the files' size.
size_t expansion_budget(const std::vector<const ShellFile*>& files);

// The value one assignment gives its variable, evaluated with env as it was
// before it (used to list what an assignment itself writes). At most limit
// characters: past it the value is cut and *cut (when given) is set.
Value evaluate_assignment(const Assignment& a, const ShellEnv& env, int file, int index,
                          size_t limit = static_cast<size_t>(-1), bool* cut = nullptr);

// True when text can be written inside the given quoting context unchanged
// (no quote, backslash, $ or backquote that would change its meaning).
bool safe_in_context(std::string_view text, char context);

} // namespace vfioctl::boot
