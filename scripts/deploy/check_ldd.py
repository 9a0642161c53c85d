"""scripts/check-deploy's library check: does deploy/Dockerfile's runtime stage install
every shared library a release build of haat loads?

  python3 scripts/deploy/check_ldd.py DOCKERFILE BINARY

`ldd BINARY` lists the libraries (the direct ones, from the binary's NEEDED entries, and
what they load in turn); `dpkg -S` names the Debian package of each. A library passes when
its package is

- named in the runtime stage's `apt-get install` (required for the binary's direct
  libraries: the image must not depend on another package happening to pull them in);
- in the base image already (BASE_PACKAGES below); or
- pulled in by a named package's Depends/Pre-Depends (for the libraries those load),
  followed through the packages installed on this machine.

The Swift toolchain's own libraries (libswiftCore, Foundation, dispatch, ICU, …) are left
out: the image's build links them in statically (--static-swift-stdlib), so a release
build made here, without that flag, lists them and the image's does not. This machine
must be Debian bookworm like the image, so that the packages and their dependencies are
the image's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

# debian:bookworm-slim's packages: `docker run --rm debian:bookworm-slim dpkg-query -W
# -f '${Package}\n'` (Debian 12; the slim variant is a minbase debootstrap, every
# Priority: required package and apt, less documentation and locales). They are in the
# image before the runtime stage installs anything, so a library of one of them needs no
# apt-get line: libc6 (libc, libm, libresolv), libgcc-s1, libstdc++6, zlib1g, libzstd1, and
# what apt itself uses (libgnutls30 with libnettle8, libhogweed6, libgmp10, libidn2-0,
# libunistring2, libp11-kit0, libtasn1-6, libffi8) are among them.
BASE_IMAGE = "debian:bookworm-slim"
BASE_PACKAGES = set("""
adduser apt base-files base-passwd bash bsdutils coreutils dash debconf debian-archive-keyring
debianutils diffutils dpkg e2fsprogs findutils gcc-12-base gpgv grep gzip hostname
init-system-helpers libacl1 libapt-pkg6.0 libattr1 libaudit-common libaudit1 libblkid1
libbz2-1.0 libc-bin libc6 libcap-ng0 libcap2 libcom-err2 libcrypt1 libdb5.3 libdebconfclient0
libext2fs2 libffi8 libgcc-s1 libgcrypt20 libgmp10 libgnutls30 libgpg-error0 libhogweed6
libidn2-0 liblz4-1 liblzma5 libmd0 libmount1 libnettle8 libp11-kit0 libpam-modules
libpam-modules-bin libpam-runtime libpam0g libpcre2-8-0 libseccomp2 libselinux1
libsemanage-common libsemanage2 libsepol2 libsmartcols1 libss2 libstdc++6 libsystemd0
libtasn1-6 libtinfo6 libudev1 libunistring2 libuuid1 libxxhash0 libzstd1 login logsave mawk
mount ncurses-base ncurses-bin passwd perl-base sed sysvinit-utils tar tzdata usr-is-merged
util-linux util-linux-extra zlib1g
""".split())


class CheckError(Exception):
    pass


def run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    except FileNotFoundError:
        raise CheckError(f"{argv[0]} is missing")
    except subprocess.CalledProcessError as error:
        raise CheckError(f"{' '.join(argv)} failed: {error.stderr.strip()[:300]}")


def runtime_stage(dockerfile: str) -> tuple[str, list[str]]:
    """The runtime stage's base image and the packages its apt-get install lines name."""
    with open(dockerfile, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    # Docker drops comment lines, also inside a continued instruction.
    logical: list[str] = []
    current = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    stages: list[tuple[str, str, list[str]]] = []  # (image, alias, instructions)
    for instruction in logical:
        match = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", instruction, re.IGNORECASE)
        if match:
            stages.append((match.group(1), (match.group(2) or "").lower(), []))
        elif stages:
            stages[-1][2].append(instruction)
    if not stages:
        raise CheckError(f"{dockerfile} has no FROM")
    named = [stage for stage in stages if stage[1] == "runtime"]
    image, _, instructions = named[-1] if named else stages[-1]
    packages: list[str] = []
    for instruction in instructions:
        if not re.match(r"RUN\s", instruction, re.IGNORECASE):
            continue
        for command in re.split(r"&&|;|\|\|", instruction[3:]):
            words = command.split()
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                for word in words[words.index("install") + 1:]:
                    if not word.startswith("-"):
                        packages.append(word.split("=")[0])
    return image, packages


def ldd(binary: str) -> list[tuple[str, str | None]]:
    libraries = []
    for line in run(["ldd", binary]).splitlines():
        line = line.strip()
        match = re.match(r"(\S+) => (\S+|not found)", line)
        if match:
            libraries.append((match.group(1), None if match.group(2) == "not found" else match.group(2)))
        elif line.startswith("/"):
            path = line.split()[0]
            libraries.append((os.path.basename(path), path))
    return libraries


def needed(binary: str) -> set[str]:
    if shutil.which("readelf") is None:
        return set()
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", binary])))


def toolchain_dirs() -> list[str]:
    dirs = []
    swift = shutil.which("swift")
    if swift:
        usr = os.path.dirname(os.path.dirname(os.path.realpath(swift)))
        dirs += [os.path.join(usr, "lib", "swift"), os.path.join(usr, "lib", "swift_static")]
    return dirs


def is_toolchain(path: str, dirs: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real.startswith(d + "/") or path.startswith(d + "/") for d in dirs) or "/usr/lib/swift/" in real


def package_of(path: str) -> str | None:
    candidates = [path, os.path.realpath(path)]
    for candidate in list(candidates):
        if candidate.startswith("/usr/lib/"):
            candidates.append(candidate[len("/usr"):])
        elif candidate.startswith("/lib"):
            candidates.append("/usr" + candidate)
    for candidate in dict.fromkeys(candidates):
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            first = result.stdout.splitlines()[0]
            return first.split(":")[0].split(",")[0].strip()
    return None


def installed_packages() -> tuple[dict[str, list[list[str]]], dict[str, list[str]]]:
    """Installed package -> its Depends and Pre-Depends (alternatives per item), and
    virtual package -> the installed packages that provide it."""
    out = run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Depends}, ${Pre-Depends}\t${Provides}\n"])
    depends: dict[str, list[list[str]]] = {}
    provides: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, status, deps, provided = (line.split("\t") + ["", "", ""])[:4]
        if not status.startswith("ii"):
            continue
        items = []
        for item in deps.split(","):
            alternatives = [re.split(r"[\s(:]", a.strip())[0] for a in item.split("|") if a.strip()]
            if alternatives:
                items.append(alternatives)
        depends[name] = items
        for virtual in provided.split(","):
            virtual = re.split(r"[\s(]", virtual.strip())[0]
            if virtual:
                provides.setdefault(virtual, []).append(name)
    return depends, provides


