#!/usr/bin/env bash
# Through a real `kiln server` and curl: a multipart upload (4 parts, PUT to the URLs the server
# hands out, completed with their ETags); a 200 MB artifact downloaded byte-identical while the
# server's peak RSS stays far below the file's size (the download is streamed); and downloads
# cut off half way leave the server serving, with no thread or file descriptor left behind.
# (The 200 MB file is placed in the artifact root directly: uploading it would spend the time
# limit on fsyncs, and the upload path is the same as the multipart check's.)
#
#   usage: tests/stream/big_download.sh BUILD_DIR        prints "N passed, M failed"
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
kiln="$build/bin/kiln"
size_mb=${KILN_STREAM_TEST_MB:-200}
upload_mb=${KILN_STREAM_UPLOAD_MB:-24}
max_rss_mb=${KILN_STREAM_MAX_RSS_MB:-64}
# In memory when /dev/shm is there: the test is about the server's memory, not the disk's speed.
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
server_pid=
passed=0
failed=0
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

check() {  # check DESCRIPTION COMMAND...
  if "${@:2}"; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}

start_server() {
  (cd "$work/project" && exec "$kiln" server --port 0 --threads 4 >"$work/server.log" 2>&1) &
  server_pid=$!
  for _ in $(seq 100); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1)
    [ -n "$url" ] && return 0
    sleep 0.05
  done
  echo "kiln server did not start:" >&2; cat "$work/server.log" >&2; return 1
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=; }
status_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
# The string values of a JSON field in a compact reply, in order (kiln writes no spaces).
field() { grep -oE "\"$1\":\"[^\"]*\"" | sed -E "s/^\"$1\":\"(.*)\"$/\\1/"; }

mkdir -p "$work/project"
(cd "$work/project" && "$kiln" init >/dev/null) || { echo "kiln init failed"; exit 1; }
# Random bytes, but cheap: a 1,000,003-byte random block repeated (a prime, so that misordered
# or repeated 1 MiB pieces cannot go unnoticed).
head -c 1000003 /dev/urandom >"$work/block.bin"
for _ in $(seq $((size_mb * 1048576 / 1000003 + 1))); do cat "$work/block.bin"; done |
  head -c "${size_mb}M" >"$work/big.bin"
head -c "${upload_mb}M" "$work/big.bin" >"$work/upload.bin"
start_server || exit 1
api="$url/api/2.0/mlflow-artifacts"

# Upload: create, PUT each part to the URL the server handed out, complete with the etags.
split -b $(( (upload_mb + 3) / 4 ))M -d -a 1 "$work/upload.bin" "$work/part-"
parts=$(ls "$work"/part-* | wc -l)
created=$(curl -sf -X POST "$api/mpu/create/0/run1/artifacts" -H 'Content-Type: application/json' \
  -d "{\"path\": \"/home/me/upload.bin\", \"num_parts\": $parts}")
upload_id=$(field upload_id <<<"$created")
mapfile -t part_urls < <(field url <<<"$created")
parts_json=
for i in $(seq 0 $((parts - 1))); do
  etag=$(curl -sf -X PUT --data-binary "@$work/part-$i" -D - -o /dev/null "${part_urls[$i]}" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }')
  # The etag as received (quoted, as S3 sends it), JSON-escaped.
  parts_json+="${parts_json:+,}{\"part_number\": $((i + 1)), \"etag\": \"${etag//\"/\\\"}\"}"
done
parts_json="[$parts_json]"
check "multipart upload completes" \
  curl -sf -X POST "$api/mpu/complete/0/run1/artifacts" -H 'Content-Type: application/json' \
  -d "{\"path\": \"upload.bin\", \"upload_id\": \"$upload_id\", \"parts\": $parts_json}" -o /dev/null
curl -sf "$api/artifacts/0/run1/artifacts/upload.bin" -o "$work/upload.down"
check "the uploaded artifact is byte-identical" cmp -s "$work/upload.bin" "$work/upload.down"
stop_server
mv "$work/big.bin" "$work/project/.kiln/artifacts/0/run1/artifacts/big.bin"

# Download from a fresh server, so that its peak RSS is the download's.
start_server || exit 1
api="$url/api/2.0/mlflow-artifacts"
start=$(date +%s%N)
curl -sf "$api/artifacts/0/run1/artifacts/big.bin" -o "$work/down.bin"
millis=$(( ($(date +%s%N) - start) / 1000000 ))
check "the ${size_mb} MB download is byte-identical" \
  cmp -s "$work/project/.kiln/artifacts/0/run1/artifacts/big.bin" "$work/down.bin"
peak_mb=$(( $(status_kb "$server_pid" VmHWM) / 1024 ))
echo "     download: ${size_mb} MB in ${millis} ms; server peak RSS ${peak_mb} MB (limit ${max_rss_mb} MB)"
check "the server's peak RSS stays under ${max_rss_mb} MB" test "$peak_mb" -lt "$max_rss_mb"

# Clients that go away mid-download.
threads_before=$(status_kb "$server_pid" Threads)
fds_before=$(ls "/proc/$server_pid/fd" | wc -l)
for _ in 1 2 3; do
  curl -s "$api/artifacts/0/run1/artifacts/big.bin" | head -c 5000000 >/dev/null
done
sleep 0.5
check "the server serves on after cut downloads" curl -sf "$url/health" -o /dev/null
check "no producer thread is left behind" test "$(status_kb "$server_pid" Threads)" -le "$threads_before"
check "no file descriptor is left behind" test "$(ls "/proc/$server_pid/fd" | wc -l)" -le "$fds_before"
stop_server

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
