#include "cli/fabric_view.hpp"

#include "pci/fabric.hpp"

namespace vfioctl::cli {

namespace {

const char* const k_wiring =
    "inferred: the PCI tree does not show NVLinks; on HGX/DGX baseboards every SXM GPU has "
    "NVLinks to every NVSwitch";

std::string short_list(const std::vector<const pci::PciDevice*>& ds) {
    std::string out;
    for (const auto* d : ds)
        out += (out.empty() ? "" : " ") + d->addr.short_str();
    return out;
}

} // namespace

nlohmann::json fabric_json(const pci::Inventory& inv) {
    auto f = pci::nvlink_fabric(inv);
    if (!f) return nullptr;
    nlohmann::json sw = nlohmann::json::array(), gpus = nlohmann::json::array(),
                   models = nlohmann::json::array();
    for (const auto* d : f->nvswitches)
        sw.push_back({{"address", d->addr.str()},
                      {"id", d->id().str()},
                      {"driver", d->driver ? nlohmann::json(*d->driver) : nullptr}});
    for (const auto* d : f->gpus)
        gpus.push_back(d->addr.str());
    for (const auto& m : pci::fabric_models(*f))
        models.push_back({{"id", m.id}, {"summary", m.summary}, {"how", m.how}});
    return {{"nvswitches", sw},
            {"gpus", gpus},
            {"generation", f->generation},
            {"wiring", k_wiring},
            {"models", models}};
}

std::string fabric_text(const pci::Inventory& inv) {
    auto f = pci::nvlink_fabric(inv);
    if (!f) return {};
    std::string o = "\nNVLink fabric\n";
    o += "  " + std::to_string(f->nvswitches.size()) + " NVSwitches, " + f->generation + ": " +
         short_list(f->nvswitches) + "\n";
    o += "  " + std::to_string(f->gpus.size()) +
         " NVIDIA GPUs share it: " + (f->gpus.empty() ? "none" : short_list(f->gpus)) + "\n";
    o += "  (" + std::string(k_wiring) + ")\n";
    o += "  Passthrough models (NVIDIA Fabric Manager User Guide):\n";
    for (const auto& m : pci::fabric_models(*f)) {
        o += "  - " + m.id + ": " + m.summary + "\n";
        o += "      " + m.how + "\n";
    }
    return o;
}

} // namespace vfioctl::cli
