#!/usr/bin/env bash
# A two-minute tour: start drguard on the local example, post an alert as
# Alertmanager would, show the incident, approve the gated step, show the
# metrics. Uses a throw-away journal.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DRGUARD_WEBHOOK_TOKEN:=local-webhook-token}" "${DRGUARD_ADMIN_TOKEN:=local-admin-token}"
export DRGUARD_WEBHOOK_TOKEN DRGUARD_ADMIN_TOKEN
addr=127.0.0.1:${DEMO_PORT:-19095}
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
./bin/drguard serve --config.file=deploy/examples/local.yaml --storage.path="$data" --web.listen-address="$addr" &
pid=$!
for _ in $(seq 100); do curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $DRGUARD_ADMIN_TOKEN")
echo "== posting a firing alert"
curl -fsS -X POST "http://$addr/api/v1/alerts" -H "Authorization: Bearer $DRGUARD_WEBHOOK_TOKEN" -d '{
  "version":"4","status":"firing","receiver":"drguard","groupKey":"demo",
  "alerts":[{"status":"firing","fingerprint":"demo-1","startsAt":"2026-11-25T10:00:00Z",
    "labels":{"alertname":"DemoDatabaseDown","service":"demo","scenario":"database_failure","target":"postgres-0"},
    "annotations":{"summary":"postgres-0 is not answering"}}]}'
sleep 1
echo "== pending approvals"
curl -fsS "${auth[@]}" "http://$addr/remediate"
id=$(curl -fsS "${auth[@]}" "http://$addr/remediate" | sed -n 's/.*"id": "\(apr-[0-9]*\)".*/\1/p' | head -1)
if [ -n "$id" ]; then
  echo "== approving $id"
  curl -fsS -X POST "${auth[@]}" "http://$addr/remediate/$id/approve" -d '{"comment":"demo"}' >/dev/null
  sleep 1
fi
echo "== incidents"
curl -fsS "${auth[@]}" "http://$addr/api/v1/incidents"
echo "== metrics"
curl -fsS "http://$addr/metrics" | grep '^drguard_' | grep -v '^drguard_build_info'
