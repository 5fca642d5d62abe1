#!/usr/bin/env bash
# Builds libkubetune_kernels.so (kubetune_kernels.cpp, kubetune_vectorized.cpp) into OUTPUT_DIR/native/linux-x86_64/, where
# NativeKernels finds it on the classpath. Maven runs it in the compile phase.
#
# Needs g++ and the libtorch 2.7.1 C++ headers, the version DJL 0.36 runs; an operator built
# against other headers would not load. The headers come from, in order:
#   $LIBTORCH_HOME/include   an unpacked official libtorch 2.7.1 archive (the image build);
#   the cache ~/.cache/kubetune/libtorch-2.7.1/include, filled on first use from the PyPI wheel
#   torch==2.7.1 (the same headers; only torch/include is kept, ~50 MB, from an 821 MB download).
# The library links by name against libc10.so and libtorch_cpu.so, which DJL has loaded by the time
# NativeKernels loads it; stand-ins with those names are enough at link time.
#
# Only linux-x86_64 is built: the platform of the image and of CI. Elsewhere the script says so
# and the trainer runs the TorchScript kernels instead (NativeKernels reports which).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out_dir=$1/native/linux-x86_64
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "native kernels: not built on $(uname -s)-$(uname -m) (linux-x86_64 only)"
  exit 0
fi
command -v g++ >/dev/null || { echo "native kernels: g++ is required to build them" >&2; exit 1; }

sources=("$here/kubetune_kernels.cpp" "$here/kubetune_vectorized.cpp" "$here/kubetune_vectorized.h" "$0")
library="$out_dir/libkubetune_kernels.so"
up_to_date=true
for source in "${sources[@]}"; do
  [ -f "$library" ] && [ "$library" -nt "$source" ] || up_to_date=false
done
if $up_to_date; then
  exit 0
fi

if [ -n "${LIBTORCH_HOME:-}" ]; then
  include="$LIBTORCH_HOME/include"
else
  cache=${KUBETUNE_LIBTORCH_HEADERS:-$HOME/.cache/kubetune/libtorch-2.7.1}
  include="$cache/include"
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -f "$cache/.complete" ]; then
    echo "native kernels: fetching the libtorch 2.7.1 headers (torch==2.7.1 wheel, first build only)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
      --platform manylinux_2_28_x86_64 --python-version 3.11 torch==2.7.1 -d "$tmp"
    rm -rf "$include"
    python3 - "$tmp"/torch-2.7.1-*.whl "$tmp/wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2], [n for n in wheel.namelist() if n.startswith("torch/include/")])
PY
    mv "$tmp/wheel/torch/include" "$include"
    touch "$cache/.complete"
  fi
fi
[ -f "$include/torch/library.h" ] || {
  echo "native kernels: no libtorch headers in $include" >&2
  exit 1
}

mkdir -p "$out_dir"
work=$(mktemp -d)
for name in libc10.so libtorch_cpu.so; do
  echo "" | gcc -x c -shared -fPIC -Wl,-soname,$name -o "$work/$name" -
done
# _GLIBCXX_USE_CXX11_ABI=1 as DJL's libtorch was built.
common=(-std=c++17 -O3 -fPIC -D_GLIBCXX_USE_CXX11_ABI=1
  -isystem "$include" -isystem "$include/torch/csrc/api/include")
# Both with OpenMP, which at::parallel_for (header-inline) needs to run on libtorch's threads. The
# operators for any x86-64 CPU (no -march): they check the CPU before calling the vectorized
# kernels, which are built for AVX2 + FMA with libtorch's at::vec (CPU_CAPABILITY as libtorch's own
# AVX2 kernels are built).
g++ "${common[@]}" -fopenmp -c "$here/kubetune_kernels.cpp" -o "$work/kernels.o"
g++ "${common[@]}" -mavx2 -mfma -DCPU_CAPABILITY=AVX2 -DCPU_CAPABILITY_AVX2 -fopenmp \
  -c "$here/kubetune_vectorized.cpp" -o "$work/vectorized.o"
# -fopenmp links libgomp.so.1 by name: at run time that is the copy libtorch loaded (same soname),
# so the kernels share libtorch's OpenMP threads.
g++ -shared -fopenmp "$work/kernels.o" "$work/vectorized.o" -L"$work" -Wl,--no-as-needed \
  -l:libc10.so -l:libtorch_cpu.so -o "$library.tmp"
rm -rf "$work"
mv "$library.tmp" "$library"
echo "native kernels: built $library"
