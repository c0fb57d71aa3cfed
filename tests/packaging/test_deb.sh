#!/usr/bin/env bash
# tests/packaging/test_deb.sh DEB... — checks built tidegate packages without
# installing them: unpacks each with dpkg-deb and checks the file list, the
# conffiles, Depends, the binary's ELF architecture and stripping, that the
# shipped config and unit are the source ones, the maintainer scripts' syntax,
# the unit's systemd-analyze exposure (≤ 2.5), and that the packaged binary
# (under qemu for ARM) accepts the packaged configuration.
# Exit 0 only when every check of every package passed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
max_exposure=2.5
passed=0
failed=0

ok() { passed=$((passed + 1)); printf '  ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf '  FAIL  %s\n' "$1"; [[ -z ${2:-} ]] || printf '%s\n' "$2" | sed 's/^/        /'; }
check() {  # check NAME COMMAND...: passes when COMMAND succeeds
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi
}

[[ $# -ge 1 ]] || { echo "usage: $0 tidegate_VERSION_ARCH.deb..." >&2; exit 2; }
for tool in dpkg-deb readelf file systemd-analyze; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Expected payload (directories aside), from the source tree as the packaging
# takes it: the rule file written for the default config goes to rules.d, the
# larger examples (other sensors and outputs) with the docs.
expected_files() {
    printf '%s\n' ./etc/tidegate/tidegate.yaml ./lib/systemd/system/tidegate.service \
        ./usr/bin/tidegate ./usr/share/doc/tidegate/README.md ./usr/share/doc/tidegate/copyright
    local f
    for f in "$root"/firmware-gateway/config/rules.d/*.yaml; do
        [[ -e $f ]] && printf './etc/tidegate/rules.d/%s\n' "$(basename "$f")"
    done
    for f in "$root"/rules/examples/*.yaml; do
        [[ -e $f ]] && printf './usr/share/doc/tidegate/examples/rules/%s\n' "$(basename "$f")"
    done
    # Their rule tests (`tidegate test`), next to them as in the source tree.
    for f in "$root"/rules/examples/tests/*.yaml; do
        [[ -e $f ]] && printf './usr/share/doc/tidegate/examples/rules/tests/%s\n' "$(basename "$f")"
    done
}

contains_dep() {  # contains_dep DEPENDS PKG: PKG is one of the comma-separated entries
    local deps=$1 pkg=$2
    tr ',' '\n' <<<"$deps" | sed 's/^ *//; s/[ (].*//' | grep -qx "$pkg"
}

test_one() {
    local deb=$1
    echo "$(basename "$deb")"
    if [[ ! -f $deb ]]; then bad "package file exists" "$deb"; return; fi

    local name arch want_arch version dir ctrl
    name=$(basename "$deb")
    want_arch=${name##*_}; want_arch=${want_arch%.deb}
    version=${name#tidegate_}; version=${version%_*}
    dir=$work/$name/root; ctrl=$work/$name/DEBIAN
    mkdir -p "$dir" "$ctrl"
    check "dpkg-deb unpacks it" dpkg-deb -x "$deb" "$dir"
    dpkg-deb -e "$deb" "$ctrl" 2>/dev/null

    # Control fields.
    arch=$(dpkg-deb -f "$deb" Architecture)
    check "Package is tidegate" test "$(dpkg-deb -f "$deb" Package)" = tidegate
    check "Version $version matches the file name" test "$(dpkg-deb -f "$deb" Version)" = "$version"
    check "Architecture $arch matches the file name ($want_arch)" test "$arch" = "$want_arch"
    local deps
    deps=$(dpkg-deb -f "$deb" Depends)
    local d
    for d in libc6 libstdc++6 libpaho-mqtt1.3 libpaho-mqttpp3-1 libyaml-cpp0.7 libgpiod2 libssl3 adduser; do
        check "Depends on $d" contains_dep "$deps" "$d"
    done

    # File list: exactly the expected files, and the rules.d folder.
    local actual expected extra missing
    actual=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sort)
    expected=$(expected_files | sort)
    extra=$(comm -23 <(printf '%s\n' "$actual") <(printf '%s\n' "$expected"))
    missing=$(comm -13 <(printf '%s\n' "$actual") <(printf '%s\n' "$expected"))
    if [[ -z $extra && -z $missing ]]; then ok "file list is exactly the expected one"
    else bad "file list is exactly the expected one" "unexpected: ${extra:-none}"$'\n'"missing: ${missing:-none}"; fi
    check "/etc/tidegate/rules.d/ is shipped" test -d "$dir/etc/tidegate/rules.d"

    # Every file under /etc is a conffile, and the config above all.
    check "conffiles lists /etc/tidegate/tidegate.yaml" grep -qx /etc/tidegate/tidegate.yaml "$ctrl/conffiles"
    local etc_files not_conf
    etc_files=$(cd "$dir" && find etc -type f | sed 's|^|/|' | sort)
    not_conf=$(comm -23 <(printf '%s\n' "$etc_files") <(sort "$ctrl/conffiles" 2>/dev/null))
    if [[ -z $not_conf ]]; then ok "every file under /etc is a conffile"
    else bad "every file under /etc is a conffile" "$not_conf"; fi

    # Shipped files are the source ones.
    check "tidegate.yaml is firmware-gateway/config/tidegate.yaml" \
        cmp "$dir/etc/tidegate/tidegate.yaml" "$root/firmware-gateway/config/tidegate.yaml"
    check "tidegate.service is firmware-gateway/packaging/tidegate.service" \
        cmp "$dir/lib/systemd/system/tidegate.service" "$root/firmware-gateway/packaging/tidegate.service"

    # The binary: architecture, stripped, runnable.
    local bin=$dir/usr/bin/tidegate machine info
    machine=$(readelf -h "$bin" 2>/dev/null | awk -F: '/Machine:/ {sub(/^ +/, "", $2); print $2}')
    info=$(file -b "$bin")
    case $arch in
    arm64) check "ELF machine is AArch64 ($machine)" test "$machine" = AArch64 ;;
    armhf)
        check "ELF machine is ARM ($machine)" test "$machine" = ARM
        check "ELF uses the hard-float ABI" bash -c "readelf -h '$bin' | grep -q 'hard-float ABI'"
        ;;
    amd64) check "ELF machine is x86-64 ($machine)" test "$machine" = "Advanced Micro Devices X86-64" ;;
    *) bad "known architecture" "$arch" ;;
    esac
    check "binary is stripped (no .symtab)" bash -c "! readelf -S '$bin' | grep -q '\\.symtab'"
    check "file(1) says stripped" bash -c "grep -q ', stripped' <<<'$info'"
    printf '        size: %s bytes\n' "$(stat -c %s "$bin")"

    local runner=()
    case $arch in
    arm64) runner=(/usr/bin/qemu-aarch64) ;;
    armhf) runner=(/usr/bin/qemu-arm) ;;
    esac
    check "the packaged binary runs: tidegate version" "${runner[@]}" "$bin" version
    # The packaged config, with its absolute rules folder pointed at the
    # unpacked one, passes `tidegate check`.
    sed "s|/etc/tidegate/rules.d|$dir/etc/tidegate/rules.d|g" \
        "$dir/etc/tidegate/tidegate.yaml" >"$work/$name/check.yaml"
    check "tidegate check accepts the packaged config and rules" \
        "${runner[@]}" "$bin" check -c "$work/$name/check.yaml"

    # Maintainer scripts.
    local s
    for s in postinst prerm postrm; do
        check "$s is executable and valid sh" bash -c "test -x '$ctrl/$s' && sh -n '$ctrl/$s'"
    done
    check "postinst creates the tidegate system user" grep -q 'adduser --system --group' "$ctrl/postinst"
    check "postinst adds it to gpio, dialout, i2c" grep -q 'for g in gpio dialout i2c' "$ctrl/postinst"

    # The unit's hardening.
    local unit=$dir/lib/systemd/system/tidegate.service sa exposure
    check "unit: Type=notify, watchdog, reload by SIGHUP, user tidegate" bash -c "
        grep -qx 'Type=notify' '$unit' && grep -qx 'WatchdogSec=30' '$unit' &&
        grep -qx 'ExecReload=/bin/kill -HUP \$MAINPID' '$unit' && grep -qx 'User=tidegate' '$unit' &&
        grep -qx 'ExecStart=/usr/bin/tidegate run -c /etc/tidegate/tidegate.yaml' '$unit'"
    sa=$(cd "$(dirname "$unit")" && systemd-analyze security --offline=true --no-pager tidegate.service 2>&1)
    exposure=$(sed -n 's/.*Overall exposure level for tidegate.service: \([0-9.]*\).*/\1/p' <<<"$sa")
    if [[ -n $exposure ]] && awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }'; then
        ok "systemd-analyze security exposure $exposure <= $max_exposure"
    else
        bad "systemd-analyze security exposure ${exposure:-?} <= $max_exposure" "$(tail -n 5 <<<"$sa")"
    fi
}

for deb in "$@"; do
    test_one "$deb"
done
echo "test_deb: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
