"""The Ansible role and fleet playbook: pinned tools install, syntax check, ansible-lint production, rendered files.

A real run into a booted container is the container test's job (tests/packaging/container-test.sh); these tests need
no target host. They render the role's templates with ansible itself (connection=local, into a temporary directory).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from appliance.config import AppConfig
from tests.packaging.conftest import REPO, SYSTEM_PATH, system_env

ANSIBLE = REPO / "ansible"
ROLE = ANSIBLE / "roles" / "s3ipfs"
SECRETS = (
    "s3ipfs_cluster_secret",
    "s3ipfs_swarm_key",
    "s3ipfs_ipfs_auth_header",
    "s3ipfs_cluster_password",
    "s3ipfs_cluster_jwt",
)


def _run(argv: list[str | Path], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def venv_bin() -> Path:
    result = _run(["bash", REPO / "scripts/ansible-venv.sh"], system_env())
    assert result.returncode == 0, result.stderr[-4000:]
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ansible_env(venv_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("ansible-home")
    return {
        **system_env(),
        "PATH": f"{venv_bin}:{SYSTEM_PATH}",
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }


def _render(
    venv_bin: Path, env: dict[str, str], template: str, dest: Path, extra: dict[str, object] | None = None
) -> str:
    argv: list[str | Path] = [
        venv_bin / "ansible", "localhost", "-c", "local", "-i", "localhost,",
        "-e", f"ansible_python_interpreter={venv_bin / 'python'}",
        "-e", f"@{ROLE / 'defaults/main.yml'}", "-e", f"@{ROLE / 'vars/main.yml'}",
        "-m", "ansible.builtin.template", "-a", f"src={ROLE / 'templates' / template} dest={dest} mode=0600",
    ]  # fmt: skip
    if extra:
        argv += ["-e", json.dumps(extra)]
    result = _run(argv, env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return dest.read_text(encoding="utf-8")


def test_venv_script_is_a_no_op_when_run_again(venv_bin: Path) -> None:
    result = _run(["bash", REPO / "scripts/ansible-venv.sh"], system_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(venv_bin)
    assert "installing" not in result.stderr
    version = _run([venv_bin / "ansible-playbook", "--version"], system_env())
    assert "core 2.19." in version.stdout, version.stdout


def test_playbook_passes_the_syntax_check(venv_bin: Path, ansible_env: dict[str, str]) -> None:
    result = _run(
        [venv_bin / "ansible-playbook", "-i", "inventory.example.ini", "--syntax-check", "site.yml"],
        ansible_env,
        ANSIBLE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_passes_the_production_profile(venv_bin: Path, ansible_env: dict[str, str]) -> None:
    result = _run([venv_bin / "ansible-lint", "--offline", "--profile", "production", "."], ansible_env, ANSIBLE)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"Passed: 0 failure\(s\), 0 warning\(s\)", output), output[-6000:]
    assert "Profile 'production' was required, and it passed" in output, output[-6000:]


def test_every_role_variable_is_prefixed_and_documented() -> None:
    lines = (ROLE / "defaults/main.yml").read_text(encoding="utf-8").splitlines()
    names = []
    for number, line in enumerate(lines):
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
        if not match:
            continue
        names.append(match.group(1))
        assert match.group(1).startswith("s3ipfs_"), line
        # A comment directly above, or above a run of consecutive related variables (the _host/_port pairs).
        above = number - 1
        while above >= 0 and re.match(r"^s3ipfs_\w+:", lines[above]):
            above -= 1
        assert above >= 0 and lines[above].startswith("#"), f"{match.group(1)} has no comment above it"
    used = set()
    for path in [*ROLE.rglob("*.yml"), *ROLE.rglob("*.j2"), ANSIBLE / "site.yml"]:
        used |= set(re.findall(r"\bs3ipfs_[a-z0-9_]+\b", path.read_text(encoding="utf-8")))
    defined = set(names) | set(yaml.safe_load((ROLE / "vars/main.yml").read_text(encoding="utf-8")))
    registered = {"s3ipfs_package_result", "s3ipfs_package_deb", "s3ipfs_package_repo", "s3ipfs_package_rpm"}
    registered |= {"s3ipfs_cluster_binary", "s3ipfs_ready", "s3ipfs_daemon_files"}
    assert used - defined - registered == set()


def test_secrets_have_no_default_value() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text(encoding="utf-8"))
    for name in SECRETS:
        assert defaults[name] == "", name


def test_rendered_config_mirrors_every_key_and_default_of_config_py(
    venv_bin: Path, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    text = _render(venv_bin, ansible_env, "s3ipfs.yaml.j2", tmp_path / "s3ipfs.yaml")
    data = yaml.safe_load(text)
    expected = AppConfig().model_dump(mode="json")
    for listener in ("s3", "admin"):  # the role, like the packaged file, asks for TLS 1.3
        expected[listener]["tls_min_version"] = "1.3"
    # Every key of every section is written, so a new key in config.py fails here until the role learns it.
    assert {k: sorted(v) if isinstance(v, dict) else None for k, v in data.items()} == {
        k: sorted(v) if isinstance(v, dict) else None for k, v in expected.items()
    }
    assert AppConfig.model_validate(data).model_dump(mode="json") == expected


def test_rendered_config_takes_overrides(venv_bin: Path, ansible_env: dict[str, str], tmp_path: Path) -> None:
    extra = {
        "s3ipfs_s3_host": "0.0.0.0",
        "s3ipfs_s3_domains": ["s3.example.org"],
        "s3ipfs_ipfs_auth_header": 'Basic "x"',
    }
    data = yaml.safe_load(_render(venv_bin, ansible_env, "s3ipfs.yaml.j2", tmp_path / "s3ipfs.yaml", extra))
    config = AppConfig.model_validate(data)
    assert (config.s3.host, config.s3.domains, config.ipfs.auth_header) == ("0.0.0.0", ("s3.example.org",), 'Basic "x"')


def test_dropin_is_empty_by_default_and_grants_what_overrides_need(
    venv_bin: Path, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    plain = _render(venv_bin, ansible_env, "override.conf.j2", tmp_path / "plain.conf")
    assert [line for line in plain.splitlines() if line and not line.startswith("#")] == ["[Service]"]
    extra = {
        "s3ipfs_s3_port": 443,
        "s3ipfs_metadata_path": "/srv/s3ipfs/meta",
        "s3ipfs_service_environment": {"S3IPFS_CACHE__MEMORY_BYTES": "0"},
    }
    custom = _render(venv_bin, ansible_env, "override.conf.j2", tmp_path / "custom.conf", extra)
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in custom
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in custom
    assert "ReadWritePaths=/srv/s3ipfs" in custom
    assert 'Environment="S3IPFS_CACHE__MEMORY_BYTES=0"' in custom


def test_cluster_env_file_carries_the_secret_and_peer_set(
    venv_bin: Path, ansible_env: dict[str, str], tmp_path: Path
) -> None:
    peers = [
        "/ip4/10.0.0.1/tcp/9096/p2p/12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/ip4/10.0.0.2/tcp/9096/p2p/12D3KooWBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ]
    extra = {"s3ipfs_cluster_secret": "ab" * 32, "s3ipfs_cluster_peers": peers}
    text = _render(venv_bin, ansible_env, "cluster.env.j2", tmp_path / "cluster.env", extra)
    env = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert env["CLUSTER_SECRET"] == "ab" * 32
    assert env["CLUSTER_PEERADDRESSES"] == ",".join(peers)
    assert env["CLUSTER_CRDT_TRUSTEDPEERS"] == ",".join(p.rsplit("/", 1)[1] for p in peers)


def test_fleet_play_restarts_one_host_at_a_time_and_waits_for_ready() -> None:
    (play,) = yaml.safe_load((ANSIBLE / "site.yml").read_text(encoding="utf-8"))
    assert play["serial"] == 1 and play["max_fail_percentage"] == 0
    (wait,) = play["post_tasks"]
    assert wait["ansible.builtin.uri"]["status_code"] == 200 and wait["until"] == "s3ipfs_ready.status == 200"
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text(encoding="utf-8"))
    # http, or https when the role gives the admin port a certificate (then not verified: it is the host itself).
    scheme = "{{ 'https' if s3ipfs_admin_tls_certfile else 'http' }}"
    assert defaults["s3ipfs_ready_url"] == scheme + "://127.0.0.1:{{ s3ipfs_admin_port }}/ready"
    assert wait["ansible.builtin.uri"]["validate_certs"] is False


def test_secret_tasks_are_never_logged() -> None:
    for path in (ROLE / "tasks/swarm.yml", ROLE / "tasks/cluster.yml"):
        for task in yaml.safe_load(path.read_text(encoding="utf-8")):
            body = json.dumps(task)
            if "s3ipfs_swarm_key" in body or "cluster.env" in body or "CLUSTER_SECRET" in body:
                assert task.get("no_log") is True, task["name"]
                module = task.get("ansible.builtin.copy") or task.get("ansible.builtin.template")
                if module:
                    assert (module["mode"], module["owner"]) == ("0600", "{{ s3ipfs_user }}"), task["name"]
