#!/bin/sh
# Copy one model from the in-country store into /models/$MODEL_NAME and prove it is the revision the
# stack names, before vLLM starts: SHA256SUMS is fetched first and checked against the revision
# (sha256:<digest of SHA256SUMS>, or a git commit written in the store's REVISION file), then every
# file it lists is fetched and checked. Anything that does not match stops the pod. A signed model's signature
# (MODEL_SIGNATURE, its location in the same store) is fetched to /models/$MODEL_NAME.sig, beside the folder and
# not in it, for the verify-model init container that runs next.
set -eu
models="${MODELS_DIR:-/models}"
dest="$models/$MODEL_NAME"
mkdir -p "$dest"
cd "$dest"

# fetch URL FILE: one object of the store to a local file
fetch() {
  case "$1" in
    s3://*)
      if [ -n "${S3_ENDPOINT:-}" ]; then
        aws s3 cp --only-show-errors --endpoint-url "$S3_ENDPOINT" "$1" "$2"
      else
        aws s3 cp --only-show-errors "$1" "$2"
      fi ;;
    https://*|http://*)
      curl -fsS --retry 5 --retry-delay 10 -o "$2" "$1" ;;
    *)
      echo "unsupported model store location: $1" >&2; exit 2 ;;
  esac
}

get() {
  fetch "$MODEL_SOURCE/$1" "$1"
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
if [ -n "${MODEL_SIGNATURE:-}" ]; then
  fetch "$MODEL_SIGNATURE" "$models/$MODEL_NAME.sig"
  echo "model $MODEL_NAME: signature fetched from $MODEL_SIGNATURE for verify-model"
fi
