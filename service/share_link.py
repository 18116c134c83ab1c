"""The link a class can open: built from the address the visitor used, or from $LORA_LAB_PUBLIC_URL when
the operator names the address students reach (behind a proxy, or a teacher browsing on localhost).

A link whose host is this machine's own loopback address opens only on this machine: the page says so,
with the addresses students could use instead."""
import io
import ipaddress
import os
import socket
import struct
from functools import lru_cache

try:
    import fcntl  # Unix only
except ImportError:
    fcntl = None
from urllib.parse import urlencode, urlsplit, urlunsplit

import segno

PUBLIC_URL_ENV = "LORA_LAB_PUBLIC_URL"  # e.g. http://192.168.1.20:8501 or https://lab.school.example
SIOCGIFADDR = 0x8915  # Linux: an interface's address


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.endswith(".localhost")
    return address.is_loopback or address.is_unspecified


def _interface_address(name: str) -> str | None:
    """An interface's IPv4 address (Linux's SIOCGIFADDR); None where it has none or the call is unknown."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # never connected: nothing is sent
        try:
            packed = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def network_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback: its interfaces', else what its name resolves to."""
    found = set()
    if fcntl is not None:
        found = {a for _, name in socket.if_nameindex() if (a := _interface_address(name)) is not None}
    if not found:
        try:
            found = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        except OSError:
            pass
    return sorted(a for a in found if not _loopback(a))


def link(browser_url: str | None, query: dict[str, str], public_url: str | None = None) -> tuple[str, bool]:
    """(the link to `query` on the page the visitor is on, whether it opens only on this machine).

    `public_url` (default: $LORA_LAB_PUBLIC_URL) replaces the scheme, host, port and any path prefix of the
    visitor's address; the page's own path is kept."""
    public_url = (os.environ.get(PUBLIC_URL_ENV, "").strip() if public_url is None else public_url) or None
    if not (browser_url or public_url):  # no address known (a script run without a browser): the query alone
        return "?" + urlencode(query, safe=","), False
    seen = urlsplit(browser_url or "")
    base = urlsplit(public_url) if public_url else seen
    page = seen.path.rsplit("/", 1)[-1] if seen.path else ""
    path = base.path.rstrip("/") + "/" + page if public_url else seen.path
    url = urlunsplit((base.scheme or "http", base.netloc, path, urlencode(query, safe=","), ""))
    return url, _loopback(base.hostname or "")


def local_only_warning(port: int) -> str:
    """What to do when the link opens only on this machine."""
    others = [f"http://{a}:{port}" for a in network_addresses()]
    where = f" (this machine answers at {', '.join(others)} if the server listens on the network)" if others else ""
    return ("This link starts with this computer's own address, so it opens only here, not on students' "
            f"machines. Open the app at this machine's network address instead{where}, or have the operator set "
            f"{PUBLIC_URL_ENV}; README's \"How a class connects\" says how.")


@lru_cache(maxsize=100)
def qr_png(link: str) -> bytes:
    """The link as a QR code a phone's camera opens (a PNG)."""
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="png", scale=8, border=2)
    return out.getvalue()
