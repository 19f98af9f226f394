#!/usr/bin/env bash
# Debian packages for a bay PC and for the central server, built with dpkg-deb from this
# checkout (no source needed on the target):
#
#   scripts/package.sh                      # release build -> target/debian/*.deb
#   scripts/package.sh --profile debug --out DIR [--no-build]   # the tests: binaries as built
#
# baylens-agent: /usr/bin/edge-agent, ONNX Runtime from the pinned PyPI wheel in
#   /usr/lib/baylens, the models, OCR models and calibration in /usr/share/baylens, the config
#   in /etc/baylens/agent.toml (token in /etc/baylens/agent.env), and a hardened systemd unit
#   (DynamicUser, ProtectSystem=strict, StateDirectory=baylens-agent).
# baylens-server: /usr/bin/baylens-server, its settings in /etc/baylens/server.env, and a
#   hardened systemd unit (StateDirectory=baylens-server).
# Runtime dependencies (OpenCV's libraries for the agent) come from what the binaries link.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile=release
out="$root/target/debian"
build=true
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-build) build=false; shift ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "package.sh: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed (Debian's dpkg)"
[ -f .ort/libonnxruntime.so ] || die "no ONNX Runtime in .ort/: run ./baylens setup first"
# Release packages get xz; debug ones (the tests') fast gzip.
case "$profile" in
  release) bin="target/release"; compress=(-Zxz) ;;
  debug) bin="target/debug"; compress=(-Zgzip -z1) ;;
  *) die "--profile is release or debug" ;;
esac
if $build; then
  if [ "$profile" = release ]; then
    cargo build --release --quiet -p edge-agent -p baylens-server --bins
  else
    cargo build --quiet --workspace --bins
  fi
