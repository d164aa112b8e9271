"""Server TLS for both listeners: one SSLContext per listener and process, with a minimum version, whose certificate
and key are reloaded in place on SIGHUP. New handshakes use the new pair; open connections keep theirs. A pair that
does not load (unreadable, not PEM, key not matching) leaves the old one serving and says why in the log."""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from pathlib import Path

from hypercorn.config import Config as HypercornConfig

__all__ = ["ReloadableTls", "TlsHypercornConfig"]

log = logging.getLogger("appliance.tls")

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_ALPN = ["h2", "http/1.1"]
_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # TLS 1.2 suites; TLS 1.3 suites are OpenSSL's (all AEAD)


class ReloadableTls:
    """The SSLContext of one listener (`name` is for the log: "s3", "admin")."""

    def __init__(self, name: str, certfile: str, keyfile: str, min_version: str) -> None:
        self.name = name
        self.certfile = certfile
        self.keyfile = keyfile
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = _VERSIONS[min_version]
        self.context.options |= ssl.OP_NO_COMPRESSION
        self.context.set_ciphers(_CIPHERS)
        self.context.set_alpn_protocols(_ALPN)
        self.context.load_cert_chain(certfile, keyfile)  # at start a bad pair is fatal (ConfigError upstream)

    def reload(self) -> bool:
        """Load the files again into the live context; False (old pair kept, reason logged) when they do not load.

        The files are read once and checked in a scratch context first: `load_cert_chain` on the live context
        could otherwise leave a new certificate with the old key when the key file is the bad one, or pick up a
        half-written file that changed between the check and the load."""
        try:
            cert = Path(self.certfile).read_bytes()
            key = Path(self.keyfile).read_bytes()
        except OSError as exc:
            log.error("%s TLS: cannot read the new certificate or key (%s); keeping the old one", self.name, exc)
            return False
        with tempfile.TemporaryDirectory(prefix="s3ipfs-tls-") as tmp:
            cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
            except (ssl.SSLError, OSError, ValueError) as exc:
                log.error("%s TLS: the new certificate/key do not load (%s); keeping the old one", self.name, exc)
                return False
            self.context.load_cert_chain(cert_path, key_path)
        log.info("%s TLS: certificate and key reloaded from %s", self.name, self.certfile)
        return True


class TlsHypercornConfig(HypercornConfig):
    """Hypercorn's config serving our own context (min version, reloadable) instead of building its own."""

    def __init__(self, tls: ReloadableTls | None = None) -> None:
        super().__init__()
        self.tls = tls
        if tls is not None:
            self.certfile, self.keyfile = tls.certfile, tls.keyfile  # makes hypercorn's ssl_enabled true

    def create_ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return super().create_ssl_context()
        return self.tls.context
