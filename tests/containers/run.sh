#!/usr/bin/env bash
# The container test (docs/containers.md): installs Debian's podman if the host allows, then runs
# tests/containers/run.py (which checks that podman works). Exits 77 (skipped) when the host cannot run it: not root, no apt, or podman
# unusable; any other non-zero exit is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() { echo "container test skipped: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root"
packages=(podman runc debootstrap podman-compose)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
    apt-get update -qq >/dev/null || skip "apt cannot reach its archive"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || skip "cannot install ${missing[*]}"
fi
exec python tests/containers/run.py "$@"
