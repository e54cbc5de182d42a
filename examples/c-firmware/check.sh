#!/usr/bin/env bash
# C integration check (called by firmware/check.sh): the header (cbindgen, no drift, C11
# conventions), the host C test, the no_std staticlib for thumbv7em-none-eabihf,
# thumbv7em-none-eabi and thumbv8m.main-none-eabihf and what it exports, then the C firmware
# built with arm-none-eabi-gcc + newlib-nano (hard and soft float), linked with --gc-sections
# against an undefined panic symbol (panic-freedom), run under QEMU mps2-an386 with golden checks,
# every header function called, stack per function (painted), flash and RAM.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ex=examples/c-firmware
say() { printf '%s\n' "$*"; }

targets=(thumbv7em-none-eabihf thumbv7em-none-eabi thumbv8m.main-none-eabihf)
rustup -q target add "${targets[@]}"
need=()
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/libc_nano.a ] || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    (apt-get install -y -q "${need[@]}" >/dev/null 2>&1) || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi
command -v cbindgen >/dev/null || cargo install cbindgen --locked

say "-- header: cbindgen drift, C11 conventions"
cbindgen --quiet --config ffi/cbindgen.toml --crate hardmine-ffi --output "$work/hardmine.h" ffi
if ! diff -q "$work/hardmine.h" ffi/hardmine.h >/dev/null; then
    say "ffi/hardmine.h is out of date: regenerate it with"
    say "  cbindgen --config ffi/cbindgen.toml --crate hardmine-ffi --output ffi/hardmine.h ffi"
    diff "$work/hardmine.h" ffi/hardmine.h | head -20
    exit 1
fi
for cc in gcc arm-none-eabi-gcc; do
    "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I ffi "$ex/header_check.c"
done
g++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only -x c++ -I ffi ffi/hardmine.h
python3 tools/golden_to_c.py >"$work/golden_cases.h"

say "-- host C test (gcc, the std host build)"
cargo build --release --locked -q -p hardmine-ffi
gcc -std=c11 -O2 -Wall -Wextra -Werror -I ffi -I "$work" -I "$ex" ffi/tests/c/test.c "$ex/suite.c" \
    target/release/libhardmine_ffi.a -lm -lpthread -ldl -o "$work/c_test"
"$work/c_test" >"$work/c_test.out" || { grep -E 'FAIL' "$work/c_test.out" | head -20; exit 1; }
tail -n 1 "$work/c_test.out"

say "-- no_std staticlib: ${targets[*]}"
for t in "${targets[@]}"; do
    cargo build --release --locked -q -p hardmine-ffi --target "$t"
done
lib=target/thumbv7em-none-eabihf/release/libhardmine_ffi.a
# What the library defines globally besides hm_*: Rust-mangled symbols (core, the library),
# compiler-builtins' integer and float helpers, and the panic entry; never a libc name.
arm-none-eabi-nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$work/exports"
libc='^(mem(cpy|set|move|cmp|chr)|str[a-z]*|malloc|free|calloc|realloc|abort|exit|printf|puts|__aeabi_mem.*|sqrtf?|fmaxf?|fminf?|expf?|logf?)$'
if grep -E "$libc" "$work/exports"; then
    say "the staticlib defines a libc symbol (above): it would clash with newlib"
    exit 1
fi
hm=$(grep -c '^hm_' "$work/exports" || true)
if [ "$hm" -eq 0 ]; then
    say "the staticlib exports no hm_* function (or nm could not read it)"
    exit 1
fi
mangled=$(grep -cE '^(_ZN|_R)' "$work/exports" || true)
local_anon=$(grep -c '^anon\.' "$work/exports" || true)
builtins=$(grep -vE '^(hm_|_ZN|_R|anon\.)' "$work/exports" | tr '\n' ' ')
say "exports: $hm hm_* functions, $mangled Rust-mangled, $local_anon anon.* constants, compiler-builtins: $builtins"

say "-- C firmware (arm-none-eabi-gcc, newlib-nano, --gc-sections, undefined panic symbol)"
for float in hard soft; do
    if ! make -s -C "$ex" FLOAT="$float" OUT="$work/build-$float" GOLDEN="$work" >"$work/make-$float.log" 2>&1; then
        grep -E "undefined reference|multiple definition|error" "$work/make-$float.log" | head -10
        say "C firmware ($float float) failed to link; an undefined hardmine_panic_path_is_reachable means a reachable panic"
        exit 1
    fi
    if grep -q "multiple definition" "$work/make-$float.log"; then
        say "symbol clash with newlib"; exit 1
    fi
