#pragma once
// Bindings that survive a reboot: reading every persistent configuration
// that decides which driver a device gets at boot (vfioctl's own
// /etc/vfioctl/bind.d, driverctl's /etc/driverctl.d, vfio-pci.ids= on the
// running and the next command line, 'options vfio-pci ids=' and
// 'softdep ... pre: vfio-pci' in the modprobe.d directories), the conflicts
// between them, and what 'vfioctl bind --at-boot' does with vfioctl's own
// entries. Decisions switch on typed fields; texts are for people.

#include "host/host.hpp"
#include "pci/address.hpp"
#include "pci/device.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vfio {

// vfioctl's per-address entries: one file pci-DDDD:BB:DD.F holding "vfio-pci".
inline constexpr const char* k_bind_dir = "/etc/vfioctl/bind.d";
// driverctl's overrides: one file pci-DDDD:BB:DD.F holding the driver's name.
inline constexpr const char* k_driverctl_dir = "/etc/driverctl.d";
// The udev rule and the unit that apply vfioctl's entries at boot.
inline constexpr const char* k_udev_rule = "61-vfioctl.rules";
inline constexpr const char* k_bind_unit = "vfioctl-bind.service";

// The host path of address's entry in k_bind_dir.
std::string bind_entry_path(const pci::PciAddress& address);

// Where a claim on a device comes from.
enum class Source {
    vfioctl,      // /etc/vfioctl/bind.d
    driverctl,    // /etc/driverctl.d
    cmdline,      // vfio-pci.ids= on the running command line (/proc/cmdline)
    next_cmdline, // vfio-pci.ids= on the command line the next boot gets
    modprobe,     // options vfio-pci ids= in a modprobe.d file
};
// "vfioctl", "driverctl", "cmdline", "next_cmdline", "modprobe".
const char* source_id(Source s);

// One entry of vfio-pci's ids= list: vendor:device[:subvendor[:subdevice
// [:class[:class_mask]]]] in hex, the fields left out matching anything.
struct IdMatch {
    static constexpr uint32_t any = 0xffffffff;
    uint32_t vendor = any;
    uint32_t device = any;
    uint32_t subvendor = any;
    uint32_t subdevice = any;
    uint32_t class_code = 0; // 24 bits: base, sub, prog-if
    uint32_t class_mask = 0;
    // Parses one entry as vfio-pci does; nullopt when it would refuse it.
    static std::optional<IdMatch> parse(std::string_view text);
    // Whether vfio-pci's ID table entry takes d.
    bool matches(const pci::PciDevice& d) const;
    // "10de:2336", "10de:2336:10de:16c1" (the fields given, canonical).
    std::string str() const;
    bool operator==(const IdMatch&) const = default;
};

// One device, or a set of them by ID, sent to a driver by one source.
struct Claim {
    Source source = Source::vfioctl;
    std::string where;                      // "/etc/modprobe.d/vfio.conf:3", "/proc/cmdline"
    std::optional<pci::PciAddress> address; // vfioctl, driverctl
    std::optional<IdMatch> ids;             // cmdline, next_cmdline, modprobe
    std::string driver;                     // "vfio-pci", or driverctl's driver
};

// 'softdep MODULE pre: vfio-pci': vfio-pci loads before MODULE.
struct Softdep {
    std::string where;
    std::string module; // as written ("nvidia")
};

// A file or line that is no configuration vfioctl can read. unreadable:
// the file or directory could not be read at all, so what it says is
// unknown (never taken as "no configuration").
struct ConfigProblem {
    Source source = Source::modprobe;
    std::string where;
    std::string text;
    bool unreadable = false;
};

// Everything read.
struct PersistConfig {
    std::vector<Claim> claims;
    std::vector<Softdep> softdeps;
    std::vector<ConfigProblem> problems;
    // modprobe.d files that a same-named file in a directory read first hides.
    std::vector<std::string> masked;
    bool next_cmdline_known = false; // the next boot's command line was given

    // True when every source of kind s could be read.
    bool known(Source s) const;
    // The claim of source s naming address, or null.
    const Claim* claim_for(Source s, const pci::PciAddress& address) const;
    // The ids claims (cmdline, next_cmdline, modprobe) that take d.
    std::vector<const Claim*> ids_claims_for(const pci::PciDevice& d) const;
};

// What a modprobe.d file says about vfio-pci (pure). path names the lines
// ("PATH:LINE", the first line of a continued one).
struct ModprobeConf {
    std::vector<Claim> claims;
    std::vector<Softdep> softdeps;
    std::vector<ConfigProblem> problems;
};
ModprobeConf parse_modprobe_conf(std::string_view text, std::string_view path);

