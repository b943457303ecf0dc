#!/usr/bin/env bash
# Fetch a retrieval benchmark corpus: pages of the Python 3.11 standard-library
# reference, as Debian ships them (python3.11-doc), into a folder outside the repository.
# Nobody on this project wrote them; they are never committed.
# Usage: bash bench/fetch_corpus.sh [DEST] [SET]
#   SET pydocs (default, DEST /tmp/rag-bench-corpus): the 61 pages of golden_pydocs.jsonl
#   SET pydocs2 (DEST /tmp/rag-bench-corpus2): 38 other pages, for golden_pydocs2.jsonl
set -euo pipefail

set_name="${2:-pydocs}"
package="python3.11-doc"
pydocs=(
  argparse asyncio-api-index asyncio-dev asyncio-eventloop asyncio-exceptions
  asyncio-extending asyncio-future asyncio-llapi-index asyncio-platforms asyncio-policy
  asyncio-protocol asyncio-queue asyncio-runner asyncio-stream asyncio-subprocess
  asyncio-sync asyncio-task base64 bisect collections concurrent.futures configparser
  contextlib copy csv dataclasses datetime enum fnmatch functools glob gzip hashlib heapq
  itertools json logging os.path pathlib pprint queue random re sched secrets selectors
  shlex shutil signal sqlite3 statistics string subprocess tarfile tempfile textwrap
  threading time uuid zipfile zoneinfo
)
pydocs2=(
  abc array atexit bz2 calendar cmath contextvars copyreg dbm decimal filecmp fileinput
  fractions getopt graphlib hmac html.parser inspect io ipaddress lzma marshal math mimetypes
  numbers operator pickle shelve stat struct timeit tomllib traceback types urllib.parse
  warnings weakref zlib
)
case "$set_name" in
  pydocs) pages=("${pydocs[@]}"); dest="${1:-/tmp/rag-bench-corpus}" ;;
  pydocs2) pages=("${pydocs2[@]}"); dest="${1:-/tmp/rag-bench-corpus2}" ;;
  *) echo "unknown set $set_name (pydocs or pydocs2)" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$package" >/dev/null 2>&1) || {
  echo "apt-get download $package failed (is the Debian mirror reachable?)" >&2
  exit 1
}
dpkg-deb -x "$work"/"$package"_*.deb "$work/x"
html="$work/x/usr/share/doc/python3.11/html/library"
mkdir -p "$dest"
for page in "${pages[@]}"; do
  cp "$html/$page.html" "$dest/"
done
echo "$(ls "$dest" | wc -l) pages of $(dpkg-deb -f "$work"/"$package"_*.deb Package) \
$(dpkg-deb -f "$work"/"$package"_*.deb Version) in $dest"
