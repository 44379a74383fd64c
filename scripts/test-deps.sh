#!/usr/bin/env bash
# Installs, from Debian's packages, the tools the tests use as oracles and
# peers when they are missing: dcmtk (dcmdump), dicom3tools (dciodvfy),
# pydicom and rdflib for Debian's own /usr/bin/python3, the PostgreSQL
# server that scripts/with-postgres.sh starts for the store tests,
# Chromium for the hub's end-to-end web UI test, and Orthanc with its
# DICOMweb plugin, which pushes into a node in cmd/mosaic's TestOrthancPush
# (the test starts its own Orthanc; the package's system service is not
# started by the install, and stopped if it runs), and Node.js with npm,
# which build the web viewer (make viewer) and run the dicomweb-client
# conformance test in internal/viewer; for federated processing,
# bubblewrap and podman (with runc) for the sandbox and container
# executors, R and statsmodels as independent oracles of the federated
# regressions, and numpy and torch for the training examples.
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
if ! command -v node >/dev/null 2>&1; then
	missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
	missing+=(npm)
fi
if ! command -v Orthanc >/dev/null 2>&1; then
	missing+=(orthanc)
fi
if ! dpkg -s orthanc-dicomweb >/dev/null 2>&1; then
	missing+=(orthanc-dicomweb)
fi
# Federated processing: the sandbox (bubblewrap) and container (podman
# with runc) executors, R and statsmodels as independent oracles of the
# federated regressions, numpy and torch for the training examples.
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v Rscript >/dev/null 2>&1 || missing+=(r-base-core)
if ! /usr/bin/python3 -c 'import statsmodels' >/dev/null 2>&1; then
	missing+=(python3-statsmodels)
fi
if ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
	missing+=(python3-numpy)
fi
if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
	missing+=(python3-torch)
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
# invoke-rc.d asks policy-rc.d whether an install may start services; 101
# says no, so that installing orthanc starts no server of its own. An
# existing policy is kept.
policy_made=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
	$sudo chmod 755 /usr/sbin/policy-rc.d
	policy_made=1
fi
remove_policy() {
	if [ -n "$policy_made" ]; then
		$sudo rm -f /usr/sbin/policy-rc.d
	fi
}
trap remove_policy EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if pgrep -x Orthanc >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$sudo systemctl stop orthanc 2>/dev/null || true
fi
