#!/usr/bin/env bash
# Installs, from Debian's packages, the tools the tests use as oracles and
# peers when they are missing: dcmtk (dcmdump), dicom3tools (dciodvfy),
# pydicom and rdflib for Debian's own /usr/bin/python3, the PostgreSQL
# server that scripts/with-postgres.sh starts for the store tests, and
# Chromium for the hub's end-to-end web UI test.
set -euo pipefail

missing=()
command -v dcmdump >/dev/null 2>&1 || missing+=(dcmtk)
command -v dciodvfy >/dev/null 2>&1 || missing+=(dicom3tools)
if ! /usr/bin/python3 -c 'import pydicom' >/dev/null 2>&1; then
	missing+=(python3-pydicom)
fi
if ! /usr/bin/python3 -c 'import rdflib' >/dev/null 2>&1; then
	missing+=(python3-rdflib)
fi
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
	missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "test-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "test-deps: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