fi
for b in edge-agent server; do [ -x "$bin/$b" ] || die "$bin/$b is not built"; done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Debian packages that provide the shared libraries a binary links itself (NEEDED; theirs
# bring their own dependencies), beyond libc.
depends_of() {
  local needed
  needed=$(objdump -p "$1" | awk '/NEEDED/ {print $2}')
  ldd "$1" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    grep -qxF "$name" <<<"$needed" || continue
    dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true
  done | cut -d: -f1 | sort -u | grep -v -E '^libc6$' | paste -sd, - | sed 's/,/, /g'
}

control() { # package, description, depends
  cat <<CONTROL
Package: $1
Version: $version
Architecture: $arch
Maintainer: BayLens <baylens@example.invalid>
Section: net
Priority: optional
Depends: libc6${3:+, $3}
Homepage: https://example.invalid/baylens
Description: $2
CONTROL
}

postinst() { # unit
  cat <<POSTINST
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
fi
echo "$1: edit /etc/baylens, then: systemctl enable --now $1"
POSTINST
}

# Hardening shared by both units.
hardening() {
  cat <<'UNIT'
DynamicUser=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
ProtectProc=invisible
ProcSubset=pid
RemoveIPC=yes
UMask=0077
Restart=on-failure
RestartSec=5
UNIT
}

# --- baylens-agent ----------------------------------------------------------------------------
a="$stage/agent"
install -Dm755 "$bin/edge-agent" "$a/usr/bin/edge-agent"
strip --strip-debug "$a/usr/bin/edge-agent"
install -Dm644 "$(readlink -f .ort/libonnxruntime.so)" "$a/usr/lib/baylens/libonnxruntime.so"
mkdir -p "$a/usr/share/baylens/models/ocr" "$a/usr/share/baylens/calibration" "$a/usr/share/baylens/ocr-small"
install -m644 models/onnx/*.onnx models/onnx/*.md models/onnx/*.sha256 "$a/usr/share/baylens/models/"
install -m644 models/onnx/ocr/* "$a/usr/share/baylens/models/ocr/"
install -m644 assets/calibration/*.toml "$a/usr/share/baylens/calibration/"
if [ -d .ocr ]; then
  find .ocr -maxdepth 1 -type f \( -name '*.onnx' -o -name '*.txt' -o -name '*.md' \) \
    -exec install -m644 {} "$a/usr/share/baylens/ocr-small/" \;
fi
sed -e 's|^drop_dir = .*|drop_dir = "/var/lib/baylens-agent/drop"|' \
    -e 's|^data_dir = .*|data_dir = "/var/lib/baylens-agent/data"|' \
    -e 's|^models_dir = .*|models_dir = "/usr/share/baylens/models"|' \
    -e 's|^calibration_file = .*|calibration_file = "/usr/share/baylens/calibration/scanner-sim.toml"|' \
    -e 's|^token_file = .*|# token_file: the token comes from BAYLENS_AGENT_TOKEN in /etc/baylens/agent.env|' \
    config/agent.example.toml | install -Dm644 /dev/stdin "$a/etc/baylens/agent.toml"
install -Dm600 /dev/stdin "$a/etc/baylens/agent.env" <<'ENV'
# Read by systemd (as root) before the agent starts as its own dynamic user.
# The token printed once by `baylens-server agent add --name … --bay …`:
BAYLENS_AGENT_TOKEN=
ENV
install -Dm644 /dev/stdin "$a/lib/systemd/system/baylens-agent.service" <<UNIT
[Unit]
Description=BayLens edge agent (inspection bay)
Documentation=file:///usr/share/doc/baylens-agent/README.md
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=/etc/baylens/agent.env
ExecStart=/usr/bin/edge-agent run --config /etc/baylens/agent.toml
StateDirectory=baylens-agent
StateDirectoryMode=0700
# USB and V4L2 cameras, and nothing else of /dev.
SupplementaryGroups=video
DevicePolicy=closed
DeviceAllow=char-video4linux rw
DeviceAllow=char-usb_device rw
$(hardening)

[Install]
WantedBy=multi-user.target
UNIT
install -Dm644 README.md "$a/usr/share/doc/baylens-agent/README.md"
mkdir -p "$a/DEBIAN"
control baylens-agent "BayLens edge agent for customs inspection bays
 Takes X-ray scans and camera frames at an inspection bay, runs the ONNX models, compares the
 load with its advance declaration and reports every scan to the BayLens server, working on
 through network outages." "$(depends_of "$bin/edge-agent")" >"$a/DEBIAN/control"
printf '/etc/baylens/agent.toml\n/etc/baylens/agent.env\n' >"$a/DEBIAN/conffiles"
postinst baylens-agent >"$a/DEBIAN/postinst"
chmod 755 "$a/DEBIAN/postinst"
dpkg-deb --root-owner-group "${compress[@]}" --build "$a" "$out/baylens-agent_${version}_${arch}.deb" >/dev/null

# --- baylens-server ---------------------------------------------------------------------------
s="$stage/server"
install -Dm755 "$bin/server" "$s/usr/bin/baylens-server"
strip --strip-debug "$s/usr/bin/baylens-server"
install -Dm600 /dev/stdin "$s/etc/baylens/server.env" <<'ENV'
# Settings of `baylens-server serve` (every flag has a BAYLENS_* variable; see --help).
BAYLENS_LISTEN=127.0.0.1:8080
BAYLENS_DATA_DIR=/var/lib/baylens-server
# BAYLENS_DATABASE_URL=postgres://baylens@db.customs.local/baylens
# BAYLENS_IMAGES_URL=s3://baylens/scans
# TLS: the unit hands these files to the server as credentials (see LoadCredential below).
# BAYLENS_TLS_CERT=/run/credentials/baylens-server.service/tls.pem
# BAYLENS_TLS_KEY=/run/credentials/baylens-server.service/tls.key
# BAYLENS_MQTT_HOST=10.0.5.2
ENV
install -Dm644 /dev/stdin "$s/lib/systemd/system/baylens-server.service" <<UNIT
[Unit]
Description=BayLens central server (cases, review, audit)
Documentation=file:///usr/share/doc/baylens-server/README.md
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
EnvironmentFile=/etc/baylens/server.env
ExecStart=/usr/bin/baylens-server serve
StateDirectory=baylens-server
StateDirectoryMode=0700
# The server needs no devices and no writable-executable memory.
PrivateDevices=yes
PrivateUsers=yes
MemoryDenyWriteExecute=yes
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
# With TLS, uncomment (the key stays root-only in /etc/baylens):
# LoadCredential=tls.pem:/etc/baylens/server.pem
# LoadCredential=tls.key:/etc/baylens/server.key
$(hardening)

[Install]
WantedBy=multi-user.target
UNIT
install -Dm644 README.md "$s/usr/share/doc/baylens-server/README.md"
mkdir -p "$s/DEBIAN"
control baylens-server "BayLens central server for customs inspection
 Takes advance declarations and reports from every inspection bay, ranks cases by risk and
 serves the supervisors' review queue, the audit trail and the release-time figures." \
  "$(depends_of "$bin/server")" >"$s/DEBIAN/control"
printf '/etc/baylens/server.env\n' >"$s/DEBIAN/conffiles"
postinst baylens-server >"$s/DEBIAN/postinst"
chmod 755 "$s/DEBIAN/postinst"
dpkg-deb --root-owner-group "${compress[@]}" --build "$s" "$out/baylens-server_${version}_${arch}.deb" >/dev/null

echo "package.sh: $(cd "$out" && ls baylens-*_"${version}"_"${arch}".deb | paste -sd' ' -) in $out"
