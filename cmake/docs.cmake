# Man pages and shell completions, generated from the CLI definition by
# vfioctl-gendoc (tools/gendoc.cpp, built here, not installed) with the
# hand-written parts in man/*.txt, and their install rules.
#   build/man/vfioctl*.1
#   build/completions/{vfioctl.bash,_vfioctl,vfioctl.fish}
include(GNUInstallDirs)

add_executable(vfioctl-gendoc ${CMAKE_SOURCE_DIR}/tools/gendoc.cpp)
target_link_libraries(vfioctl-gendoc PRIVATE vfioctl_core)

# One page per command and per subcommand of vm and iommu; a command added
# to the CLI needs its man/PAGE.txt and its name here (the install rule and
# the build outputs): the generator fails without either.
set(VFIOCTL_MAN_PAGES
  vfioctl status groups explain snapshot export bind unbind recover
  iommu iommu-show iommu-enable iommu-disable iommu-confirm iommu-revert
  vm vm-start vm-stop vm-status vm-list vm-console vm-run vm-export
  verify)
set(VFIOCTL_MAN_OUTPUTS)
set(VFIOCTL_MAN_NAMES)
foreach(page IN LISTS VFIOCTL_MAN_PAGES)
  if(page STREQUAL "vfioctl")
    set(name vfioctl)
  else()
    set(name vfioctl-${page})
  endif()
  list(APPEND VFIOCTL_MAN_NAMES ${name})
  list(APPEND VFIOCTL_MAN_OUTPUTS ${CMAKE_BINARY_DIR}/man/${name}.1)
endforeach()
set(VFIOCTL_COMPLETIONS
  ${CMAKE_BINARY_DIR}/completions/vfioctl.bash
  ${CMAKE_BINARY_DIR}/completions/_vfioctl
  ${CMAKE_BINARY_DIR}/completions/vfioctl.fish)
file(GLOB VFIOCTL_MAN_TEXT CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/man/*.txt)

add_custom_command(
  OUTPUT ${VFIOCTL_MAN_OUTPUTS} ${VFIOCTL_COMPLETIONS}
  COMMAND vfioctl-gendoc ${CMAKE_SOURCE_DIR}/man ${CMAKE_BINARY_DIR} ${VFIOCTL_MAN_NAMES}
  DEPENDS vfioctl-gendoc ${VFIOCTL_MAN_TEXT}
  COMMENT "Generating the man pages and shell completions"
  VERBATIM)
add_custom_target(vfioctl-docs ALL DEPENDS ${VFIOCTL_MAN_OUTPUTS} ${VFIOCTL_COMPLETIONS})

# Installed compressed, as Debian policy wants (gzip -n: no name or time
# stamp, the same page gives the same file); build/man keeps them plain
# for 'man -l' and the tests.
find_program(GZIP gzip REQUIRED)
set(VFIOCTL_MAN_GZ)
foreach(out IN LISTS VFIOCTL_MAN_OUTPUTS)
  get_filename_component(page ${out} NAME)
  set(gz ${CMAKE_BINARY_DIR}/man-gz/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E copy ${out} ${CMAKE_BINARY_DIR}/man-gz/${page}
    COMMAND ${GZIP} -n -9 -f ${CMAKE_BINARY_DIR}/man-gz/${page}
    DEPENDS ${out} VERBATIM)
  list(APPEND VFIOCTL_MAN_GZ ${gz})
endforeach()
add_custom_target(vfioctl-man-gz ALL DEPENDS ${VFIOCTL_MAN_GZ})
install(FILES ${VFIOCTL_MAN_GZ} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_BINARY_DIR}/completions/vfioctl.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME vfioctl)
install(FILES ${CMAKE_BINARY_DIR}/completions/_vfioctl
  DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES ${CMAKE_BINARY_DIR}/completions/vfioctl.fish
  DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)

if(VFIOCTL_TESTS)
  enable_testing()
  # The pages against --help of the real binary, each page through man
  # --warnings, and the completions driven in bash, zsh and fish.
  add_test(NAME doc.manpages
    COMMAND ${CMAKE_SOURCE_DIR}/tests/doc/test-manpages.sh $<TARGET_FILE:vfioctl> ${CMAKE_BINARY_DIR}/man)
  add_test(NAME doc.completions
    COMMAND ${CMAKE_SOURCE_DIR}/tests/completion/test-completions.sh ${CMAKE_BINARY_DIR}/completions)
  set_tests_properties(doc.manpages doc.completions PROPERTIES LABELS unit TIMEOUT 120)
endif()
