# Raspberry Pi 2/3/4 with a 32-bit OS (Raspberry Pi OS / Debian armhf, ARMv7).
# Debian armhf code does not run on ARMv6 boards (Pi 1, Pi Zero v1).
# cmake --preset rpi-armhf, or -DCMAKE_TOOLCHAIN_FILE=cross/arm-linux-gnueabihf.cmake.
set(TIDEGATE_CROSS_TRIPLE arm-linux-gnueabihf)
set(TIDEGATE_CROSS_PROCESSOR arm)
set(TIDEGATE_CROSS_DEB_ARCH armhf)
set(TIDEGATE_CROSS_QEMU /usr/bin/qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake)
