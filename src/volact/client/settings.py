"""The client's discovery settings and state directory, outside any one ``License``.

:func:`update_settings` changes the machine-wide discovery settings (or one product's
overrides) in a state directory, :func:`installed_products` lists what is installed there, and
:func:`resolve_state_dir` says which directory is meant (``--dir``, ``VOLACT_STATE_DIR``, the
default of :mod:`volact.paths`). The files themselves are :mod:`volact.client.state`'s.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from volact.client.state import MachineSettings, StateDir, domains_tuple
from volact.core.errors import BadRequest, NotInstalled

__all__ = ["installed_products", "resolve_state_dir", "update_settings"]


def resolve_state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, else ``VOLACT_STATE_DIR``, else the default (:mod:`volact.paths`)."""
    from volact.paths import resolve_dir

    return resolve_dir("client", explicit)


def installed_products(state_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The ids of the products installed in ``state_dir`` (default: VOLACT_STATE_DIR…)."""
    return StateDir(resolve_state_dir(state_dir)).products()


def _normalize_setting(name: str, value: Any) -> Any:
    from volact.client import discovery
    from volact.net import dns

    if value is None:
        return None
    if name == "manual_host":
        return discovery.parse_host(str(value), "manual").address
    if name == "dns_server":
        return str(dns.DNSServer.parse(str(value)))
    if name == "domains":
        return domains_tuple([dns.normalize_name(str(domain)) for domain in value])
    if name == "host_caching":
        if not isinstance(value, bool):
            raise BadRequest("host caching is on or off")
        return value
    raise BadRequest(f"unknown client setting {name!r}")


def update_settings(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    product: str | None = None,
    **changes: Any,
) -> MachineSettings:
    """Change discovery settings: ``manual_host``, ``host_caching``, ``domains``, ``dns_server``.

    Without ``product`` the machine-wide value changes and every product's override of that
    setting is removed, so the new value is in effect for all products. With ``product`` only
    that product's override changes (``None`` removes the override). Returns the settings now
    in effect (for ``product``, or machine-wide). Raises ``bad_request`` for a malformed value
    and ``not_installed`` for an unknown product.
    """
    normalized = {name: _normalize_setting(name, value) for name, value in changes.items()}
    state = StateDir(resolve_state_dir(state_dir))
    with state.lock():
        machine_settings = state.read_settings()
        if product is None:
            if "host_caching" in normalized and normalized["host_caching"] is None:
                normalized["host_caching"] = True
            if "domains" in normalized and normalized["domains"] is None:
                normalized["domains"] = ()
            machine_settings = replace(machine_settings, **normalized)
            state.write_settings(machine_settings)
            for name in state.products():
                stored = state.read_product(name)
                if stored is None:
                    continue
                cleared = replace(stored.settings, **dict.fromkeys(normalized))
                if cleared != stored.settings:
                    state.write_product(replace(stored, settings=cleared))
            return machine_settings
        stored = state.read_product(product)
        if stored is None:
            raise NotInstalled(f"product {product!r} is not installed", {"product": product})
        overrides = replace(stored.settings, **normalized)
        state.write_product(replace(stored, settings=overrides))
        return overrides.over(machine_settings)
