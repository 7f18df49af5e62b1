"""The vendor side: root keys, products and groups, keys, host certification and MAK activation.

- :mod:`volact.vendor.operations` — :class:`~volact.vendor.operations.Vendor`, what the
  ``volact vendor`` commands and the vendor service call;
- :mod:`volact.vendor.issuance` — the rules (group policy, key limits, certificates, tickets);
- :mod:`volact.vendor.offline` — the request and response files (online bodies are the same);
- :mod:`volact.vendor.store` and :mod:`volact.vendor.files` — the vendor directory;
- :mod:`volact.vendor.service` and :mod:`volact.vendor.runner` — the HTTP service;
- :mod:`volact.vendor.client_api` — what hosts and clients call to talk to the vendor.
"""
