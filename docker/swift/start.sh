#!/bin/bash
# Starts a single-node Swift inside the container, as test/swift/cluster.ts does on a test machine:
#   - memcached and the account (6202), container (6201) and object (6200) servers on 127.0.0.1,
#   - the proxy-server on 0.0.0.0:8080 (SWIFT_PROXY_BIND_IP, SWIFT_PROXY_PORT) with tempauth (the users
#     below), healthcheck, copy, slo, dlo, ...,
#   - one 1-replica ring per type with the single device d1 in /srv/node (the volume mounted at /srv).
# The hash prefix/suffix and the rings are made once and kept in /srv/state, so the objects on the volume stay
# readable when the container is re-created. Servers drop privileges to the Debian package's `swift` user.
# Runs in the foreground; SIGTERM/SIGINT stop every server; if one server dies the container exits non-zero.
set -euo pipefail

STATE=/srv/state          # swift.conf, ring builders and rings (swift_dir)
DEVICES=/srv/node         # devices root; the one device is d1
PROXY_PORT=${SWIFT_PROXY_PORT:-8080}
PROXY_BIND_IP=${SWIFT_PROXY_BIND_IP:-0.0.0.0}   # verify-image.sh runs it on the host network: 127.0.0.1
OBJECT_PORT=6200
CONTAINER_PORT=6201
ACCOUNT_PORT=6202
MEMCACHED_PORT=11211

log() { printf 'swift-start: %s\n' "$*"; }

mkdir -p "$STATE" "$DEVICES/d1" /etc/swift /var/cache/swift /var/run/swift

# Swift 2.30.1 reads swift.conf from the fixed path /etc/swift/swift.conf; the copy on the volume is the source.
if [[ ! -s $STATE/swift.conf ]]; then
  log "first start: new hash prefix/suffix in $STATE/swift.conf"
  cat > "$STATE/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
swift_hash_path_suffix = $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

[storage-policy:0]
name = Policy-0
default = yes
EOF
fi
cp "$STATE/swift.conf" /etc/swift/swift.conf

common_defaults() { # $1 = bind_ip, $2 = bind_port
  cat <<EOF
[DEFAULT]
bind_ip = $1
bind_port = $2
workers = 1
user = swift
swift_dir = $STATE
devices = $DEVICES
mount_check = false
disable_fallocate = true
# No syslog socket in the container: with -v, each server logs to its stdout (the container's log).
log_address = /dev/null
EOF
}

for server in account container object; do
  port_var="${server^^}_PORT"
  {
    common_defaults 127.0.0.1 "${!port_var}"
    cat <<EOF

[pipeline:main]
pipeline = healthcheck ${server}-server

[app:${server}-server]
use = egg:swift#${server}

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  } > "/etc/swift/${server}-server.conf"
done

# The pipeline of test/swift/cluster.ts (Swift's SAIO settings, which its functional tests assume).
{
  common_defaults "$PROXY_BIND_IP" "$PROXY_PORT"
  cat <<EOF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
client_timeout = 60
node_timeout = 10
conn_timeout = 0.5

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH_
# The same users as docker/proxy-server.conf's [filter:tempauth] (the quota proxy reads usage as reseller:reseller).
user_test_tester = testing .admin
user_reseller_reseller = reseller .reseller_admin
user_system_root = testpass .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo
allow_async_delete = true

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true

[filter:symlink]
use = egg:swift#symlink
EOF
} > /etc/swift/proxy-server.conf

if [[ ! -s $STATE/object.ring.gz ]]; then
  log "first start: building rings in $STATE"
  for ring in account container object; do
    port_var="${ring^^}_PORT"
    ( cd "$STATE" \
      && swift-ring-builder "$ring.builder" create 10 1 1 \
      && swift-ring-builder "$ring.builder" add "r1z1-127.0.0.1:${!port_var}/d1" 1 \
      && swift-ring-builder "$ring.builder" rebalance ) > /dev/null
  done
fi

chown -R swift:swift "$STATE" "$DEVICES" /var/cache/swift /var/run/swift

pids=()
stopping=0
stop_all() {
  stopping=1
  log "stopping"
  for pid in "${pids[@]}"; do
    # Swift's servers put themselves in a process group of their own: signal the group, workers included.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
}
trap stop_all TERM INT

memcached -u memcache -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 &
pids+=($!)
for server in account container object proxy; do
  "/usr/bin/swift-${server}-server" "/etc/swift/${server}-server.conf" -v &
  pids+=($!)
done
log "started memcached and the account, container, object and proxy servers; proxy on $PROXY_BIND_IP:$PROXY_PORT"

# Wait until one of them exits (or a signal arrives), then stop the others.
set +e
wait -n "${pids[@]}"
status=$?
if [[ $stopping == 0 ]]; then
  log "a server exited with status $status; stopping the others"
  stop_all
else
  status=0
fi
wait
exit "$status"
