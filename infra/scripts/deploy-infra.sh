#!/usr/bin/env bash
# Infrastructure of one environment: `what-if` (preview, changes nothing) or `create`.
#
#   deploy-infra.sh what-if|create RESOURCE_GROUP PARAMETERS_FILE [DEPLOYMENT_NAME]
#
# Run from infra/ (the parameter files' directory). `create` prints the outputs the later steps
# use as Azure Pipelines variables (functionAppName, apimGatewayUrl, identityPrincipalId,
# storageAccountId).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=pipeline_env.sh
source "$here/pipeline_env.sh"

mode="$1" resource_group="$2" parameters="$3" name="${4:-outerpark-infra}"
case "$mode" in
  what-if)
    az deployment group what-if --resource-group "$resource_group" --parameters "$parameters"
    ;;
  create)
    outputs=$(az deployment group create --resource-group "$resource_group" --name "$name" \
      --parameters "$parameters" --query properties.outputs --output json)
    for output in functionAppName apimGatewayUrl identityPrincipalId storageAccountId; do
      value=$(jq -r ".${output}.value" <<<"$outputs")
      echo "##vso[task.setvariable variable=${output}]${value}"
    done
    ;;
  *)
    echo "usage: $0 what-if|create RESOURCE_GROUP PARAMETERS_FILE [DEPLOYMENT_NAME]" >&2
    exit 2
    ;;
esac
