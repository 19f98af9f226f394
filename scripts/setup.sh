#!/usr/bin/env bash
# Installs BayLens's native dependencies. Idempotent: when everything is in place it prints nothing.
# With --test it also installs what only the tests need (see the end of this file).
#  - Debian packages: pkg-config, clang, libclang-dev, libopencv-dev (camera side, OpenCV videoio/calib3d)
#  - ONNX Runtime: the shared library from the PyPI wheel onnxruntime==1.31.1, pinned by sha256,
#    unpacked into .ort/ (ignored by git). Nothing is fetched from any host other than the registries.
#  - OCR: PP-OCRv6 detector and recogniser from the PyPI wheel rapidocr==3.10.0, pinned by sha256,
#    unpacked into .ocr/ (ignored by git).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "setup: $*" >&2; exit 1; }

with_test=false
[ "${1:-}" = "--test" ] && with_test=true

# --- Debian packages -------------------------------------------------------------------------
apt_packages=(pkg-config clang libclang-dev libopencv-dev)
# Tests: Debian's Chromium for the browser tests, Mosquitto for the MQTT test.
$with_test && apt_packages+=(chromium mosquitto)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]} (first time only; this takes a few minutes)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root or sudo to install ${missing[*]}; install them with apt-get and rerun"
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  $sudo apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed; is the Debian mirror reachable?"; }
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
    || { cat "$log" >&2; die "apt-get install ${missing[*]} failed"; }
  rm -f "$log"
fi

# --- ONNX Runtime from the PyPI wheel ----------------------------------------------------------
ort_version=1.31.1
ort_wheel="onnxruntime-${ort_version}-cp311-cp311-manylinux_2_28_x86_64.whl"
ort_sha256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
ort_dir="$root/.ort"
stamp="$ort_dir/.installed-$ort_sha256"
if [ ! -f "$stamp" ] || [ ! -e "$ort_dir/libonnxruntime.so" ]; then
  [ "$(uname -m)" = x86_64 ] || die "the pinned ONNX Runtime wheel is for x86_64 Linux; this is $(uname -m)"
  command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch the ONNX Runtime wheel"
  echo "setup: fetching ONNX Runtime ${ort_version} from PyPI (wheel ${ort_wheel})"
  mkdir -p "$ort_dir/wheel"
  if [ ! -f "$ort_dir/wheel/$ort_wheel" ]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 "onnxruntime==${ort_version}" -d "$ort_dir/wheel" \
      || die "pip download onnxruntime==${ort_version} failed; is PyPI reachable?"
  fi
  got=$(sha256sum "$ort_dir/wheel/$ort_wheel" | cut -d' ' -f1)
  if [ "$got" != "$ort_sha256" ]; then
    rm -f "$ort_dir/wheel/$ort_wheel"
    die "sha256 mismatch for $ort_wheel: expected $ort_sha256, got $got"
  fi
  python3 - "$ort_dir/wheel/$ort_wheel" "$ort_dir" "$ort_version" <<'PY'
import sys, zipfile, os
wheel, dest, version = sys.argv[1], sys.argv[2], sys.argv[3]
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as z:
    data = z.read(name)
tmp = os.path.join(dest, f".libonnxruntime.so.{version}.tmp")
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, os.path.join(dest, f"libonnxruntime.so.{version}"))
PY
  ln -sfn "libonnxruntime.so.${ort_version}" "$ort_dir/libonnxruntime.so"
  rm -f "$ort_dir"/.installed-*
  touch "$stamp"
fi

# --- Container-code OCR models from the PyPI wheel rapidocr (PP-OCRv6, Apache-2.0) -------------
# The wheel is pinned by sha256; only the detector and recogniser are unpacked, into .ocr/ (ignored
# by git). models/src/ocr/mod.rs checks each file's sha256 again before loading it.
ocr_version=3.10.0
ocr_wheel="rapidocr-${ocr_version}-py3-none-any.whl"
ocr_sha256=2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050
ocr_dir="$root/.ocr"
ocr_stamp="$ocr_dir/.installed-$ocr_sha256"
if [ ! -f "$ocr_stamp" ]; then
  command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch the OCR models"
  echo "setup: fetching the PP-OCRv6 OCR models from PyPI (wheel ${ocr_wheel})"
  mkdir -p "$ocr_dir/wheel"
  if [ ! -f "$ocr_dir/wheel/$ocr_wheel" ]; then
    python3 -m pip download -q --no-deps --only-binary=:all: "rapidocr==${ocr_version}" -d "$ocr_dir/wheel" \
      || die "pip download rapidocr==${ocr_version} failed; is PyPI reachable?"
  fi
  got=$(sha256sum "$ocr_dir/wheel/$ocr_wheel" | cut -d' ' -f1)
  if [ "$got" != "$ocr_sha256" ]; then
    rm -f "$ocr_dir/wheel/$ocr_wheel"
    die "sha256 mismatch for $ocr_wheel: expected $ocr_sha256, got $got"
  fi
  python3 - "$ocr_dir/wheel/$ocr_wheel" "$ocr_dir" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx"):
        data = z.read(f"rapidocr/models/{name}")
        tmp = os.path.join(dest, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(dest, name))
PY
  rm -f "$ocr_dir/wheel/$ocr_wheel" "$ocr_dir"/.installed-*
  touch "$ocr_stamp"
fi

$with_test || exit 0

# --- Test-only tools ---------------------------------------------------------------------------
# playwright-core (npm, pinned by tests/browser/package-lock.json) drives Debian's Chromium.
if [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  command -v npm >/dev/null || die "npm is needed for the browser tests (apt-get install npm)"
  echo "setup: installing playwright-core for the browser tests (npm ci)"
  (cd tests/browser && npm ci --silent --no-audit --no-fund) || die "npm ci in tests/browser failed"
fi
# openapi-spec-validator (PyPI, pinned in scripts/test-requirements.txt) checks the OpenAPI document.
tools="$root/.tools/venv"
req="$root/scripts/test-requirements.txt"
req_stamp="$tools/.installed-$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$req_stamp" ]; then
  echo "setup: installing Python test tools from scripts/test-requirements.txt"
  python3 -m venv "$tools" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$tools/bin/pip" install -q --disable-pip-version-check -r "$req" || die "pip install -r $req failed"
  rm -f "$tools"/.installed-*
  touch "$req_stamp"
fi
# The MQTT test publishes to a real broker on 127.0.0.1:1883: start Debian's Mosquitto there
# unless a broker already listens (with no config file it listens on loopback only).
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "setup: starting Mosquitto on 127.0.0.1:1883 for the MQTT test"
  mosquitto -d -p 1883 || die "could not start mosquitto on 127.0.0.1:1883"
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
fi
