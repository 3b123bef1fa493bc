"""A local Azure Functions host for the project's `function_app.py` (`python -m devhost`).

Azure Functions Core Tools cannot run here, so this package serves the HTTP functions with
uvicorn and drives the Service Bus and Cosmos DB triggers from the embedded SQLite bus and
store, from the metadata the `azure-functions` decorators record. Never deployed.
"""
