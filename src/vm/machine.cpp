#include "vm/machine.hpp"

#include "host/atomic_file.hpp"
#include "host/state_files.hpp"
#include "util/json_words.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

namespace vfioctl::vm {

namespace fs = std::filesystem;

std::string default_run_base() {
    if (const char* e = std::getenv("VFIOCTL_RUN_DIR"); e && *e) return e;
    if (::geteuid() == 0) return "/run/vfioctl";
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/vfioctl";
    return "/tmp/vfioctl-" + std::to_string(::geteuid());
}

std::string run_dir(const std::string& base, const std::string& name) {
    return base + "/" + name;
}

namespace {

// A field of a VM record of the wrong type or out of range, in words.
struct Damaged {
    std::string what;
};

std::string str_of(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string())
        throw Damaged{std::string(key) + " is " + util::json_type_words(*it) + ", not a string"};
    return it->get<std::string>();
}

int64_t int_of(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return 0;
    if (!it->is_number_integer())
        throw Damaged{std::string(key) + " is " + util::json_type_words(*it) +
                      ", not a whole number"};
    if (it->is_number_unsigned() ? it->get<uint64_t>() > static_cast<uint64_t>(hi)
                                 : it->get<int64_t>() < lo || it->get<int64_t>() > hi)
        throw Damaged{std::string(key) + " is out of range"};
    return it->get<int64_t>();
}

std::vector<std::string> strs_of(const nlohmann::json& j, const char* key) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return out;
    if (!it->is_array())
        throw Damaged{std::string(key) + " is " + util::json_type_words(*it) + ", not a list"};
    for (const auto& e : *it) {
        if (!e.is_string())
            throw Damaged{std::string(key) + " holds " + util::json_type_words(e) +
                          ", not only strings"};
        out.push_back(e.get<std::string>());
    }
    return out;
}

} // namespace

Result<VmRecord> read_record(const std::string& dir) {
    const std::string path = dir + "/vm.json";
    std::ifstream f(path);
    if (!f) return system_error("no VM record", path);
    const char* const hint = "remove the directory once no QEMU of this VM runs";
    try {
        auto j = nlohmann::json::parse(f);
        if (!j.is_object()) throw Damaged{"it is " + util::json_type_words(j) + ", not an object"};
        VmRecord r;
        r.name = str_of(j, "name");
        // A PID the kernel can give (pid_max is at most 2^22): a wrapped
        // number must never name another process that stop would kill.
        r.pid = static_cast<int>(int_of(j, "pid", 0, 4194304));
        r.started = int_of(j, "started", 0, int64_t{1} << 40);
        r.accel = str_of(j, "accel");
        r.qmp_socket = str_of(j, "qmp_socket");
        r.console_socket = str_of(j, "console_socket");
        r.console_log = str_of(j, "console_log");
        r.pidfile = str_of(j, "pidfile");
        if (j.contains("ssh_port") && !j["ssh_port"].is_null())
            r.ssh_port = static_cast<int>(int_of(j, "ssh_port", 1, 65535));
        r.devices = strs_of(j, "devices");
        r.device_ids = strs_of(j, "device_ids");
        if (r.device_ids.size() != r.devices.size())
            throw Damaged{"devices and device_ids differ in length (" +
                          std::to_string(r.devices.size()) + " and " +
                          std::to_string(r.device_ids.size()) + ")"};
        r.argv = strs_of(j, "argv");
        r.profile = str_of(j, "profile");
        return r;
    } catch (const Damaged& d) {
        return Error{"VM record is damaged (" + d.what + ")", path, hint, 0};
    } catch (const nlohmann::json::parse_error& e) {
        return Error{"VM record is damaged (not JSON: the parse stopped at byte " +
                         std::to_string(e.byte) + ")",
                     path, hint, 0};
    } catch (const nlohmann::json::exception& e) {
        return Error{std::string("VM record is damaged (") + e.what() + ")", path, hint, 0};
    }
}

Status write_record(const std::string& dir, const VmRecord& r) {
    nlohmann::json j = {
        {"name", r.name},
        {"pid", r.pid},
        {"started", r.started},
        {"accel", r.accel},
        {"qmp_socket", r.qmp_socket},
        {"console_socket", r.console_socket},
        {"console_log", r.console_log},
        {"pidfile", r.pidfile},
        {"ssh_port", r.ssh_port ? nlohmann::json(*r.ssh_port) : nlohmann::json(nullptr)},
        {"devices", r.devices},
        {"device_ids", r.device_ids},
        {"argv", r.argv},
        {"profile", r.profile}};
    const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    Status st = host::write_file_atomic(dir + "/vm.json", text, {.mode = 0600});
    if (!st) {
        Error e = st.error();
        e.message = "cannot write the VM record";
        return e;
    }
    return {};
}

Status make_run_dir(const std::string& dir) {
    if (Status st = host::make_dirs_at(dir); !st) {
        Error e = st.error();
        e.message = "cannot create the run directory";
        return e;
    }
    if (::chmod(dir.c_str(), 0700) != 0)
        return system_error("cannot set the run directory's mode", dir);
    return {};
}

void remove_run_dir(const std::string& dir) {
    std::error_code ec;
    fs::remove_all(dir, ec);
}

std::vector<std::string> list_vms(const std::string& base) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base, ec))
        if (e.is_directory(ec) && fs::exists(e.path() / "vm.json", ec))
            out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

AccelChoice choose_accel(Accel wanted, const host::KvmState& kvm) {
    AccelChoice c;
    switch (wanted) {
    case Accel::tcg:
        return c;
    case Accel::kvm:
        if (kvm.usable)
            c.kvm = true;
        else
            c.error = Error{"KVM is not usable: " + kvm.reason, "/dev/kvm",
                            "use --accel tcg (slower, always works) or --accel auto", 0};
        return c;
    case Accel::automatic:
        c.kvm = kvm.usable;
        if (!kvm.usable)
            c.warning = "KVM is not usable (" +
                        (kvm.reason.empty() ? std::string("unknown") : kvm.reason) +
                        "); using TCG, which is much slower";
        return c;
    }
    return c;
}

host::KvmState read_kvm_state(const host::Tree& host) {
    return host::read_kvm_state(host);
}

} // namespace vfioctl::vm
