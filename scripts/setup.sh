#!/usr/bin/env bash
# Installs what Gearbox needs on a fresh Debian machine (run as root) and
# mounts bpffs and tracefs if they are missing. Safe to run again.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages and mounts bpffs/tracefs)" >&2
  exit 1
fi
pkgs=(clang clang-format llvm libbpf-dev libbpf1 bpftool iproute2 redis-server nginx-light python3 wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing
echo "setup.sh: ready (clang $(clang -dumpversion), $(bpftool version | head -1))"
