#!/usr/bin/env bash
# Builds KubeTune's real control plane from Go modules: kube-apiserver, kube-controller-manager and
# kubectl from k8s.io/kubernetes; etcd from go.etcd.io/etcd/server/v3 (cmd/etcd, a small main over its
# embed package); kubetune-pki (cmd/kubetune-pki, the certificates and keys). Versions are pinned in
# go.mod/go.sum beside this script.
#
# The binaries land in ${KUBETUNE_CONTROLPLANE_CACHE:-~/.cache/kubetune/controlplane}/<hash>/bin, where
# <hash> covers go.mod, go.sum, cmd/ and the recipe line: a second run with the same pins is a no-op. The
# build time of the last real build is written to <hash>/build-seconds. Prints the bin folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${KUBETUNE_CONTROLPLANE_CACHE:-$HOME/.cache/kubetune/controlplane}"
# What the binaries are made of: the pins, our two mains and the recipe below (bump it when the
# build command changes what comes out). Editing this script otherwise does not rebuild.
recipe="recipe 1: CGO_ENABLED=0 -trimpath -ldflags=-s -w +version; etcd kubetune-pki kube-apiserver kube-controller-manager kubectl"
hash="$( (cd "$here" && cat go.mod go.sum $(find cmd -type f | LC_ALL=C sort); echo "$recipe") | sha256sum | cut -c1-16)"
out="$cache_root/$hash"
bins=(etcd kube-apiserver kube-controller-manager kubectl kubetune-pki)
complete=true
for b in "${bins[@]}"; do [[ -x "$out/bin/$b" ]] || complete=false; done
if $complete; then
  echo "$out/bin"
  exit 0
fi

# One build at a time (two Maven runs may start together); the winner's result is reused.
mkdir -p "$cache_root"
exec 9>"$cache_root/build.lock"
flock 9
complete=true
for b in "${bins[@]}"; do [[ -x "$out/bin/$b" ]] || complete=false; done
if $complete; then
  echo "$out/bin"
  exit 0
fi
# Go's default install folder, for environments whose PATH lacks it.
[[ -x /usr/local/go/bin/go ]] && ! command -v go >/dev/null && PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "build.sh: 'go' is not on PATH; the control plane is built from Go modules (Go 1.24 or newer)" >&2; exit 2; }
k8s_version="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

mkdir -p "$out"
tmp="$(mktemp -d "$out/bin.tmp.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "build.sh: building the control plane ($k8s_version) into $out/bin; the first build takes many minutes" >&2
start=$(date +%s)
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  ./cmd/etcd ./cmd/kubetune-pki \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl) >&2
end=$(date +%s)
for b in "${bins[@]}"; do [[ -x "$tmp/$b" ]] || { echo "build.sh: $b was not built" >&2; exit 1; }; done
rm -rf "$out/bin"
mv "$tmp" "$out/bin"
trap - EXIT
echo "$((end - start))" > "$out/build-seconds"
echo "build.sh: built in $((end - start)) s" >&2
echo "$out/bin"
