# Raspberry Pi 3/4/5 with a 64-bit OS (Raspberry Pi OS / Debian arm64).
# cmake --preset rpi-arm64, or -DCMAKE_TOOLCHAIN_FILE=cross/aarch64-linux-gnu.cmake.
set(TIDEGATE_CROSS_TRIPLE aarch64-linux-gnu)
set(TIDEGATE_CROSS_PROCESSOR aarch64)
set(TIDEGATE_CROSS_DEB_ARCH arm64)
set(TIDEGATE_CROSS_QEMU /usr/bin/qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake)
