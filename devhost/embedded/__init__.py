"""The embedded stand-ins for Cosmos DB and Service Bus that the local host runs on: a durable
SQLite document store with a change feed (written through devhost's store service), and a SQLite
message bus with peek-lock, scheduling and dead-lettering. Never deployed; the app reaches them
only through `shared.ports`, built by `backends` when `OUTERPARK_LOCAL_BACKENDS` names it.
"""
