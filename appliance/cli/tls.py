"""Make a TLS key and certificate for the S3 (or admin) port: `s3ipfs tls issue --domain s3.example.org --ip 10.0.0.5`.

The key is EC P-256. Every --domain and --ip becomes a subject alternative name (a wildcard `*.DOMAIN` is added for
each domain, for virtual-hosted-style bucket addresses, unless --no-wildcard). Without --ca-cert/--ca-key the
certificate is self-signed (clients must trust that file); with them it is signed by that CA and cert.pem holds the
certificate followed by the CA's, the chain a server sends. key.pem is written 0600, cert.pem 0644; existing files
are kept unless --force. The command prints the config lines that use the files.

Exit codes: 0 written; 1 a file exists (use --force) or cannot be written; 2 bad usage or an unusable CA.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "add_parser", "issue", "run"]

_CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


@dataclass(frozen=True, slots=True)
class Issued:
    cert_path: Path
    key_path: Path
    serial: int
    not_after: dt.datetime


class UsageError(Exception):
    """A problem with the arguments (exit 2)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tls = commands.add_parser("tls", help="TLS certificates for the listeners")
    actions = tls.add_subparsers(dest="action", required=True, metavar="ACTION")
    issue_cmd = actions.add_parser(
        "issue", help="make a key and a certificate", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    issue_cmd.add_argument("--domain", action="append", default=[], metavar="NAME", help="DNS name (repeatable)")
    issue_cmd.add_argument("--ip", action="append", default=[], metavar="ADDR", help="IP address (repeatable)")
    issue_cmd.add_argument("--ca-cert", metavar="FILE", help="PEM certificate of the signing CA")
    issue_cmd.add_argument("--ca-key", metavar="FILE", help="PEM private key of the signing CA (unencrypted)")
    issue_cmd.add_argument("--out-dir", metavar="DIR", default=".", help="where cert.pem and key.pem go (default .)")
    issue_cmd.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    issue_cmd.add_argument("--no-wildcard", action="store_true", help="no *.DOMAIN name for each domain")
    issue_cmd.add_argument("--force", action="store_true", help="replace existing files")
    issue_cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    issue_cmd.set_defaults(handler=run)


def _names(domains: list[str], ips: list[str], wildcard: bool) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for given in domains:
        domain = given.strip().rstrip(".").lower()
        if not domain or " " in domain or "*" in domain.removeprefix("*."):
            raise UsageError(f"--domain {domain!r} is not a DNS name")
        names.append(x509.DNSName(domain))
        if wildcard and not domain.startswith("*."):
            names.append(x509.DNSName(f"*.{domain}"))
    for ip in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip.strip())))
        except ValueError:
            raise UsageError(f"--ip {ip!r} is not an IP address") from None
    if not names:
        raise UsageError("give at least one --domain or --ip: the certificate must name the server")
    return names


def _load_ca(cert_file: str, key_file: str) -> tuple[x509.Certificate, _CaKey]:
    try:
        ca_cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        ca_key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"--ca-cert/--ca-key: cannot load them ({exc})") from None
    if not isinstance(ca_key, _CaKey):
        raise UsageError("--ca-key: unsupported key type (use RSA, EC or Ed25519/Ed448)")
    if ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != ca_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise UsageError("--ca-key does not belong to --ca-cert")
    try:
        if not ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise UsageError("--ca-cert is not a CA certificate (basicConstraints CA:FALSE)")
    except x509.ExtensionNotFound:
        pass  # old-style CA without the extension: let the client decide
    return ca_cert, ca_key


def issue(
    out_dir: Path,
    *,
    domains: list[str],
    ips: list[str],
    days: int = 365,
    ca_cert_file: str | None = None,
    ca_key_file: str | None = None,
    wildcard: bool = True,
    force: bool = False,
    now: dt.datetime | None = None,
) -> Issued:
    """Write out_dir/cert.pem and out_dir/key.pem. UsageError for bad arguments, FileExistsError without force."""
    if not 1 <= days <= 3650:
        raise UsageError("--days must be between 1 and 3650")
    if bool(ca_cert_file) != bool(ca_key_file):
        raise UsageError("give --ca-cert and --ca-key together (or neither, for a self-signed certificate)")
    names = _names(domains, ips, wildcard)
    ca = _load_ca(ca_cert_file, ca_key_file) if ca_cert_file and ca_key_file else None
    cert_path, key_path = out_dir / "cert.pem", out_dir / "key.pem"
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise FileExistsError(f"{path} exists; pass --force to replace it")

    key = ec.generate_private_key(ec.SECP256R1())
    first = names[0].value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))])
    now = now or dt.datetime.now(dt.UTC)
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))  # a client clock a little behind still accepts it
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    chain = b""
    if ca is None:
        cert = builder.issuer_name(subject).sign(key, hashes.SHA256())
    else:
        ca_cert, ca_key = ca
        builder = builder.issuer_name(ca_cert.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        algorithm = None if isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
        cert = builder.sign(ca_key, algorithm)
        chain = ca_cert.public_bytes(serialization.Encoding.PEM)

    out_dir.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(key_path, key_pem, 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM) + chain, 0o644)
    return Issued(cert_path.resolve(), key_path.resolve(), serial, cert.not_valid_after_utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, with `mode` from the start (the key is never world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)  # the umask may have taken bits away from 0644
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    try:
        issued = issue(
            Path(args.out_dir),
            domains=args.domain,
            ips=args.ip,
            days=args.days,
            ca_cert_file=args.ca_cert,
            ca_key_file=args.ca_key,
            wildcard=not args.no_wildcard,
            force=args.force,
        )
    except UsageError as exc:
        print(f"s3ipfs tls issue: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, OSError) as exc:
        print(f"s3ipfs tls issue: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "certfile": str(issued.cert_path),
                    "keyfile": str(issued.key_path),
                    "serial": f"{issued.serial:x}",
                    "not_after": issued.not_after.isoformat(),
                }
            )
        )
        return 0
    print(f"wrote {issued.cert_path} (serial {issued.serial:x}, valid until {issued.not_after:%Y-%m-%d})")
    print(f"wrote {issued.key_path} (mode 0600; the s3ipfs user must be able to read it)")
    print(
        "set in /etc/s3ipfs/s3ipfs.yaml (the admin section takes the same keys) and `systemctl restart s3ipfs`; "
        "later replacements of these files need only `systemctl reload s3ipfs`:"
    )
    print("s3:")
    print(f"  tls_certfile: {json.dumps(str(issued.cert_path))}")
    print(f"  tls_keyfile: {json.dumps(str(issued.key_path))}")
    print('  tls_min_version: "1.3"')
    return 0
