# What 'cmake --install' puts where (GNUInstallDirs), and the Debian package
# CPack makes of it: 'cpack --config build/CPackConfig.cmake -B build/pkg'
# after a build, or scripts/package, which does both.
#
# CPack DEB and not a debian/ directory: the package is made from the tree
# scripts/test has already built and tested, in seconds, so the suite can
# install that very package in its nested guest. dpkg-buildpackage would
# build everything again (ten minutes on two cores). What debhelper would
# do for us is done here by hand and checked by lintian in the tests:
# compressed man pages and changelog, a copyright file, stripped binary,
# shlibs Depends, conffiles, and the systemd unit's maintainer scripts.
include(GNUInstallDirs)

# Debian 12 installs units under /lib/systemd/system (systemd.pc's
# systemdsystemunitdir); other systems may set this.
set(VFIOCTL_SYSTEMD_UNITDIR "/lib/systemd/system" CACHE PATH "where systemd units are installed")

install(TARGETS vfioctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

file(GLOB VFIOCTL_UNITS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/dist/systemd/*.service)
install(FILES ${VFIOCTL_UNITS} DESTINATION ${VFIOCTL_SYSTEMD_UNITDIR})

# The udev rule that applies 'vfioctl bind --persistent' to devices as they
# appear (Debian 12: udev.pc's udevdir is /lib/udev), and the
# initramfs-tools hook that puts it, the entries and vfio-pci into the
# initramfs (it does nothing while /etc/vfioctl/bind.d is empty). 'bind
# --persistent' refuses on a host without the rule and the unit.
set(VFIOCTL_UDEV_RULESDIR "/lib/udev/rules.d" CACHE PATH "where udev rules are installed")
install(FILES ${CMAKE_SOURCE_DIR}/dist/udev/61-vfioctl.rules DESTINATION ${VFIOCTL_UDEV_RULESDIR})
install(PROGRAMS ${CMAKE_SOURCE_DIR}/dist/initramfs-tools/vfioctl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/initramfs-tools/hooks)

# The example VM profile is a conffile: 'vfioctl vm start example' works as
# installed, and a user's edits survive upgrades.
# It goes to /etc whatever the prefix: vfioctl reads profiles from there.
install(FILES ${CMAKE_SOURCE_DIR}/dist/vms/example.toml
        DESTINATION /etc/vfioctl/vms)

set(VFIOCTL_DOCDIR ${CMAKE_INSTALL_DATADIR}/doc/vfioctl)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/architecture.md
              ${CMAKE_SOURCE_DIR}/docs/bench.md ${CMAKE_SOURCE_DIR}/docs/hostile.md
        DESTINATION ${VFIOCTL_DOCDIR})
install(FILES ${CMAKE_SOURCE_DIR}/dist/debian/copyright DESTINATION ${VFIOCTL_DOCDIR})

# The Debian changelog of this native package, its version the project's,
# compressed as policy wants (gzip -n: no name or time stamp, so the same
# text gives the same file).
find_program(GZIP gzip REQUIRED)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/pkg-files/changelog.gz
  COMMAND ${GZIP} -n -9 -c ${CMAKE_BINARY_DIR}/pkg-files/changelog > ${CMAKE_BINARY_DIR}/pkg-files/changelog.gz
  DEPENDS ${CMAKE_BINARY_DIR}/pkg-files/changelog)
add_custom_target(vfioctl_pkg_files ALL DEPENDS ${CMAKE_BINARY_DIR}/pkg-files/changelog.gz)
install(FILES ${CMAKE_BINARY_DIR}/pkg-files/changelog.gz DESTINATION ${VFIOCTL_DOCDIR})

# --- the Debian package ---------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vfioctl)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Whoever builds the package for their machines names themselves here
# (-DVFIOCTL_MAINTAINER=...); the default is the project, at an address
# that says it is not one to write to.
set(VFIOCTL_MAINTAINER "vfioctl developers <maintainers@vfioctl.invalid>" CACHE STRING
    "the Maintainer of the Debian package and its changelog entry")
set(CPACK_PACKAGE_CONTACT "${VFIOCTL_MAINTAINER}")
configure_file(${CMAKE_SOURCE_DIR}/dist/debian/changelog.in ${CMAKE_BINARY_DIR}/pkg-files/changelog @ONLY)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# What vfioctl runs: QEMU for the VMs, busybox for 'vm run' and 'verify'
# guests; the boot loaders' tools are the host's own and only suggested.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "qemu-system-x86, busybox-static | busybox")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "grub2-common, systemd, virtiofsd")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "GPU passthrough to QEMU VMs, from IOMMU off to a GPU in the guest")
set(CPACK_PACKAGE_DESCRIPTION "vfioctl takes a Linux host from IOMMU off to a GPU passed through to a
QEMU virtual machine and back, safely, and proves each step: it diagnoses
the IOMMU, VFIO and KVM setup, changes the boot configuration revertibly,
binds devices to vfio-pci with a journal that survives crashes and reboots,
runs VMs (including a fast mode that boots a freshly built kernel) and
checks the GPU inside the guest.")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://vfioctl.invalid/")
# The example profile under /etc is a conffile; the unit is enabled and
# started at install, as dh_installsystemd would.
configure_file(${CMAKE_SOURCE_DIR}/dist/debian/conffiles.in ${CMAKE_BINARY_DIR}/pkg-files/conffiles @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/pkg-files/conffiles
    ${CMAKE_SOURCE_DIR}/dist/debian/postinst
    ${CMAKE_SOURCE_DIR}/dist/debian/prerm
    ${CMAKE_SOURCE_DIR}/dist/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR}/pkg)
include(CPack)
