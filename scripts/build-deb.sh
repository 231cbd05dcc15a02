#!/bin/sh
# Builds the gpu-agent Debian package with dpkg-deb from [package.metadata.deb] in
# agent/Cargo.toml: the same package `cargo deb -p gpu-agent` builds, but from any binary
# (the tests package the debug build they already have; no second build).
#
#   scripts/build-deb.sh --binary target/release/gpu-agent --out target/debian
#
# Prints the path of the .deb. Needs python3 (3.11+, for tomllib) and dpkg-deb.
set -eu

usage() { echo "usage: build-deb.sh --binary PATH --out DIR [--no-strip] [--fast]" >&2; }

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
binary=""
out=""
strip=yes
compression="-Zxz"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --no-strip) strip=no; shift ;;
        # gzip -1 instead of xz: for tests, which unpack it once.
        --fast) compression="-Zgzip -z1"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build-deb.sh: unknown argument '$1'" >&2; usage; exit 2 ;;
    esac
done
[ -n "$binary" ] && [ -n "$out" ] || { usage; exit 2; }
[ -x "$binary" ] || { echo "build-deb.sh: no executable at '$binary'" >&2; exit 1; }

mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/gpu-agent-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
arch=$(dpkg --print-architecture)

# Lay the assets out and write DEBIAN/ from the metadata table; prints the .deb's name.
deb_name=$(python3 - "$repo" "$binary" "$stage" "$arch" <<'PY'
import gzip, os, shutil, sys, tomllib

repo, binary, stage, arch = sys.argv[1:]
agent = os.path.join(repo, "agent")
with open(os.path.join(agent, "Cargo.toml"), "rb") as f:
    manifest = tomllib.load(f)
with open(os.path.join(repo, "Cargo.toml"), "rb") as f:
    version = tomllib.load(f)["workspace"]["package"]["version"]
deb = manifest["package"]["metadata"]["deb"]
name = deb["name"]

def put(source, dest, mode):
    target = os.path.join(stage, dest)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, mode)

for source, dest, mode in deb["assets"]:
    # cargo deb resolves target/release/<bin> to its own build; here it is --binary.
    path = binary if source.startswith("target/release/") else os.path.join(agent, source)
    put(path, dest, int(mode, 8))

doc = f"usr/share/doc/{name}"
license_file, skip = deb["license-file"]
with open(os.path.join(agent, license_file)) as f:
    lines = f.readlines()[int(skip):]
os.makedirs(os.path.join(stage, doc), exist_ok=True)
with open(os.path.join(stage, doc, "copyright"), "w") as f:
    f.writelines(lines)
with open(os.path.join(agent, deb["changelog"]), "rb") as f:
    changelog = f.read()
with open(os.path.join(stage, doc, "changelog.Debian.gz"), "wb") as raw:
    # mtime 0 and no name: the same input gives the same bytes.
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as z:
        z.write(changelog)

control_dir = os.path.join(stage, "DEBIAN")
os.makedirs(control_dir)
installed_kib = sum(
    os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(stage) for f in fs
) // 1024
description = manifest["package"]["description"]
extended = "\n".join(" " + (line if line.strip() else ".") for line in deb["extended-description"].splitlines())
fields = [
    ("Package", name),
    ("Version", f"{version}-1"),
    ("Architecture", arch),
    ("Maintainer", deb["maintainer"]),
    ("Installed-Size", str(installed_kib)),
    ("Depends", deb["depends"]),
    ("Recommends", deb.get("recommends", "")),
    ("Section", deb["section"]),
    ("Priority", deb["priority"]),
    ("Description", f"{description}\n{extended}"),
]
with open(os.path.join(control_dir, "control"), "w") as f:
    for key, value in fields:
        if value:
            f.write(f"{key}: {value}\n")
with open(os.path.join(control_dir, "conffiles"), "w") as f:
    f.writelines(path + "\n" for path in deb["conf-files"])
scripts = os.path.join(agent, deb["maintainer-scripts"])
for script in ("preinst", "postinst", "prerm", "postrm"):
    if os.path.exists(os.path.join(scripts, script)):
        put(os.path.join(scripts, script), os.path.join("DEBIAN", script), 0o755)
print(f"{name}_{version}-1_{arch}.deb")
PY
)
deb_file="$out/$deb_name"

if [ "$strip" = yes ]; then
    strip --strip-unneeded "$stage/usr/bin/gpu-agent"
fi
# Directories 0755 and files owned by root, whatever the umask and user building it.
find "$stage" -type d -exec chmod 0755 {} +
# shellcheck disable=SC2086 # two words on purpose
dpkg-deb --root-owner-group $compression --build "$stage" "$deb_file" >/dev/null
echo "$deb_file"