// The vfio-pci.ids= (or vfio_pci.ids=) entries of a command line (pure);
// entries vfio-pci would refuse go to problems.
std::vector<Claim> cmdline_claims(std::string_view cmdline, Source source, std::string_view where,
                                  std::vector<ConfigProblem>& problems);

// The directories modprobe reads, first wins for a file name.
const std::vector<std::string>& modprobe_dirs();

// Reads every source under host's root. next_cmdline: the next boot's
// command line when the boot loader's configuration tells it.
PersistConfig read_persist(const host::Tree& host,
                           const std::optional<std::string>& next_cmdline = std::nullopt);

enum class ConflictKind {
    // driverctl sends a device vfioctl binds at boot to another driver.
    driverctl_vs_vfioctl,
    // vfio-pci ids= take a device driverctl sends to another driver.
    ids_vs_driverctl,
    // The running command line's ids differ from modprobe.d's.
    cmdline_vs_modprobe,
    // The next boot's ids differ from the running command line's.
    cmdline_vs_next,
    // Two modprobe.d lines set vfio-pci's ids; the kernel module gets both
    // option strings and the last one wins.
    modprobe_twice,
};
// "driverctl_vs_vfioctl", "ids_vs_driverctl", "cmdline_vs_modprobe",
// "cmdline_vs_next", "modprobe_twice".
const char* conflict_kind_id(ConflictKind k);

struct Conflict {
    ConflictKind kind = ConflictKind::driverctl_vs_vfioctl;
    std::optional<pci::PciAddress> address; // the device, when one
    std::vector<std::string> where;         // the claims' places
    std::string text;                       // for people
};

// The conflicts in cfg; devices are matched against inv.
std::vector<Conflict> find_conflicts(const PersistConfig& cfg, const pci::Inventory& inv);

// What 'bind --at-boot' did with one entry.
enum class AtBootOutcome {
    already,       // on vfio-pci already
    bound,         // it had no driver; now on vfio-pci
    taken_back,    // another driver had it (from the initramfs): unbound, now on vfio-pci
    override_only, // driver_override set, but vfio-pci did not take it (see note)
    absent,        // no such device on this boot
    failed,        // driver_override or the unbind failed; the device is as it was
};
// "already", "bound", "taken_back", "override_only", "absent", "failed".
const char* at_boot_outcome_id(AtBootOutcome o);

struct AtBootItem {
    std::string address;
    AtBootOutcome outcome = AtBootOutcome::absent;
    std::optional<std::string> from; // the driver it had
    std::string note;
};

// For every vfioctl entry in cfg (or only those in only, when not empty):
// driver_override=vfio-pci, an unbind from any other driver (bounded),
// vfio-pci loaded, a probe, then the driver checked. One bad entry never
// stops the others.
// A device that holds the root filesystem (or may: unknown_root) is never
// taken from its driver, whatever the entry says: never_take names those
// devices with the reason.
std::vector<AtBootItem> bind_at_boot(const host::Host& host, const PersistConfig& cfg,
                                     const std::vector<pci::PciAddress>& only,
                                     int unbind_timeout_ms,
                                     const std::map<pci::PciAddress, std::string>& never_take = {});

// Whether the host applies vfioctl's entries at boot: the udev rule and the
// unit installed, the unit enabled and not masked. missing says what is
// not, in words (empty when all is there).
struct BootHooks {
    std::vector<std::string> missing;
    bool ok() const { return missing.empty(); }
};
BootHooks boot_hooks(const host::Tree& host);

// What 'bind --persistent' records and 'unbind --persistent' removes.
struct PersistPlan {
    std::vector<pci::PciAddress> add;    // entries to write
    std::vector<pci::PciAddress> remove; // entries to remove
    std::vector<std::string> notes;      // per device, for people
};

// The entries 'bind --persistent' writes for devices (a whole group's
// endpoints): none for a device that has one already or that driverctl
// already sends to vfio-pci (respected, said in notes). An Error, and no
// plan, when the boot hooks are missing (the binding would silently not
// persist), when vfioctl's or driverctl's directory cannot be read (an
// override there is unknown), or when driverctl sends a device to another
// driver (the hint names 'driverctl unset-override' for each).
Result<PersistPlan> plan_persist(const PersistConfig& cfg, const BootHooks& hooks,
                                 const std::vector<pci::PciAddress>& devices);

// The entries 'unbind --persistent' removes for devices; notes say when
// driverctl (which vfioctl leaves alone) or vfio-pci ids still bind one.
// An Error when vfioctl's directory cannot be read.
Result<PersistPlan> plan_unpersist(const PersistConfig& cfg, const pci::Inventory& inv,
                                   const std::vector<pci::PciAddress>& devices);

} // namespace vfioctl::vfio
