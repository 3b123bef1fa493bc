#!/usr/bin/env bash
# What a deployment into RESOURCE_GROUP needs before ARM sees the templates:
# 1. the resource providers are registered in the subscription (registering needs subscription
#    rights the resource-group service connection may lack: then it fails and says what to ask);
# 2. a Key Vault of this resource group that a teardown left soft-deleted is recovered (purge
#    protection forbids purging it, and a vault of the same name cannot be created meanwhile);
# 3. an API Management service of this resource group left soft-deleted is purged (its whole
#    configuration is in the templates, so nothing is lost; the name becomes free again).
#
#   prepare-resource-group.sh RESOURCE_GROUP
set -euo pipefail
resource_group="$1"
providers=(
  Microsoft.ApiManagement Microsoft.DocumentDB Microsoft.Insights Microsoft.KeyVault
  Microsoft.ManagedIdentity Microsoft.OperationalInsights Microsoft.ServiceBus Microsoft.Storage
  Microsoft.Web Microsoft.AlertsManagement
)

for provider in "${providers[@]}"; do
  state=$(az provider show --namespace "$provider" --query registrationState --output tsv)
  if [ "$state" != "Registered" ]; then
    echo "registering $provider (was $state)"
    if ! az provider register --namespace "$provider" --wait; then
      echo "##vso[task.logissue type=error]$provider is not registered and this identity may not register it: ask a subscription owner to run az provider register --namespace $provider"
      exit 1
    fi
  fi
done

scope="/resourceGroups/${resource_group}/"
vaults=$(az keyvault list-deleted --resource-type vault --output json)
for vault in $(jq -r --arg scope "$scope" \
  '.[] | select((.properties.vaultId // "") | ascii_downcase | contains($scope | ascii_downcase)) | .name' \
  <<<"$vaults"); do
  echo "recovering soft-deleted Key Vault $vault"
  az keyvault recover --name "$vault"
done

services=$(az apim deletedservice list --output json)
jq -r --arg scope "$scope" \
  '.[] | select((.serviceId // "") | ascii_downcase | contains($scope | ascii_downcase)) | "\(.name) \(.location)"' \
  <<<"$services" | while read -r service location; do
  echo "purging soft-deleted API Management $service ($location)"
  az apim deletedservice purge --service-name "$service" --location "$location"
done
