#!/usr/bin/env bash
# The OuterPark API's Entra ID app registration, as code (run once per environment by someone
# allowed to create app registrations; re-running it converges, it never makes a second one).
#
# Why a script: the Bicep Microsoft Graph extension (`extension microsoftGraphV1`,
# Microsoft.Graph/applications) can declare this, but it must be restored from a registry at build
# time, which the repository's offline Bicep checks (tests/infra) cannot do, and the pipeline's
# service connection would need Graph permissions to deploy it. Azure CLI + Microsoft Graph do it
# in four steps:
#
#   1. find or create the application "outerpark-api-<env>";
#   2. PATCH it: v2 access tokens (api.requestedAccessTokenVersion = 2, so the issuer is
#      https://login.microsoftonline.com/<tenant>/v2.0 and the audience is the client id), the
#      delegated scope OuterPark.Use (a user's token carries it in `scp`), and the app roles
#      `admin` (users and applications: show managers) and `customer` (applications acting as a
#      customer: an application token must carry one of the API's roles);
#   3. find or create its service principal, with appRoleAssignmentRequired = true, so that only
#      users and applications assigned a role (or consented to the scope) get tokens;
#   4. print the client id: the `authAudience` parameter, which the parameter files read from
#      AUTH_AUDIENCE (the pipeline fills it from the variable group's authAudience).
#
# Usage: infra/scripts/entra-app.sh dev|prod
# Needs: az (logged in to the tenant), jq.
set -euo pipefail

environment="${1:?usage: entra-app.sh dev|prod}"
name="outerpark-api-${environment}"
# Fixed ids, so that re-running the script updates the same scope and roles.
scope_id="8f6b5a52-3c1e-4d7a-9a0b-0c7e5d3f1a01"
admin_role_id="8f6b5a52-3c1e-4d7a-9a0b-0c7e5d3f1a02"
customer_role_id="8f6b5a52-3c1e-4d7a-9a0b-0c7e5d3f1a03"

# 1. The application.
app_id=$(az ad app list --display-name "$name" --query '[0].appId' --output tsv)
if [[ -z "$app_id" ]]; then
  app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
    --query appId --output tsv)
fi
object_id=$(az ad app show --id "$app_id" --query id --output tsv)

# 2. v2 tokens, the scope, the app roles, and the identifier URI api://<client id>.
body=$(jq -n \
  --arg app_id "$app_id" --arg scope_id "$scope_id" \
  --arg admin_role_id "$admin_role_id" --arg customer_role_id "$customer_role_id" '{
  identifierUris: ["api://\($app_id)"],
  api: {
    requestedAccessTokenVersion: 2,
    oauth2PermissionScopes: [{
      id: $scope_id, value: "OuterPark.Use", type: "User", isEnabled: true,
      adminConsentDisplayName: "Use OuterPark", adminConsentDescription: "Reserve seats and read your own history as the signed-in user.",
      userConsentDisplayName: "Use OuterPark", userConsentDescription: "Reserve seats and read your own history."
    }]
  },
  appRoles: [
    {id: $admin_role_id, value: "admin", displayName: "Show manager", isEnabled: true,
     allowedMemberTypes: ["User", "Application"], description: "Registers musicals."},
    {id: $customer_role_id, value: "customer", displayName: "Customer application", isEnabled: true,
     allowedMemberTypes: ["Application"], description: "An application that reserves as a customer (its own object id)."}
  ]
}')
az rest --method PATCH --headers 'Content-Type=application/json' \
  --url "https://graph.microsoft.com/v1.0/applications/${object_id}" --body "$body"

# 3. The service principal; only assigned users and applications get tokens.
if [[ -z "$(az ad sp list --filter "appId eq '${app_id}'" --query '[0].id' --output tsv)" ]]; then
  az ad sp create --id "$app_id" --output none
fi
sp_id=$(az ad sp list --filter "appId eq '${app_id}'" --query '[0].id' --output tsv)
az rest --method PATCH --headers 'Content-Type=application/json' \
  --url "https://graph.microsoft.com/v1.0/servicePrincipals/${sp_id}" \
  --body '{"appRoleAssignmentRequired": true}'

# 4. The audience the app and API Management check.
echo "AUTH_AUDIENCE (variable group outerpark-${environment}: authAudience): ${app_id}"
