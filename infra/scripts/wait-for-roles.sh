#!/usr/bin/env bash
# Azure role assignments can take up to 10 minutes to take effect (docs/azure-platform.md). The
# Flex Consumption deployment reads the package container as the app's identity seconds after
# the first infrastructure run created its Storage Blob Data Owner assignment: a first-run 403.
# This waits until that assignment is at least SETTLE_SECONDS old (default 600: the page's "up to
# 10 minutes"; at once on later runs); the app deployment step also retries.
#
#   wait-for-roles.sh PRINCIPAL_ID STORAGE_ACCOUNT_ID
set -euo pipefail
principal="$1" scope="$2"
settle="${SETTLE_SECONDS:-600}"
role="Storage Blob Data Owner"

created=""
for _ in $(seq 1 30); do
  created=$(az role assignment list --assignee "$principal" --scope "$scope" --role "$role" \
    --query "[0].createdOn" --output tsv)
  [ -n "$created" ] && break
  sleep "${POLL_SECONDS:-10}"
done
if [ -z "$created" ]; then
  echo "##vso[task.logissue type=error]no $role assignment for $principal on $scope"
  exit 1
fi
age=$(( $(date -u +%s) - $(date -u -d "$created" +%s) ))
if [ "$age" -lt "$settle" ]; then
  echo "$role was assigned ${age}s ago; waiting $((settle - age))s for it to take effect"
  sleep $((settle - age))
else
  echo "$role was assigned ${age}s ago: in effect"
fi
