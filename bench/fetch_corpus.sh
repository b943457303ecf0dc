#!/usr/bin/env bash
# Fetch the retrieval benchmark's corpus: 60 pages of the Python 3.11 standard-library
# reference, as Debian ships them (python3.11-doc), into a folder outside the repository.
# Nobody on this project wrote them; they are never committed.
# Usage: bash bench/fetch_corpus.sh [DEST]   (default: /tmp/rag-bench-corpus)
set -euo pipefail

dest="${1:-/tmp/rag-bench-corpus}"
package="python3.11-doc"
pages=(
  argparse asyncio-api-index asyncio-dev asyncio-eventloop asyncio-exceptions
  asyncio-extending asyncio-future asyncio-llapi-index asyncio-platforms asyncio-policy
  asyncio-protocol asyncio-queue asyncio-runner asyncio-stream asyncio-subprocess
  asyncio-sync asyncio-task base64 bisect collections concurrent.futures configparser
  contextlib copy csv dataclasses datetime enum fnmatch functools glob gzip hashlib heapq
  itertools json logging os.path pathlib pprint queue random re sched secrets selectors
  shlex shutil signal sqlite3 statistics string subprocess tarfile tempfile textwrap
  threading time uuid zipfile zoneinfo
)

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
