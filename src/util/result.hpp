#pragma once
// Result<T>: a value or an Error, for every failure that a caller can act on.
// Errors carry the path involved, the errno text and a hint for the user; only
// cli::run prints them.

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace vfioctl {

// What went wrong, where, and what the user can do about it.
struct Error {
    std::string message; // one line, lower case, no trailing period
    std::string path;    // the file involved, if any
    std::string hint;    // what to do next, if known
    int errnum = 0;      // errno at the failure, 0 when not a system error

    // "message: path: strerror" as one line.
    std::string describe() const;
};

// Builds an Error from errno for a failed system call on path.
Error system_error(std::string message, std::string path, int errnum = errno);

template <typename T> class [[nodiscard]] Result {
  public:
    Result(T value) : m_v(std::move(value)) {}
    Result(Error error) : m_v(std::move(error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(m_v); }
    // The value, or fallback when this holds an error.
    T value_or(T fallback) const { return ok() ? value() : std::move(fallback); }

  private:
    std::variant<T, Error> m_v;
};

// Result<void>: success or an Error.
template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)), m_ok(false) {}
    bool ok() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Error& error() const { return m_error; }

  private:
    Error m_error;
    bool m_ok = true;
};

using Status = Result<void>;

} // namespace vfioctl
