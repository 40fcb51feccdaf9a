#!/usr/bin/env bash
# Fetches the King James Bible as plain text into ${HYDRA_DATA_DIR:-<repo>/.data}/bible/kjv.txt
# (about 4.3 MB of ASCII), a corpus for character-level language models.
#
#   examples/data/fetch_bible.sh            # fetch unless already present
#   HYDRA_DATA_DIR=/data examples/data/fetch_bible.sh
#
# Source: Debian's bible-kjv-text package ships the text only in the compressed, indexed format
# of the Bible Retrieval System (/usr/lib/bible.data, "EC02Compressed Data File", plus a
# concordance), which nothing but that system's `bible` program (package bible-kjv) reads. So
# the script takes both packages (the installed files when present, else `apt-get download` and
# `dpkg-deb -x` into a temporary directory; nothing is installed) and runs the extracted
# `bible` with its data path pointing at the extracted data to print Genesis 1:1 through
# Revelation 22:21 in its pretty-printed form: book and chapter headings, numbered verses,
# lines wrapped at 79 columns. The result is checked (31102 verses, first and last verse)
# before it is moved into place. Idempotent: exits at once when kjv.txt is present.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data_dir="${HYDRA_DATA_DIR:-$repo/.data}"
dest_dir="$data_dir/bible"
dest="$dest_dir/kjv.txt"
min_bytes=4000000
verses=31102

die() {
  echo "fetch_bible: error: $*" >&2
  exit 1
}

file_size() { wc -c <"$1" | tr -d ' '; }

if [[ -s "$dest" ]] && (($(file_size "$dest") >= min_bytes)); then
  echo "fetch_bible: already present: $dest"
  exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hydra-bible.XXXXXX")" || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

# Downloads the packages named in "$@" into $tmp and extracts each into $tmp/root.
download_and_extract() {
  command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian or Ubuntu \
(packages bible-kjv and bible-kjv-text)"
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found (install the dpkg package)"
  # apt downloads as its unprivileged _apt user when run as root: let it write here.
  if [[ "$(id -u)" -eq 0 ]] && id _apt >/dev/null 2>&1; then
    chown _apt "$tmp" 2>/dev/null || true
  fi
  echo "fetch_bible: downloading $* with apt-get"
  if ! (cd "$tmp" && apt-get download -q "$@"); then
    echo "fetch_bible: apt-get download failed; running apt-get update and retrying" >&2
    if [[ "$(id -u)" -ne 0 ]]; then
      die "apt-get download $* failed and apt-get update needs root: run 'sudo apt-get update' \
(or this script as root) and try again"
    fi
    apt-get update -q || die "apt-get update failed (no network or no Debian mirror reachable?)"
    (cd "$tmp" && apt-get download -q "$@") || die "apt-get download $* failed after apt-get \
update (are the packages available? apt-cache policy $*)"
  fi
  local p debs
  for p in "$@"; do
    shopt -s nullglob
    debs=("$tmp"/"$p"_*.deb)
    shopt -u nullglob
    [[ ${#debs[@]} -eq 1 ]] || die "expected one ${p}_*.deb in $tmp after the download"
    dpkg-deb -x "${debs[0]}" "$tmp/root" || die "dpkg-deb -x ${debs[0]} failed"
  done
}

if [[ -x /usr/bin/bible && -s /usr/lib/bible.data ]]; then
  echo "fetch_bible: using the installed bible-kjv and bible-kjv-text packages"
  bible=/usr/bin/bible
  bible_data_dir=/usr/lib
else
  download_and_extract bible-kjv bible-kjv-text
  bible="$tmp/root/usr/bin/bible"
  bible_data_dir="$tmp/root/usr/lib"
  [[ -x "$bible" ]] || die "the bible-kjv package holds no usr/bin/bible"
  [[ -s "$bible_data_dir/bible.data" ]] || die "the bible-kjv-text package holds no \
usr/lib/bible.data"
  # The program links against libreadline (and libtinfo); fetch them too when not installed.
  if command -v ldd >/dev/null && ldd "$bible" 2>/dev/null | grep -q "not found"; then
    echo "fetch_bible: $(ldd "$bible" | grep "not found" | awk '{print $1}' | tr '\n' ' ')missing; \
fetching libreadline8 and libtinfo6"
    download_and_extract libreadline8 libtinfo6
    libdirs="$(find "$tmp/root" -name 'lib*.so*' -printf '%h\n' | sort -u | tr '\n' ':')"
    export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:-}"
  fi
fi

# Pretty-printed (the default), wrapped at 79 columns whatever $COLUMNS says; -p is the list of
# directories searched for bible.data and bible.data.conc.
mkdir -p "$dest_dir" || die "cannot create $dest_dir"
part="$dest_dir/.kjv.txt.part.$$"
if ! "$bible" -l 79 -p "$bible_data_dir" Gen1:1-Rev22:21 </dev/null >"$part" 2>"$tmp/bible.err"; then
  rm -f "$part"
  die "running $bible failed: $(cat "$tmp/bible.err")"
fi

check() {
  rm -f "$part"
  die "the text printed by $bible looks wrong: $*"
}
size="$(file_size "$part")"
((size >= min_bytes)) || check "$size bytes, expected at least $min_bytes"
count="$(grep -cE '^ +[0-9]+ ' "$part" || true)"
[[ "$count" == "$verses" ]] || check "$count verses, expected $verses"
grep -q '^  1 In the beginning God created the heaven and the earth\.$' "$part" ||
  check "Genesis 1:1 missing"
[[ "$(tail -n 1 "$part")" == "  21 The grace of our Lord Jesus Christ be with you all. Amen." ]] ||
  check "does not end with Revelation 22:21"
mv -f "$part" "$dest" || die "cannot rename into $dest"
echo "fetch_bible: wrote $dest ($size bytes, $count verses)"
