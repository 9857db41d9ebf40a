#include "fake_kernel.hpp"

#include "util/strings.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace vfioctl::fake {

namespace fs = std::filesystem;

namespace {
Error fail(int err, std::string_view p) {
    return system_error("write failed", std::string(p), err);
}
std::string arg(std::string_view data) {
    return std::string(util::trim(data));
}
} // namespace

FakeKernel::FakeKernel(const fixture::HostTree& tree) : Host(tree.root()) {
    for (const auto& addr : tree.addresses())
        m_natural[addr] = driver_of(addr);
}

std::string FakeKernel::dev_dir(const std::string& addr) const {
    auto r = resolve("/sys/bus/pci/devices/" + addr);
    return r ? *r : std::string();
}

std::string FakeKernel::driver_of(const std::string& addr) const {
    return link_name("/sys/bus/pci/devices/" + addr + "/driver").value_or("");
}

std::string FakeKernel::override_of(const std::string& addr) const {
    return attr("/sys/bus/pci/devices/" + addr + "/driver_override").value_or("(null)");
}

void FakeKernel::unload_vfio() {
    std::error_code ec;
    fs::remove_all(path("/sys/bus/pci/drivers/vfio-pci"), ec);
    fs::remove_all(path("/sys/module/vfio_pci"), ec);
}

Status FakeKernel::load_module(const std::string& name) const {
    m_writes.push_back("modprobe " + name);
    if (name != "vfio_pci")
        return Error{"no module " + name + " in the fake kernel", name, {}, ENOENT};
    std::error_code ec;
    fs::create_directories(path("/sys/module/vfio_pci"), ec);
    fs::create_directories(path("/sys/bus/pci/drivers/vfio-pci"), ec);
    return {};
}

Status FakeKernel::set_driver(const std::string& addr, const std::string& driver) const {
    const std::string dev = dev_dir(addr);
    const std::string drv = "/sys/bus/pci/drivers/" + driver;
    if (!is_dir(drv)) return fail(ENODEV, drv);
    if (driver != "vfio-pci" && m_wedge.count(addr)) {
        std::ofstream(path(dev + "/config"), std::ios::binary | std::ios::trunc)
            << std::string(256, '\xff');
        return {}; // the driver's probe fails: nothing binds
    }
    if (auto it = m_return_errors.find(addr); driver != "vfio-pci" && it != m_return_errors.end())
        std::ofstream(path(dev + "/aer_dev_nonfatal"), std::ios::trunc)
            << "CmpltTO " << it->second << "\nTOTAL_ERR_NONFATAL " << it->second << "\n";
    if (driver == "vfio-pci") {
        auto g = link_name("/sys/bus/pci/devices/" + addr + "/iommu_group");
        if (!g) return fail(EINVAL, dev + " (vfio-pci: no iommu_group found)");
        std::error_code ec;
        fs::create_directories(path("/dev/vfio"), ec);
        std::ofstream(path("/dev/vfio/" + *g)).flush();
    }
    std::error_code ec;
    fs::create_symlink(fixture::HostTree::relative_link(dev + "/driver", drv),
                       path(dev + "/driver"), ec);
    fs::create_symlink(fixture::HostTree::relative_link(drv + "/" + addr, dev),
                       path(drv + "/" + addr), ec);
    return {};
}

void FakeKernel::clear_driver(const std::string& addr) const {
    const std::string driver = driver_of(addr);
    if (driver.empty()) return;
    const std::string dev = dev_dir(addr);
    std::error_code ec;
    fs::remove(path(dev + "/driver"), ec);
    fs::remove(path("/sys/bus/pci/drivers/" + driver + "/" + addr), ec);
    if (driver != "vfio-pci") return;
    // The group's node goes when its last device leaves vfio-pci.
    auto g = link_name("/sys/bus/pci/devices/" + addr + "/iommu_group");
    if (!g) return;
    auto members = list("/sys/kernel/iommu_groups/" + *g + "/devices");
    if (members)
        for (const auto& m : *members)
            if (driver_of(m) == "vfio-pci") return;
    fs::remove(path("/dev/vfio/" + *g), ec);
}

Status FakeKernel::do_unbind(const std::string& driver, const std::string& addr) const {
    if (driver_of(addr) != driver)
        return fail(ENODEV, "/sys/bus/pci/drivers/" + driver + "/unbind");
    if (auto it = m_unbind_errno.find(addr); it != m_unbind_errno.end())
        return fail(it->second, "/sys/bus/pci/drivers/" + driver + "/unbind");
    if (auto it = m_unbind_block_ms.find(addr); it != m_unbind_block_ms.end())
        std::this_thread::sleep_for(std::chrono::milliseconds(it->second));
    clear_driver(addr);
    return {};
}

Status FakeKernel::do_bind(const std::string& driver, const std::string& addr) const {
    if (!driver_of(addr).empty()) return fail(EBUSY, "/sys/bus/pci/drivers/" + driver + "/bind");
    std::string ov = override_of(addr);
    if (ov != "(null)" && ov != driver)
        return fail(ENODEV, "/sys/bus/pci/drivers/" + driver + "/bind");
    return set_driver(addr, driver);
}

Status FakeKernel::do_probe(const std::string& addr) const {
    if (!driver_of(addr).empty()) return {};
    if (m_vanish.count(addr)) {
        std::error_code ec;
        fs::remove_all(path(dev_dir(addr)), ec);
        fs::remove(path("/sys/bus/pci/devices/" + addr), ec);
        return fail(ENODEV, "/sys/bus/pci/drivers_probe");
    }
    std::string ov = override_of(addr);
    std::string want = ov != "(null)" ? ov : m_natural.count(addr) ? m_natural.at(addr) : "";
    if (auto it = m_probe_to.find(addr); it != m_probe_to.end()) want = it->second;
    if (want.empty()) return {};
    // A probe that fails binds nothing and is not an error of the write.
    (void)set_driver(addr, want);
    return {};
}

Status FakeKernel::write_bounded(std::string_view p, std::string_view data, int timeout_ms) const {
    // Recorded here: the write itself runs in a child, whose record is lost.
    m_writes.push_back(std::string(p) + " <- " + arg(data));
    return Host::write_bounded(p, data, timeout_ms);
}

Status FakeKernel::write(std::string_view p, std::string_view data) const {
    m_writes.push_back(std::string(p) + " <- " + arg(data));
    std::string sp(p);
    const std::string a = arg(data);
    if (sp == "/sys/bus/pci/drivers_probe") return do_probe(a);
    const std::string drivers = "/sys/bus/pci/drivers/";
    if (util::starts_with(sp, drivers)) {
        std::string rest = sp.substr(drivers.size());
        auto slash = rest.find('/');
        std::string driver = rest.substr(0, slash);
        std::string op = slash == std::string::npos ? "" : rest.substr(slash + 1);
        if (!exists("/sys/bus/pci/devices/" + a)) return fail(ENODEV, sp);
        if (op == "unbind") return do_unbind(driver, a);
        if (op == "bind") return do_bind(driver, a);
    }
    if (sp.size() > 16 && sp.compare(sp.size() - 16, 16, "/driver_override") == 0) {
        if (!exists(sp)) return fail(ENOENT, sp);
        return Host::write(p, a.empty() ? "(null)\n" : a + "\n");
    }
    return Host::write(p, data);
}

} // namespace vfioctl::fake
