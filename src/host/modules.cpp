// Host::load_module: libkmod, as modprobe does it.

#include "host/host.hpp"

#include <cerrno>
#include <libkmod.h>

namespace vfioctl::host {

Status Host::load_module(const std::string& name) const {
    if (!is_live()) {
        if (exists("/sys/module/" + name)) return {};
        return Error{"module " + name + " is not loaded on this recorded host",
                     "/sys/module/" + name, "vfioctl loads modules only on the live host", 0};
    }
    if (auto st = check_live_write(*this, "/sys/module/" + name); !st) return st;
    kmod_ctx* ctx = kmod_new(nullptr, nullptr);
    if (!ctx) return Error{"libkmod could not start", "/lib/modules", {}, 0};
    kmod_load_resources(ctx);
    kmod_list* list = nullptr;
    int err = kmod_module_new_from_lookup(ctx, name.c_str(), &list);
    if (err < 0 || list == nullptr) {
        kmod_unref(ctx);
        return Error{"no module named " + name + " for the running kernel", "/lib/modules",
                     "install a kernel with VFIO support (CONFIG_VFIO_PCI)", err < 0 ? -err : 0};
    }
    Status result;
    kmod_list* it;
    kmod_list_foreach(it, list) {
        kmod_module* mod = kmod_module_get_module(it);
        int r = kmod_module_probe_insert_module(mod, KMOD_PROBE_IGNORE_LOADED, nullptr, nullptr,
                                                nullptr, nullptr);
        if (r < 0 && result)
            result = system_error("cannot load module " + name, kmod_module_get_name(mod), -r);
        kmod_module_unref(mod);
    }
    kmod_module_unref_list(list);
    kmod_unref(ctx);
    return result;
}

} // namespace vfioctl::host
