#!/usr/bin/env bash
# Builds the cortex-m-rt + defmt example for thumbv7em-none-eabihf, runs it under QEMU
# (mps2-an386, Cortex-M4) and checks its exit status and its defmt log. The log is decoded by
# check_log.py (Python and llvm-nm: the messages in order, the verdict, the focal losses
# against the formula), and also by defmt-print when that is installed: installing it builds
# 114 crates (tokio, clap, serial ports), 713 s here on 2 busy cores, so CI does not; set
# HARDMINE_DEFMT_PRINT=1 to install it.
set -euo pipefail
cd "$(dirname "$0")"
rustup -q target add thumbv7em-none-eabihf
rustup -q component add llvm-tools
if ! command -v qemu-system-arm >/dev/null; then
    (apt-get install -y -q qemu-system-arm >/dev/null 2>&1) || { apt-get update -q >/dev/null && apt-get install -y -q qemu-system-arm >/dev/null; }
fi
llvm_nm="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-nm"
if [ "${HARDMINE_DEFMT_PRINT:-0}" = 1 ] && ! command -v defmt-print >/dev/null; then
    cargo install defmt-print --locked
fi
cargo build --release --locked
elf=target/thumbv7em-none-eabihf/release/cortex-m-defmt
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The program exits through semihosting: QEMU's status is the program's (0: its checks held).
timeout 60 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" >"$log"
python3 check_log.py "$llvm_nm" "$elf" "$log"
if command -v defmt-print >/dev/null; then
    decoded=$(defmt-print -e "$elf" <"$log")
    printf '%s\n' "$decoded"
    grep -q 'hardmine on cortex-m4: ok' <<<"$decoded"
    grep -q 'a target of 2 is refused: InvalidTarget' <<<"$decoded"
    echo "defmt-print decoded the same log"
else
    echo "defmt-print not installed: decoded by check_log.py only"
fi
echo "cortex-m-defmt: built, ran under QEMU, defmt log checked, ok"
