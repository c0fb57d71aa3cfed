# Shared part of the Raspberry Pi toolchain files. The including file sets
# TIDEGATE_CROSS_TRIPLE (aarch64-linux-gnu, arm-linux-gnueabihf),
# TIDEGATE_CROSS_PROCESSOR, TIDEGATE_CROSS_DEB_ARCH and TIDEGATE_CROSS_QEMU before including this.
#
# Libraries come from Debian multiarch (/usr/lib/<triple>, installed by
# cross/setup); libyaml-cpp-dev, which cannot be co-installed across
# architectures, comes from the stage folder cross/setup unpacks it into.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${TIDEGATE_CROSS_PROCESSOR})

set(CMAKE_C_COMPILER ${TIDEGATE_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${TIDEGATE_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${TIDEGATE_CROSS_TRIPLE})
# -Wno-psabi: GCC's notes that passing some types (std::pair<double,double>,
# iterators) changed ABI in GCC 7/10 concern mixing objects built by different
# compilers, which a cross build from one toolchain never does.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")

# Where cross/setup staged libyaml-cpp-dev (override with the environment
# variable of the same name, as cross/setup reads it).
if(DEFINED ENV{TIDEGATE_CROSS_STAGE})
    set(TIDEGATE_CROSS_STAGE "$ENV{TIDEGATE_CROSS_STAGE}" CACHE PATH "cross/setup stage root")
else()
    set(TIDEGATE_CROSS_STAGE /opt/tidegate-cross CACHE PATH "cross/setup stage root")
endif()
set(_tidegate_stage ${TIDEGATE_CROSS_STAGE}/${TIDEGATE_CROSS_TRIPLE})
if(NOT EXISTS ${_tidegate_stage}/usr/lib/${TIDEGATE_CROSS_TRIPLE}/cmake/yaml-cpp)
    message(FATAL_ERROR "yaml-cpp for ${TIDEGATE_CROSS_TRIPLE} is not staged in ${_tidegate_stage}: run cross/setup")
endif()

# The stage first (its yaml-cpp config), then the multiarch system root.
set(CMAKE_FIND_ROOT_PATH ${_tidegate_stage} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config for the target: the triple-prefixed wrapper from pkgconf:<arch>
# already searches /usr/lib/<triple>/pkgconfig; set it for plain pkg-config too.
set(ENV{PKG_CONFIG_LIBDIR}
    "${_tidegate_stage}/usr/lib/${TIDEGATE_CROSS_TRIPLE}/pkgconfig:/usr/lib/${TIDEGATE_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
set(PKG_CONFIG_EXECUTABLE /usr/bin/${TIDEGATE_CROSS_TRIPLE}-pkg-config CACHE FILEPATH "pkg-config for the target")

# Test binaries and try_run go through qemu-user, called explicitly (binfmt_misc
# is not mounted here). No -L: the multiarch loader and libc in /lib are the
# right ones; mixing in /usr/<triple> makes threads spin (aarch64) or crash (armhf).
set(CMAKE_CROSSCOMPILING_EMULATOR ${TIDEGATE_CROSS_QEMU})

# The Debian architecture name, for the .deb (CPack would otherwise ask the
# host's dpkg and label an ARM package amd64).
set(TIDEGATE_DEB_ARCH ${TIDEGATE_CROSS_DEB_ARCH} CACHE STRING "Debian architecture of the build")
