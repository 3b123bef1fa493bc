"""The domain: models with their state machines, events and errors. Depends on pydantic only."""
