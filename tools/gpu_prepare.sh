#!/usr/bin/env bash
# Fill .gpu/ (ignored by git) with what tools/gpu_check.sh needs on the lent GPU machine, which has no
# network: the versions of transformers, peft and datasets (and datasets' own needs) that the CPU runs
# are tested with, as wheels (its image lacks datasets and holds an older transformers); the Davidson
# CSV; bert-base-uncased's tokenizer and config (the model is built there with random weights: the
# pretrained MPNet, 438 MB, does not fit one call's 64 MiB).
#
#   usage: bash tools/gpu_prepare.sh [SHARED]   (default: ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
pins=$( (grep -E '^(transformers|peft|datasets)==' requirements.txt
         python3 -m pip freeze | grep -E '^(dill|multiprocess|fsspec)==') | tr '\n' ' ')
rm -rf .gpu && mkdir -p .gpu/whl .gpu/base
echo "$pins" > .gpu/pins.txt
# The GPU machine's python3 is CPython 3.12 on x86_64 Linux; this machine's own Python too, for the
# check here (GPU_CHECK_SMOKE=1), which installs the same way.
for python in 3.12 "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; do
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/whl $pins 2> >(grep -v '^WARNING: Location' >&2)
done
cp "$shared/data/davidson/labeled_data.csv" .gpu/
cp "$shared/assets/bert-base-uncased-tokenizer/"* .gpu/base/
echo "$(du -sh .gpu | cut -f1) in .gpu: $pins"
