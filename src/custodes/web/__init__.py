"""The web layer: the JSON API, the console and the published log, all in one ASGI app.

=================================  ==========================================================
module                             holds
=================================  ==========================================================
``custodes.web.app``               :func:`create_app`: the routers, the services, the limits
``custodes.web.context``           :class:`ApiConfig` and how routes reach the services
``custodes.web.problems``          RFC 9457 problem details for every error
``custodes.web.limits``            body size limits before parsing; rate limits in the database
``custodes.web.idempotency``       ``Idempotency-Key``: a POST is answered once
``custodes.web.listing``           cursor pagination
``custodes.web.structured_fields`` RFC 8941 structured fields (what signatures are made of)
``custodes.web.signatures``        RFC 9421 signatures and RFC 9530 digests, custodes' profile
``custodes.web.intake``            the gate of the authority API; ``request.refused``
``custodes.web.authority_api``     the authority API: demands, documents, productions
``custodes.web.client``            the authority's side: key files, a signing client
``custodes.web.auth``              staff login (argon2id, TOTP), sessions, CSRF, dependencies
``custodes.web.tokens``            staff API tokens
``custodes.web.account``           the staff member's own session, password and tokens
``custodes.web.staff_demands``     the staff API of demands, intake to execution
``custodes.web.staff_admin``       the staff API of the authority and staff registries
``custodes.web.staff_views``       what the staff API answers about a demand
``custodes.web.schemas``           the JSON shapes of the OpenAPI document
``custodes.web.openapi``           the OpenAPI document (also docs/openapi.json)
``custodes.web.logfiles``          the published log at ``/log/``
``custodes.web.console``           the server-rendered console
=================================  ==========================================================
"""
