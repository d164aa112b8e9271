"""Ansible connection into a booted systemd-nspawn container: every command runs under `nsenter --all` (tests only).

The container test (tests/packaging/container-test.sh) points ANSIBLE_CONNECTION_PLUGINS here. It does the job of
community.docker.nsenter, which ansible-core does not ship and Galaxy (where that collection lives) is not reachable
from the development machines and CI; the 568 MB `ansible` bundle is not worth one plugin of this size.
"""

from __future__ import annotations

import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
    name: s3ipfs_nsenter
    short_description: run commands in all the namespaces of a container's init with nsenter
    description:
        - Commands run as root in the mount, PID, network, IPC, UTS, user and cgroup namespaces of a process (the
          init of a booted systemd-nspawn container); files are copied through the same nsenter.
    options:
        nsenter_pid:
            description: PID of the container's init on the controller (the host).
            type: int
            required: true
            vars:
                - name: ansible_nsenter_pid
    extends_documentation_fragment:
        - connection_pipelining
"""

# A target host's own environment, not the controller's (whose S3IPFS_* variables would be config overrides there).
CLEAN_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/root")
TIMEOUT = 600  # seconds; one apt install into the container takes well under a minute


class Connection(ConnectionBase):
    """Runs every command with `nsenter --target PID --all`; the controller must be root."""

    transport = "s3ipfs_nsenter"
    has_pipelining = True
    default_user = "root"

    def _nsenter(self, argv: list[str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
        pid = int(self.get_option("nsenter_pid"))
        try:
            return subprocess.run(
                ["nsenter", f"--target={pid}", "--all", "--", "env", "-i", *CLEAN_ENV, *argv],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                check=False,
                timeout=TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AnsibleConnectionFailure(f"nsenter into PID {pid} failed: {exc}") from exc

    def _connect(self) -> Connection:
        self._connected = True
        return self

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        result = self._nsenter(["/bin/sh", "-c", cmd], in_data)
        return result.returncode, result.stdout, result.stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        try:
            with open(in_path, "rb") as source:
                data = source.read()
        except OSError as exc:
            raise AnsibleFileNotFound(f"cannot read {in_path}: {exc}") from exc
        result = self._nsenter(["/bin/sh", "-c", f"cat > {shlex.quote(out_path)}"], data)
        if result.returncode != 0:
            raise AnsibleConnectionFailure(f"cannot write {out_path}: {result.stderr.decode(errors='replace')}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        result = self._nsenter(["cat", "--", in_path], None)
        if result.returncode != 0:
            raise AnsibleFileNotFound(f"cannot read {in_path}: {result.stderr.decode(errors='replace')}")
        with open(out_path, "wb") as target:
            target.write(result.stdout)

    def close(self) -> None:
        self._connected = False
