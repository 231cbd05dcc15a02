#!/bin/sh
# Installs gpu-agent on a systemd host: the binary, the unit, a system user, a default
# config (never overwriting an existing one) and the state directory.
#
# Idempotent: running it again upgrades the binary and unit and leaves config and state
# alone. With --destdir (or DESTDIR=) it only lays files out under that root, as packagers
# and tests want, and touches nothing of the running system.
#
#   sudo scripts/install.sh [--binary PATH] [--prefix /usr/local] [--enable]
#   scripts/install.sh --destdir /tmp/root --binary target/release/gpu-agent
set -eu

usage() {
    cat <<'USAGE'
usage: install.sh [--binary PATH] [--prefix DIR] [--destdir DIR] [--enable]

  --binary PATH   the gpu-agent binary to install (default: target/release/gpu-agent)
  --prefix DIR    install prefix for the binary and docs (default: /usr/local)
  --destdir DIR   stage everything under DIR; no users, no systemctl (default: $DESTDIR)
  --enable        also `systemctl enable --now gpu-agent` (ignored with --destdir)
USAGE
}

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
binary="$repo/target/release/gpu-agent"
prefix=/usr/local
destdir=${DESTDIR:-}
enable=no

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --enable) enable=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

case "$prefix" in
    /*) ;;
    *) echo "install.sh: --prefix must be an absolute path, got '$prefix'" >&2; exit 2 ;;
esac
if [ ! -x "$binary" ]; then
    echo "install.sh: no executable at '$binary': build it (cargo build --release -p gpu-agent) or pass --binary" >&2
    exit 1
fi
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: installing into the system needs root; use sudo, or --destdir to stage" >&2
    exit 1
fi

root=${destdir%/}
bin_dir="$root$prefix/bin"
doc_dir="$root$prefix/share/doc/gpu-agent"
share_dir="$root$prefix/share/gpu-agent"
unit_dir="$root/etc/systemd/system"
sysusers_dir="$root/etc/sysusers.d"
config_dir="$root/etc/gpu-agent"
state_dir="$root/var/lib/gpu-agent"

say() { echo "install.sh: $*"; }

# 1. Binary, docs and the reference device-class catalog: always the new version.
install -d -m 0755 "$bin_dir" "$doc_dir" "$share_dir"
install -m 0755 "$binary" "$bin_dir/gpu-agent"
say "binary -> $prefix/bin/gpu-agent"
if [ -f "$repo/docs/operations.md" ]; then
    install -m 0644 "$repo/docs/operations.md" "$doc_dir/operations.md"
fi
install -m 0644 "$repo/configs/device-classes.toml" "$share_dir/device-classes.toml"

# 2. Unit and sysusers entry, with the prefix substituted into their paths.
install -d -m 0755 "$unit_dir" "$sysusers_dir"
unit_tmp="$unit_dir/.gpu-agent.service.tmp"
sed -e "s#/usr/local/bin/gpu-agent#$prefix/bin/gpu-agent#" \
    -e "s#/usr/local/share/doc/gpu-agent#$prefix/share/doc/gpu-agent#" \
    "$repo/configs/gpu-agent.service" >"$unit_tmp"
chmod 0644 "$unit_tmp"
mv -f "$unit_tmp" "$unit_dir/gpu-agent.service"
install -m 0644 "$repo/configs/gpu-agent.sysusers" "$sysusers_dir/gpu-agent.conf"
say "unit -> /etc/systemd/system/gpu-agent.service"

# 3. Config: an operator's existing agent.toml is never replaced.
install -d -m 0750 "$config_dir"
if [ -e "$config_dir/agent.toml" ]; then
    say "keeping existing /etc/gpu-agent/agent.toml"
else
    config_tmp="$config_dir/.agent.toml.tmp"
    if [ -f "$repo/configs/agent.toml" ]; then
        cp "$repo/configs/agent.toml" "$config_tmp"
    else
        cat >"$config_tmp" <<'CONFIG'
# gpu-agent configuration (docs/operations.md). Every key can also be set as GPU_AGENT_<KEY>.
listen = "127.0.0.1:8080"
state_dir = "/var/lib/gpu-agent"
allow_cpu = false
model_roots = ["/srv/models"]
status_callback_url = ""

[auth]
# Put the SHA-256 of each x-api-key here (printf %s "$KEY" | sha256sum), not the key.
api_key_sha256 = []
bearer_tokens = []

[gpu]
nvml_library = "libnvidia-ml.so.1"
execution = "auto"
CONFIG
    fi
    chmod 0640 "$config_tmp"
    mv "$config_tmp" "$config_dir/agent.toml"
    say "config -> /etc/gpu-agent/agent.toml (new; edit it before starting)"
fi

# 4. State directory (systemd's StateDirectory= would create it too).
install -d -m 0700 "$state_dir"

# 5. Only on the live system: user, ownership, kernel module, systemd.
if [ -n "$destdir" ]; then
    say "staged under $destdir; no user created, systemd not touched"
    exit 0
fi

if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /etc/sysusers.d/gpu-agent.conf
elif ! getent passwd gpu-agent >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/gpu-agent \
        --shell /usr/sbin/nologin --comment "gpu-agent inference node" gpu-agent
fi
chown root:gpu-agent /etc/gpu-agent /etc/gpu-agent/agent.toml
chown gpu-agent:gpu-agent /var/lib/gpu-agent

# The unit's DeviceAllow=char-nvidia* is resolved at service start, so nvidia-uvm must
# already be loaded then: load it at boot on hosts that have the NVIDIA driver.
if modinfo nvidia-uvm >/dev/null 2>&1; then
    install -d -m 0755 /etc/modules-load.d
    echo nvidia-uvm >/etc/modules-load.d/gpu-agent-nvidia-uvm.conf
    modprobe nvidia-uvm 2>/dev/null || say "could not load nvidia-uvm now; it loads at next boot"
fi

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$enable" = yes ]; then
        systemctl enable --now gpu-agent.service
        say "gpu-agent enabled and started"
    else
        say "next: edit /etc/gpu-agent/agent.toml, then: systemctl enable --now gpu-agent"
    fi
else
    say "systemd is not running here; start gpu-agent serve --config /etc/gpu-agent/agent.toml yourself"
fi
