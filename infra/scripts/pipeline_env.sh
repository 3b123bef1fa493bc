# Sourced by the deployment scripts. Azure Pipelines leaves a macro such as
# $(paymentGatewaySecretKey) as literal text when the variable is not defined (docs/azure-platform.md);
# passed on, that text would become the vault secret or a parameter value. Every variable named
# here that still holds an unexpanded macro is unset, so that the parameter files' defaults apply
# (an empty gateway key keeps the stored secret).
# shellcheck shell=bash
for name in PAYMENT_GATEWAY_SECRET_KEY AUTH_AUDIENCE PAYMENT_GATEWAY_URL APIM_PUBLISHER_EMAIL \
  COSMOS_FAILOVER_LOCATION FUNCTION_KEY_NAME; do
  value="${!name-}"
  if [[ "$value" =~ ^\$\([A-Za-z0-9_.]+\)$ ]]; then
    echo "$name: the pipeline variable behind it is not defined; leaving it unset"
    unset "$name"
  fi
done