done
# Cortex-M33 (thumbv8m.main-none-eabihf): the same sources link against that library.
arm-none-eabi-gcc -mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16 -std=c11 -O2 -Wall -Wextra -Werror \
    -ffunction-sections -fdata-sections -I ffi -I "$work" -I "$ex" "$ex/startup.c" "$ex/main.c" "$ex/suite.c" \
    -T "$ex/link.ld" -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -Wl,--no-warn-rwx-segments \
    target/thumbv8m.main-none-eabihf/release/libhardmine_ffi.a -lm -o "$work/firmware-m33.elf" 2>"$work/m33.log" \
    || { grep -E "undefined|error" "$work/m33.log" | head; say "Cortex-M33 link failed"; exit 1; }

say "-- QEMU (mps2-an386, Cortex-M4): hard and soft float"
for float in hard soft; do
    timeout 120 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
        -semihosting-config enable=on,target=native -kernel "$work/build-$float/firmware.elf" >"$work/qemu-$float.out" 2>&1 \
        || { grep FAIL "$work/qemu-$float.out" | head -20; say "C firmware ($float) failed under QEMU"; exit 1; }
    grep -q '^done true$' "$work/qemu-$float.out"
    say "$float float: $(grep '^suite:' "$work/qemu-$float.out")"
done

say "-- every function of hardmine.h called (from the firmware's own stack report)"
grep -oE '^[A-Za-z_][A-Za-z0-9_ *]* \*?(hm_[a-z0-9_]+)\(' ffi/hardmine.h | grep -oE 'hm_[a-z0-9_]+' | sort -u >"$work/declared"
sed -n 's/^stack \(hm_[a-z0-9_]*\) [0-9]*$/\1/p' "$work/qemu-hard.out" | sort -u >"$work/called"
if ! diff "$work/declared" "$work/called" >"$work/uncalled"; then
    say "functions of hardmine.h the firmware does not call (<) or unknown (>):"
    cat "$work/uncalled"
    exit 1
fi
say "$(wc -l <"$work/declared") functions declared, all called"

say "-- worst-case stack per function (bytes, Cortex-M4F hard float / soft float; painted)"
join <(sed -n 's/^stack //p' "$work/qemu-hard.out" | sort) <(sed -n 's/^stack //p' "$work/qemu-soft.out" | sort) \
    | awk '{ printf "  %-32s %6d %6d\n", $1, $2, $3 }'

# Each function's header documentation states its bound ("Stack: at most N bytes"); fail above it.
python3 - ffi/hardmine.h "$work/qemu-hard.out" "$work/qemu-soft.out" <<'PY'
import re, sys
bound, pending = {}, None
for line in open(sys.argv[1]):
    m = re.search(r"Stack: at most (\d+) bytes", line)
    if m:
        pending = int(m.group(1))
    m = re.search(r"\b(hm_[a-z0-9_]+)\(", line)
    if m and pending is not None and not line.lstrip().startswith("*"):
        bound[m.group(1)], pending = pending, None
bad = []
for out in sys.argv[2:]:
    for line in open(out):
        if line.startswith("stack "):
            _, name, used = line.split()
            if name not in bound or int(used) > bound[name]:
                bad.append(f"{name}: {used} B measured, header bound {bound.get(name)}")
if bad:
    sys.exit("stack above the documented bound:\n  " + "\n  ".join(bad))
print(f"every function within its documented stack bound ({len(bound)} bounds)")
PY

size_of() { # flash = .vectors + .text + .rodata + .ARM.exidx + .data; ram = .data + .bss (+ the 64 KiB stack)
    arm-none-eabi-size -A "$1" | awk '
        $1 ~ /^\.(vectors|text|rodata|ARM\.exidx|data)$/ { flash += $2 }
        $1 ~ /^\.(data|bss)$/ { ram += $2 }
        END { print flash, ram }'
}
lib_part() { # bytes the library's objects contribute to flash (from the link map)
    python3 - "$1" <<'PY'
import re, sys
total, inside, pending = 0, False, False
for line in open(sys.argv[1]):
    if re.match(r"^\.[A-Za-z]", line):
        inside = bool(re.match(r"^\.(text|rodata|data|ARM\.exidx)\b", line))
    if not inside:
        continue
    m = re.match(r"^\s+(?:\.\S+)?\s*0x[0-9a-f]+\s+0x([0-9a-f]+)\s+\S*libhardmine_ffi\.a\(", line)
    if m:
        total += int(m.group(1), 16)
print(total)
PY
}
read -r flash ram < <(size_of "$work/build-hard/firmware.elf")
libflash=$(lib_part "$work/build-hard/firmware.map")
say "c-firmware ok: flash $flash B (library $libflash B, golden data and suite the rest), ram $ram B + 64 KiB stack, hard and soft float, Cortex-M33 links, panic-free link, $(tail -n 1 "$work/c_test.out")"
