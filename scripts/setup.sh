#!/usr/bin/env bash
# Installs what smpl's tests and demo use from Debian: real drum kits (hydrogen-data,
# and hydrogen-drumkits for the similar-sounds test over eleven kits),
# the reference tools the audio tests compare against (sox, ffmpeg), the
# browsers the web app's end-to-end tests drive through WebDriver (chromium with
# chromium-driver, and firefox-esr with geckodriver, which Debian does not
# package and cargo builds from crates.io; nothing is downloaded at test time),
# and the tools the NAT lab test builds its network namespaces with (iproute2,
# nftables).
# Safe to run again: installs only what is missing.
set -euo pipefail

packages=(hydrogen-data hydrogen-drumkits sox libsox-fmt-all ffmpeg strace chromium chromium-driver firefox-esr nftables iproute2)
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

if ! command -v geckodriver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/geckodriver" ]; then
  cargo install --locked --quiet geckodriver@0.37.1
fi
