"""Which Label Studio origins Sieve's workers may call: the operator's allow-list, and the addresses no origin
may reach. A `/setup` names where the workers send requests and a token, so its hostname is only a choice
among the origins the operator listed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

SCHEMES = {"http": 80, "https": 443}


class OriginError(ValueError):
    """A value that is not a bare http(s) origin, or an origin no worker may call; the message says why."""


def origin(value: str) -> str:
    """`scheme://host[:port]`, lower-cased, without a default port or trailing slash: the one spelling an
    origin is compared and called by. Anything more (path, query, fragment, user info) is refused."""
    if not isinstance(value, str) or not value.isprintable() or any(c.isspace() for c in value):
        # urlsplit silently drops tabs and newlines: what it parses must be what was sent.
        raise OriginError("must be an origin such as https://labelstudio.example.com:8080")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise OriginError("must be an origin such as https://labelstudio.example.com:8080") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise OriginError("must start with http:// or https://")
    if "@" in parts.netloc:
        raise OriginError("must not carry user info (user:password@)")
    if not parts.hostname:
        raise OriginError("must name a host")
    if parts.path not in ("", "/") or "?" in value or "#" in value:
        raise OriginError("must be an origin only: no path, query or fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != SCHEMES[scheme] else "")


def allow_list(raw: str, name: str = "SIEVE_LABELSTUDIO_ORIGINS") -> tuple[str, ...]:
    """The comma-separated origins of the setting, normalised; a ValueError naming the bad entry else."""
    out = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        try:
            normalised = origin(entry)
            host = urlsplit(normalised).hostname
            if _is_ip(host):
                refuse_address(host)
        except OriginError as error:
            raise ValueError(f"{name}: {entry!r} {error}") from None
        out.append(normalised)
    return tuple(dict.fromkeys(out))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = ipaddress.ip_network("fd00:ec2::254/128")
"""A cloud metadata service's IPv6 address that is unique-local rather than link-local."""


def refuse_address(address: str) -> None:
    """Refuses what no Label Studio lives at: link-local addresses (cloud metadata services answer on
    169.254.169.254 and fe80::/10), multicast, unspecified and reserved ones. Private and loopback addresses
    pass: every origin called is one the operator listed, and a local Label Studio lives there."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one (mapped, NAT64, 6to4) reaches that IPv4 address.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
    if (
        ip in _METADATA
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or (ip.is_reserved and not ip.is_loopback)
    ):
        raise OriginError(f"leads to {ip}, a link-local, unspecified, multicast or reserved address")


def check_resolved(url: str) -> None:
    """Resolves the host of `url` and refuses it when any of its addresses is one no worker may call."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or SCHEMES.get(parts.scheme, 80), type=socket.SOCK_STREAM)
    except OSError as error:
        raise OriginError(f"cannot be resolved ({error.strerror or error})") from None
    for info in infos:
        refuse_address(info[4][0])