def closure(roots: list[str], depends, provides) -> tuple[dict[str, list[str]], list[str]]:
    """Every installed package the roots pull in: package -> the roots that bring it."""
    brought: dict[str, list[str]] = {}
    unknown: list[str] = []
    for root in roots:
        if root not in depends:
            unknown.append(root)
            continue
        seen: set[str] = set()
        stack = [root]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            brought.setdefault(name, []).append(root)
            for alternatives in depends.get(name, []):
                for alternative in alternatives:
                    for real in [alternative] if alternative in depends else provides.get(alternative, []):
                        if real not in seen:
                            stack.append(real)
    return brought, unknown


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: check_ldd.py DOCKERFILE BINARY", file=sys.stderr)
        return 2
    dockerfile, binary = sys.argv[1], sys.argv[2]
    try:
        return check(dockerfile, binary)
    except CheckError as error:
        print(f"  FAIL: {error}")
        return 1


def check(dockerfile: str, binary: str) -> int:
    if not os.path.isfile(binary):
        raise CheckError(f"no binary at {binary} (swift build -c release --product haat, or set HAAT_RELEASE_BIN)")
    image, named = runtime_stage(dockerfile)
    print(f"  runtime stage: FROM {image}; apt-get install {' '.join(named) or '(nothing)'}")
    problems: list[str] = []
    if image != BASE_IMAGE:
        problems.append(f"the runtime stage is FROM {image}; BASE_PACKAGES in {__file__} describe {BASE_IMAGE}")
    codename = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release", encoding="utf-8") as handle:
            match = re.search(r"^VERSION_CODENAME=(\S+)", handle.read(), re.MULTILINE)
            codename = match.group(1) if match else ""
    if codename != "bookworm":
        problems.append(f"this machine is Debian {codename or '?'}, not bookworm: its packages are not the image's")

    depends, provides = installed_packages()
    brought, unknown = closure(named, depends, provides)
    for name in unknown:
        problems.append(f"{name} (named in the Dockerfile) is not installed here, so what it pulls in is unknown")
    dirs = toolchain_dirs()
    direct = needed(binary)
    toolchain: list[str] = []
    rows: list[tuple[str, str, str]] = []
    for soname, path in ldd(binary):
        if soname.startswith("linux-vdso") or soname.startswith("linux-gate"):
            continue
        if path is None:
            problems.append(f"{soname}: not found on this machine (ldd)")
            continue
        if is_toolchain(path, dirs):
            toolchain.append(soname)
            continue
        package = package_of(path)
        if package is None:
            problems.append(f"{soname} ({path}) belongs to no Debian package")
            continue
        how = "direct" if soname in direct else "indirect"
        if package in named:
            verdict = "named in the Dockerfile"
        elif package in BASE_PACKAGES:
            verdict = f"in {BASE_IMAGE}"
        elif package in brought and how == "indirect":
            verdict = f"pulled in by {', '.join(brought[package])}"
        elif package in brought:
            verdict = f"MISSING: the binary loads it directly, but only {', '.join(brought[package])} pulls it in"
            problems.append(f"{soname} ({package}): the binary loads it directly; name {package} in the runtime stage")
        else:
            verdict = "MISSING"
            problems.append(f"{soname}: its package {package} is not installed by the runtime stage")
        rows.append((soname, f"{package} ({how})", verdict))

    width = max((len(r[0]) for r in rows), default=10)
    width2 = max((len(r[1]) for r in rows), default=10)
    for soname, package, verdict in rows:
        print(f"    {soname.ljust(width)}  {package.ljust(width2)}  {verdict}")
    if toolchain:
        print(f"  left out, the Swift toolchain's (linked statically in the image): {', '.join(toolchain)}")
    used = {row[1].split(" ")[0] for row in rows}
    extra = [p for p in named if p not in used]
    if extra:
        print(f"  named though ldd shows no library of theirs: {', '.join(extra)} "
              "(ca-certificates: the CA store libcurl and TLS verify with)")
    if problems:
        for problem in problems:
            print(f"  FAIL: {problem}")
        return 1
    print(f"  ok: all {len(rows)} libraries beyond the Swift toolchain's are installed by the runtime stage or its base")
    return 0


if __name__ == "__main__":
    sys.exit(main())
