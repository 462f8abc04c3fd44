#!/usr/bin/env bash
# install-deps.sh installs what drguard's tests need, only when it is missing.
#
# Debian packages: postgresql (server binaries), redis-server, prometheus (and
# promtool), prometheus-alertmanager (and amtool), etcd-server, openssl, and
# chromium (the console's browser tests drive it headless with chromedp). They
# are installed with one `apt-get update` and one `apt-get install`, and only when a
# binary is missing. Services that the packages would start are kept from
# starting (a temporary policy-rc.d); services that were already running are
# left alone. Tests start their own instances on free ports.
#
# Go tools: staticcheck into $(go env GOPATH)/bin when missing.
#
# Needs root for apt-get (or sudo). Safe to run repeatedly.
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"

have_pg() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_basebackup" ]] && return 0
	done
	return 1
}

missing=()
have_pg || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
{ command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; } || missing+=(prometheus-alertmanager)
{ command -v etcd >/dev/null || [[ -x /usr/bin/etcd ]]; } || missing+=(etcd-server)
command -v openssl >/dev/null || missing+=(openssl)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v chromium >/dev/null || missing+=(chromium)

if ((${#missing[@]})); then
	echo "install-deps: installing ${missing[*]}"
	SUDO=""
	[[ $(id -u) -eq 0 ]] || SUDO="sudo"
	# Keep the packages' own services from starting; remove only our own guard.
	guard=""
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod 755 /usr/sbin/policy-rc.d
		guard=/usr/sbin/policy-rc.d
	fi
	trap '[[ -n "$guard" ]] && $SUDO rm -f "$guard"' EXIT
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "install-deps: Debian packages present"
fi

if ! command -v setpriv >/dev/null; then
	echo "install-deps: setpriv still missing" >&2
	exit 1
fi

gobin="$(go env GOPATH)/bin"
if [[ -x "$gobin/staticcheck" ]] || command -v staticcheck >/dev/null; then
	echo "install-deps: staticcheck present"
else
	echo "install-deps: go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	GOFLAGS=-mod=mod go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
echo "install-deps: done"
