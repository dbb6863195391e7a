#!/usr/bin/env bash
# Builds the CO-RE BPF object bpf/.output/gearbox.bpf.o against the running
# kernel's BTF, then regenerates the TypeScript layout from the object's BTF.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bpf/.output
mkdir -p "$out"
for tool in clang bpftool; do
  command -v "$tool" >/dev/null || { echo "build-bpf: '$tool' not found; install: apt-get install clang llvm libbpf-dev bpftool" >&2; exit 1; }
done
[ -r /sys/kernel/btf/vmlinux ] || { echo "build-bpf: /sys/kernel/btf/vmlinux missing: the kernel has no BTF" >&2; exit 1; }
if [ ! -s "$out/vmlinux.h" ] || [ /sys/kernel/btf/vmlinux -nt "$out/vmlinux.h" ]; then
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi
arch=$(uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/')
objs=()
for src in bpf/*.bpf.c; do
  obj="$out/$(basename "${src%.c}").o"
  clang -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_"$arch" -I"$out" -Ibpf -c "$src" -o "$obj"
  objs+=("$obj")
done
bpftool gen object "$out/gearbox.bpf.o" "${objs[@]}"
node scripts/gen-layout.js "$out/gearbox.bpf.o" src/events/layout.generated.ts
