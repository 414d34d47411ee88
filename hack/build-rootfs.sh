#!/usr/bin/env bash
# Build (once) the Debian bookworm root filesystem that the playbook's real-run test converges.
#
# It stands in for a fresh Hetzner Debian 12 server: minbase plus what a cloud image ships
# (openssh-server, python3, sudo, systemd tools, CA certificates). tests/ansible starts a
# throwaway sshd *inside* it (chroot + private mount namespace + overlayfs, so the cache is
# never modified) and runs ansible/site.yml over real SSH. The result is cached outside git:
#   ${AURA_ROOTFS_DIR:-$HOME/.cache/aura/rootfs/bookworm}
# and rebuilt only when ROOTFS_VERSION below changes. Needs root and debootstrap.
# Usage: hack/build-rootfs.sh [--print-dir]
set -euo pipefail

ROOTFS_VERSION=1
DEST="${AURA_ROOTFS_DIR:-$HOME/.cache/aura/rootfs/bookworm}"
MIRROR="${AURA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STAMP="$DEST/.aura-rootfs-version"

if [[ "${1:-}" == "--print-dir" ]]; then echo "$DEST"; exit 0; fi
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$ROOTFS_VERSION" ]]; then
  echo "build-rootfs: up to date: $DEST" >&2
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "build-rootfs: must run as root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-rootfs: debootstrap is missing (hack/apt-packages.txt)" >&2; exit 1; }

start=$(date +%s)
TMP="$DEST.tmp.$$"
rm -rf "$TMP"
mkdir -p "$(dirname "$DEST")"
trap 'rm -rf "$TMP"' EXIT

debootstrap --variant=minbase \
  --include=openssh-server,python3,python3-apt,sudo,systemd,dbus,ca-certificates,curl,gnupg,iproute2 \
  bookworm "$TMP" "$MIRROR" >"$TMP.log" 2>&1 || { tail -30 "$TMP.log" >&2; rm -f "$TMP.log"; exit 1; }
rm -f "$TMP.log"

# Same apt sources as a Debian 12 cloud image.
cat >"$TMP/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
cp /etc/resolv.conf "$TMP/etc/resolv.conf"
# A chroot must never start services: package maintainer scripts would otherwise launch
# daemons (sshd, nftables) that share this machine's network namespace.
printf '#!/bin/sh\nexit 101\n' >"$TMP/usr/sbin/policy-rc.d"
chmod 0755 "$TMP/usr/sbin/policy-rc.d"
# Host keys are per test run; keep none from the build.
rm -f "$TMP"/etc/ssh/ssh_host_*

# Pre-download (not install) what the playbook installs in the test, so a converge run only
# unpacks packages instead of fetching ~30 MB each time. The playbook still runs apt for real.
chroot "$TMP" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only nodejs npm unattended-upgrades nftables acl >/dev/null'

echo "$ROOTFS_VERSION" >"$TMP/.aura-rootfs-version"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
echo "build-rootfs: built $DEST in $(( $(date +%s) - start ))s" >&2
