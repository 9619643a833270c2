#!/usr/bin/env bash
# Installs the Debian packages e2e's demo, tests and benchmarks need, when
# they are missing: apt-get as root, through sudo otherwise. `make deps` runs
# it; `make demo`, `make test` and .ci/run depend on it.
#
#   debootstrap      the Docker backend builds its node image offline with it
#   openssh-server   private sshd instances stand in for existing machines
#   openssh-client   `e2e ssh` hands over to it; the benchmarks' baseline
#   sudo             commands run as other users through it in the tests
#   build-essential  gcc, for packages built with cgo
#   systemd-container  systemd-nspawn, for the example backend examples/nspawn
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/sbin/debootstrap ] || have debootstrap || need+=(debootstrap)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have ssh && have scp || need+=(openssh-client)
have sudo || need+=(sudo)
have gcc || need+=(build-essential)
have systemd-nspawn || need+=(systemd-container)

if [ ${#need[@]} -gt 0 ]; then
	if ! have apt-get; then
		echo "make deps: missing ${need[*]}, and this is not a Debian/Ubuntu machine (no apt-get): install them with your package manager" >&2
		exit 1
	fi
	as_root=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! have sudo; then
			echo "make deps: missing ${need[*]}; run make deps as root (sudo is not installed either)" >&2
			exit 1
		fi
		as_root=(sudo)
	fi
	echo "make deps: installing ${need[*]} (apt-get)"
	"${as_root[@]}" apt-get update -qq
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# moto_server (an EC2 emulator, Python) stands in for AWS in the tests of
# the aws backend; it comes with Python's packages, not Debian's: say so
# early when it is missing (under CI=true its tests fail then).
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
	echo "make deps: warning: moto_server is missing (python3 -m moto.server; pip install 'moto[server]'): the aws backend's tests need it" >&2
fi

# The Docker engine cannot be installed from here: say so early.
if ! have docker || ! docker info >/dev/null 2>&1; then
	echo "make deps: warning: no running Docker engine reachable (docker info failed): the Docker backend and its tests need one" >&2
fi
