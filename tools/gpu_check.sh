#!/usr/bin/env bash
# The project on a real GPU: the kernel reference tests and the bench of both models, with the
# fraction of the GPU's fp32 peak (tools/gpu_check.ts); meant to finish within 8 minutes.
#   bash tools/gpu_check.sh pack   # where there is network: .gpu/ gets Deno, its module cache and
#                                  # the Vulkan loader, for a GPU machine without network (carry .gpu)
#   bash tools/gpu_check.sh        # on the GPU machine: Deno from .gpu/ or PATH, then the checks
# With the `device` tool: pack here, then run `bash tools/gpu_check.sh` there carrying ".gpu"
# (50 MB; the tree and it travel within 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = pack ]; then
  mkdir -p .gpu/debs
  xz -T0 -c "$(command -v deno)" >.gpu/deno.xz
  DENO_DIR=.gpu/cache deno cache tools/gpu_check.ts tests/kernels/*_test.ts
  # The bench's peers never run here: their packages stay as names only (under 64 MiB in all).
  for p in .gpu/cache/npm/registry.npmjs.org/{onnxruntime-node,core-js,@tensorflow/*}/*/; do
    find "$p" -mindepth 1 -not -name package.json -delete
  done
  (cd .gpu/debs && apt-get download libvulkan1)
  du -sh .gpu
  exit 0
fi

if [ -f .gpu/deno.xz ]; then
  xz -dc .gpu/deno.xz >/tmp/deno && chmod +x /tmp/deno
  export PATH=/tmp:$PATH DENO_DIR=$PWD/.gpu/cache
fi
if ! ldconfig -p | grep -q libvulkan && [ -d .gpu/debs ]; then
  for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# The NVIDIA driver's Vulkan manifest where the container mounts it outside the default paths.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES=$icd; fi
done
export DENO_WEBGPU_BACKEND=vulkan XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv 2>/dev/null || true
deno run -A tools/gpu_check.ts
