"""The customer-center history view (CQRS read model), built only from the change feeds.

`facts` reads what a changed document says about a reservation, `history_item` folds facts
into one view document, `apply` writes a change-feed batch to the view, `rebuild` replays the
feeds from the beginning. See docs/history.md for the guarantees.
"""
