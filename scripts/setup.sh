#!/usr/bin/env bash
# Installs what smpl's tests and demo use from Debian: real drum kits (hydrogen-data,
# and hydrogen-drumkits for the similar-sounds test over eleven kits),
# the reference tools the audio tests compare against (sox, ffmpeg), and the
# browser the web app's end-to-end tests drive (chromium through chromium-driver,
# WebDriver; nothing is downloaded at test time), and the tools the NAT lab test
# builds its network namespaces with (iproute2, nftables).
# Safe to run again: installs only what is missing.
set -euo pipefail

packages=(hydrogen-data hydrogen-drumkits sox libsox-fmt-all ffmpeg strace chromium chromium-driver nftables iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
