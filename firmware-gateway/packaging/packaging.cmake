# Install layout and the Debian package (CPack DEB), included by the top-level
# CMakeLists.txt. scripts/package ARCH drives it; the result is
# dist/tidegate_<version>_<arch>.deb.
#
# Configure with -DCMAKE_INSTALL_PREFIX=/usr for a package: the binary goes to
# /usr/bin, and GNUInstallDirs then maps the configuration to /etc (with another
# prefix, e.g. the default /usr/local, it stays under that prefix).
include(GNUInstallDirs)

set(TIDEGATE_DEFAULT_CONFIG ${PROJECT_SOURCE_DIR}/firmware-gateway/config/tidegate.yaml)
set(_tg_etc ${CMAKE_INSTALL_FULL_SYSCONFDIR}/tidegate)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(_tg_unitdir_default /lib/systemd/system)
else()
    set(_tg_unitdir_default ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(TIDEGATE_SYSTEMD_UNITDIR ${_tg_unitdir_default} CACHE PATH "Where tidegate.service is installed")

# The installed default configuration is written on another line of work; a
# tree without it cannot be packaged, but still builds and tests.
if(EXISTS ${TIDEGATE_DEFAULT_CONFIG})
    install(FILES ${TIDEGATE_DEFAULT_CONFIG} DESTINATION ${_tg_etc})
else()
    install(CODE "message(FATAL_ERROR \"${TIDEGATE_DEFAULT_CONFIG} is missing: the package needs the default configuration\")")
endif()

# rules.d/ gets the rule file written for the default config (its sensors
# exist there, so the service starts); the larger examples, which name other
# sensors and outputs, go with the docs.
file(GLOB TIDEGATE_EXAMPLE_RULES CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/firmware-gateway/config/rules.d/*.yaml)
file(GLOB TIDEGATE_DOC_RULES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/rules/examples/*.yaml)
install(DIRECTORY DESTINATION ${_tg_etc}/rules.d)
if(TIDEGATE_EXAMPLE_RULES)
    install(FILES ${TIDEGATE_EXAMPLE_RULES} DESTINATION ${_tg_etc}/rules.d)
endif()
file(GLOB TIDEGATE_DOC_RULE_TESTS CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/rules/examples/tests/*.yaml)
if(TIDEGATE_DOC_RULES)
    install(FILES ${TIDEGATE_DOC_RULES} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/rules)
endif()
# Their tests, next to them as in the source tree (`rules: [../door.yaml]`).
if(TIDEGATE_DOC_RULE_TESTS)
    install(FILES ${TIDEGATE_DOC_RULE_TESTS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/rules/tests)
endif()

install(FILES ${CMAKE_CURRENT_LIST_DIR}/tidegate.service DESTINATION ${TIDEGATE_SYSTEMD_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${CMAKE_CURRENT_LIST_DIR}/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Everything installed under /etc is a conffile: dpkg keeps the user's edits
# on upgrade and asks when both sides changed.
set(_tg_conffiles "${_tg_etc}/tidegate.yaml\n")
foreach(_f IN LISTS TIDEGATE_EXAMPLE_RULES)
    get_filename_component(_n ${_f} NAME)
    string(APPEND _tg_conffiles "${_tg_etc}/rules.d/${_n}\n")
endforeach()
file(WRITE ${PROJECT_BINARY_DIR}/debian-control/conffiles ${_tg_conffiles})
foreach(_s postinst prerm postrm)
    configure_file(${CMAKE_CURRENT_LIST_DIR}/${_s} ${PROJECT_BINARY_DIR}/debian-control/${_s} COPYONLY)
endforeach()

# The Debian architecture: the toolchain file says it for cross builds (CPack
# would ask the host's dpkg and label an ARM package amd64).
if(NOT TIDEGATE_DEB_ARCH)
    execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE TIDEGATE_DEB_ARCH
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tidegate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Edge event gateway for sensors: readings to MQTT events, local rules")
set(CPACK_PACKAGE_CONTACT "tidegate maintainers <maintainers@tidegate.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/cpack)
set(CPACK_DEBIAN_FILE_NAME "tidegate_${PROJECT_VERSION}_${TIDEGATE_DEB_ARCH}.deb")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${TIDEGATE_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The extended description (CPack indents each line for the control file).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "tidegate reads sensors on a Raspberry Pi or any Linux board, publishes\nevery reading as a JSON event over MQTT and runs a local rules engine that\nreacts to thresholds even while the network is down.")
# dpkg-shlibdeps reads the ELF's architecture and the target's multiarch
# symbols files, so it gives the right Depends for cross builds too (Paho C
# and C++, yaml-cpp, libstdc++, libgcc, libc). libssl3 is what Paho's TLS
# client loads; adduser is what postinst calls.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, libssl3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_BINARY_DIR}/debian-control/conffiles;${PROJECT_BINARY_DIR}/debian-control/postinst;${PROJECT_BINARY_DIR}/debian-control/prerm;${PROJECT_BINARY_DIR}/debian-control/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
