"""The authority, the vendor's root of trust: root keys, products and groups, keys, host
certification and MAK activation. The command line stays ``volact vendor``.

- :mod:`volact.authority.operations` — :class:`~volact.authority.operations.Vendor`, what the
  ``volact vendor`` commands and the vendor service call: opening the vendor directory and
  answering requests (host certification, MAK activation, offline fulfilment);
- :mod:`volact.authority.catalogue` — what Vendor builds on: identity, root keys, groups,
  products, issued keys;
- :mod:`volact.authority.issuance` — the rules (group policy, key limits, certificates, tickets);
- :mod:`volact.authority.store` and :mod:`volact.authority.files` — the vendor directory;
- :mod:`volact.authority.service` — the HTTP service, run by :mod:`volact.web.runner`
  (what hosts and clients call to talk to the vendor is :mod:`volact.host.certification`
  and :mod:`volact.client.mak`; the file formats both sides share are :mod:`volact.core.offline`).
"""
