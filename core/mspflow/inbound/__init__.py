"""The inbound side: vendors' webhook deliveries and bot activities, verified, journaled once, processed.

A plugin declares, per provider, a :class:`~mspflow.inbound.receivers.Receiver` (how deliveries are
verified, where their delivery id is, how they parse into typed events, what handles each event) and
registers it with the ``register_receivers`` hook; the names it needs are exported by :mod:`mspflow`
(``Receiver``, ``Delivery``, ``Ignore``, ``webhook``). The core serves ``/hooks/{provider}/{token}``
(:mod:`.server`, ``mspflow serve``), verifies with the helpers in :mod:`.verify`, journals in
``inbound_events`` (:mod:`.journal`) and processes in a worker (:mod:`.processing`). Operators use
``mspflow tenant webhook T PROVIDER``, ``mspflow inbound list`` and ``mspflow inbound replay ID``
(:mod:`mspflow.cli.inbound`).

The walk of one delivery (``POST /hooks/level/<token>``):

1. the receiver for ``level`` (404 if none); the body, at most ``MSPFLOW_INBOUND_MAX_BODY_BYTES`` (413);
2. the connection for the token (404), hence the tenant; the signature against the tenant's
   ``level_webhook_secret`` (401: nothing journaled, nothing of the payload logged);
3. the body decoded as the receiver accepts (415), its delivery id, the payload redacted with every
   secret of the tenant;
4. one row in ``inbound_events`` unless the delivery id is already there (then 200 ``duplicate``); 200
   ``accepted``, and a message to the worker;
5. the worker claims the row, calls ``parse`` and ``on_event``, and records PROCESSED, IGNORED or FAILED.
"""
