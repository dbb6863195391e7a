#!/usr/bin/env bash
# npm run lint: ESLint and Prettier for the TypeScript and JavaScript,
# clang-format for the BPF C. .ci/run runs it before anything is built.
set -euo pipefail
cd "$(dirname "$0")/.."
npx eslint .
npx prettier --check .
command -v clang-format >/dev/null || { echo "lint: clang-format not found; install: apt-get install clang-format" >&2; exit 1; }
find bpf test/bpf bench -maxdepth 1 \( -name '*.c' -o -name '*.h' \) -print0 | xargs -0 clang-format --dry-run --Werror
echo "lint: clean"
