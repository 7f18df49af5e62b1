"""The host admin's surface: a listener apart from the clients' port.

It serves the versioned admin API (``/admin/v1/…``, JSON, with its OpenAPI document), the
Prometheus metrics (``/metrics``) and a server-rendered dashboard (``/``), all behind the admin
token made by ``volact host init`` (:mod:`volact.host.admin.token`). ``volact host serve``
starts it beside the activation port, bound to 127.0.0.1 unless ``--admin-bind`` says otherwise
(:mod:`volact.host.admin.listener`). Nothing of it is reachable on the activation port.
"""
