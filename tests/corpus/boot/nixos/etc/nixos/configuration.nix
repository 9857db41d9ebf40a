{ config, pkgs, ... }:
{
  imports = [ ./hardware-configuration.nix ];
  boot.loader.systemd-boot.enable = true;
  boot.kernelParams = [ "intel_iommu=off" "iommu=pt" ];
  system.stateVersion = "23.11";
}
