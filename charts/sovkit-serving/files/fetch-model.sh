#!/bin/sh
# Copy one model from the in-country store into /models/$MODEL_NAME and prove it is the revision the
# stack names, before vLLM starts: SHA256SUMS is fetched first and checked against the revision
# (sha256:<digest of SHA256SUMS>, or a git commit written in the store's REVISION file), then every
# file it lists is fetched and checked. Anything that does not match stops the pod.
set -eu
dest="${MODELS_DIR:-/models}/$MODEL_NAME"
mkdir -p "$dest"
cd "$dest"

get() {
  case "$MODEL_SOURCE" in
    s3://*)
      if [ -n "${S3_ENDPOINT:-}" ]; then
        aws s3 cp --only-show-errors --endpoint-url "$S3_ENDPOINT" "$MODEL_SOURCE/$1" "$1"
      else
        aws s3 cp --only-show-errors "$MODEL_SOURCE/$1" "$1"
      fi ;;
    https://*|http://*)
      curl -fsS --retry 5 --retry-delay 10 -o "$1" "$MODEL_SOURCE/$1" ;;
    *)
      echo "unsupported model source: $MODEL_SOURCE" >&2; exit 2 ;;
  esac
}

get SHA256SUMS
case "$MODEL_REVISION" in
  sha256:*)
    echo "${MODEL_REVISION#sha256:}  SHA256SUMS" | sha256sum -c - ;;
  *)
    get REVISION
    if [ "$(cat REVISION)" != "$MODEL_REVISION" ]; then
      echo "store holds revision $(cat REVISION), the stack names $MODEL_REVISION" >&2
      exit 1
    fi ;;
esac
while read -r _sum file; do
  case "$file" in
    */*) mkdir -p "${file%/*}" ;;
  esac
  get "$file"
done < SHA256SUMS
sha256sum -c SHA256SUMS
echo "model $MODEL_NAME at $MODEL_REVISION verified"
