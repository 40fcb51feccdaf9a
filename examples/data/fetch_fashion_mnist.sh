#!/usr/bin/env bash
# Fetches Fashion-MNIST into ${HYDRA_DATA_DIR:-<repo>/.data}/fashion-mnist from Debian's
# dataset-fashion-mnist package (four gzip-compressed IDX files, ~30 MB). Hydra reads the .gz
# files directly.
#
#   examples/data/fetch_fashion_mnist.sh            # fetch unless already present
#   HYDRA_DATA_DIR=/data examples/data/fetch_fashion_mnist.sh
#
# Idempotent: exits at once when all four files are present. Uses the installed package's files
# when /usr/share/datasets/fashion-mnist exists, else `apt-get download` (followed, only if that
# fails, by `apt-get update` and a second try, which needs root) and `dpkg-deb -x`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data_dir="${HYDRA_DATA_DIR:-$repo/.data}"
dest="$data_dir/fashion-mnist"
package=dataset-fashion-mnist
package_dir=usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() {
  echo "fetch_fashion_mnist: error: $*" >&2
  exit 1
}

have_all() {
  local f
  for f in "${files[@]}"; do
    [[ -s "$dest/$f.gz" || -s "$dest/$f" ]] || return 1
  done
}

if have_all; then
  echo "fetch_fashion_mnist: already present in $dest"
  exit 0
fi

# Copies the four .gz files from directory $1 into $dest; each lands atomically (copy to a
# temporary name, check the gzip stream, rename) so an interrupted run leaves no partial file.
install_from() {
  local src="$1" f
  for f in "${files[@]}"; do
    [[ -s "$src/$f.gz" ]] || die "$src/$f.gz missing from the $package package"
  done
  mkdir -p "$dest" || die "cannot create $dest"
  for f in "${files[@]}"; do
    [[ -s "$dest/$f.gz" ]] && continue
    cp "$src/$f.gz" "$dest/.$f.gz.part.$$" || die "cannot write $dest/.$f.gz.part.$$"
    if command -v gzip >/dev/null && ! gzip -t "$dest/.$f.gz.part.$$"; then
      rm -f "$dest/.$f.gz.part.$$"
      die "$src/$f.gz is not a valid gzip file"
    fi
    mv -f "$dest/.$f.gz.part.$$" "$dest/$f.gz" || die "cannot rename into $dest/$f.gz"
  done
  echo "fetch_fashion_mnist: installed ${files[*]} (.gz) into $dest"
}

if [[ -d "/$package_dir" ]] && [[ -s "/$package_dir/${files[0]}.gz" ]]; then
  echo "fetch_fashion_mnist: copying from the installed $package package (/$package_dir)"
  install_from "/$package_dir"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian or Ubuntu. \
Otherwise download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist \
(data/fashion) into $dest"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (install the dpkg package)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hydra-fashion-mnist.XXXXXX")" || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
# apt downloads as its unprivileged _apt user when run as root: let it write here.
if [[ "$(id -u)" -eq 0 ]] && id _apt >/dev/null 2>&1; then
  chown _apt "$tmp" 2>/dev/null || true
fi
cd "$tmp"

echo "fetch_fashion_mnist: downloading $package with apt-get"
if ! apt-get download -q "$package"; then
  echo "fetch_fashion_mnist: apt-get download failed; running apt-get update and retrying" >&2
  if [[ "$(id -u)" -ne 0 ]]; then
    die "apt-get download $package failed and apt-get update needs root: run 'sudo apt-get update' \
(or this script as root) and try again"
  fi
  apt-get update -q || die "apt-get update failed (no network or no Debian mirror reachable?)"
  apt-get download -q "$package" || die "apt-get download $package failed after apt-get update \
(is the package available? apt-cache policy $package)"
fi

shopt -s nullglob
debs=("$tmp"/"$package"_*.deb)
shopt -u nullglob
[[ ${#debs[@]} -eq 1 ]] || die "expected one ${package}_*.deb in $tmp after the download"
dpkg-deb -x "${debs[0]}" "$tmp/root" || die "dpkg-deb -x ${debs[0]} failed"
install_from "$tmp/root/$package_dir"
