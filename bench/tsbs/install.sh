#!/bin/sh
# Installs the peers of the TSBS ingest benchmark from Debian's packages:
# InfluxDB 1.6 (influxd) and single-node VictoriaMetrics. Idempotent: a
# package already installed is left alone, and apt is not touched at all
# when both are there. The packages' services are not started (the
# benchmark starts its own processes on loopback with temporary data dirs).
set -eu

missing=""
for pkg in influxdb victoria-metrics; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $pkg"
	fi
done
if [ -z "$missing" ]; then
	echo "bench/tsbs: influxdb and victoria-metrics are installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
echo "bench/tsbs: installing$missing"
$SUDO apt-get update -qq
# policy-rc.d on most build machines keeps the services from starting; make
# sure of it for this install so no system influxd holds port 8086.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends $missing
