"""`s3ipfs node init`: the files it writes, what it prints once, and every refusal (nothing half-written)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from appliance.cli.main import main
from appliance.nodesetup.identity import generate_identity, identity_from_private_key
from appliance.nodesetup.secrets import format_swarm_key, generate_secret

IPFS_PEER = generate_identity().peer_id
CLUSTER_PEER = generate_identity().peer_id


def _config(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "s3ipfs.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n{extra}")
    return str(path)


def _init(tmp_path: Path, *extra: str, config: str | None = None) -> int:
    return main(["node", "init", "--config", config or _config(tmp_path), "--peername", "host1", *extra])


def _state(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state" / "ipfs", tmp_path / "state" / "cluster"


def test_init_writes_both_daemons_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _init(
        tmp_path,
        "--peer", f"/ip4/10.0.0.2/tcp/4001/p2p/{IPFS_PEER}",
        "--cluster-peer", f"/ip4/10.0.0.2/tcp/9096/p2p/{CLUSTER_PEER}",
        "--storage-max", "100GB", "--replication-min", "2", "--replication-max", "3", "--tag", "group=rack1",
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    repo, cluster = _state(tmp_path)
    assert sorted(p.name for p in repo.iterdir()) == ["config", "datastore_spec", "swarm.key", "version"]
    assert sorted(p.name for p in cluster.iterdir()) == ["identity.json", "peerstore", "service.json"]
    for path in [*repo.iterdir(), *cluster.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    kubo = json.loads((repo / "config").read_text())
    assert identity_from_private_key(kubo["Identity"]["PrivKey"]).peer_id == kubo["Identity"]["PeerID"]
    assert kubo["Bootstrap"] == [f"/ip4/10.0.0.2/tcp/4001/p2p/{IPFS_PEER}"]
    assert kubo["Datastore"]["StorageMax"] == "100GB"
    assert (repo / "version").read_text() == "18\n"
    service = json.loads((cluster / "service.json").read_text())
    identity = json.loads((cluster / "identity.json").read_text())
    assert service["cluster"]["peername"] == "host1"
    assert (service["cluster"]["replication_factor_min"], service["cluster"]["replication_factor_max"]) == (2, 3)
    assert service["consensus"]["crdt"]["trusted_peers"] == [identity["id"], CLUSTER_PEER]
    assert service["informer"]["tags"]["tags"] == {"group": "rack1"}
    password = service["api"]["restapi"]["basic_auth_credentials"]["s3ipfs"]
    assert (cluster / "peerstore").read_text() == f"/ip4/10.0.0.2/tcp/9096/p2p/{CLUSTER_PEER}\n"
    # the generated secrets and the password are shown once, with what to do with them
    swarm_key = (repo / "swarm.key").read_text().split("\n")[2]
    assert swarm_key in out and service["cluster"]["secret"] in out and password in out
    assert "copy them to every other host" in out
    assert kubo["Identity"]["PeerID"] in out and identity["id"] in out
    assert kubo["Identity"]["PrivKey"] not in out


def test_given_secrets_are_used_and_not_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, secret = generate_secret(), generate_secret()
    (tmp_path / "swarm.key").write_text(format_swarm_key(key))
    (tmp_path / "secret").write_text(secret + "\n")
    assert (
        _init(tmp_path, "--swarm-key", str(tmp_path / "swarm.key"), "--cluster-secret", str(tmp_path / "secret")) == 0
    )
    out = capsys.readouterr().out
    repo, cluster = _state(tmp_path)
    assert (repo / "swarm.key").read_text() == format_swarm_key(key)
    assert json.loads((cluster / "service.json").read_text())["cluster"]["secret"] == secret
    assert key not in out and secret not in out and "Generated secrets" not in out


def test_replication_defaults_come_from_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, "pinning:\n  replication_min: 2\n  replication_max: 4\n")
    assert _init(tmp_path, config=config) == 0
    service = json.loads((_state(tmp_path)[1] / "service.json").read_text())
    assert (service["cluster"]["replication_factor_min"], service["cluster"]["replication_factor_max"]) == (2, 4)
    assert _init(tmp_path, "--force") == 0  # default config: 0/0 -> the cluster's -1/-1 (every peer)
    service = json.loads((_state(tmp_path)[1] / "service.json").read_text())
    assert (service["cluster"]["replication_factor_min"], service["cluster"]["replication_factor_max"]) == (-1, -1)


def test_existing_files_need_force_and_force_keeps_identities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _init(tmp_path) == 0
    repo, cluster = _state(tmp_path)
    before = (repo / "config").read_text(), (cluster / "identity.json").read_text(), (repo / "swarm.key").read_text()
    first_out = capsys.readouterr().out
    assert _init(tmp_path, "--storage-max", "1TB") == 2
    err = capsys.readouterr().err
    assert "already exist" in err and "--force" in err and "nothing was written" in err
    assert (repo / "config").read_text() == before[0]
    assert _init(tmp_path, "--storage-max", "1TB", "--force") == 0
    kubo, old = json.loads((repo / "config").read_text()), json.loads(before[0])
    assert kubo["Datastore"]["StorageMax"] == "1TB"
    assert kubo["Identity"] == old["Identity"]
    assert (cluster / "identity.json").read_text() == before[1]
    assert (repo / "swarm.key").read_text() == before[2]  # the network's secrets are kept, not rotated
    out = capsys.readouterr().out
    assert "Generated secrets" not in out and "password:" not in out
    service = json.loads((cluster / "service.json").read_text())
    assert service["api"]["restapi"]["basic_auth_credentials"]["s3ipfs"] in first_out
    assert service["cluster"]["secret"] in first_out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--peer", "/ip4/10.0.0.2/tcp/4001"], "must end with /p2p/"),
        (["--peer", "10.0.0.2:4001"], "must look like"),
        (["--peer", "/ip4/10.0.0.999/tcp/4001/p2p/" + IPFS_PEER], "10.0.0.999"),
        (["--cluster-peer", "/ip4/10.0.0.2/udp/9096/quic/p2p/" + CLUSTER_PEER], "TCP-only"),
        (["--swarm-listen", "/ip4/0.0.0.0/tcpx/4001"], "unknown protocol"),
        (["--storage-max", "huge"], "e.g. 100GB"),
        (["--replication-min", "3", "--replication-max", "2"], "larger than"),
        (["--replication-min", "-1", "--replication-max", "2"], "both"),
        (["--replication-min", "-5", "--replication-max", "-5"], "-1 (every peer)"),
        (["--api-user", "a:b"], "--api-user"),
    ],
)
def test_malformed_inputs_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    assert _init(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "state").exists()


def test_unreadable_or_wrong_secret_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(tmp_path, "--swarm-key", str(tmp_path / "missing.key")) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "short").write_text("abcd\n")
    assert _init(tmp_path, "--cluster-secret", str(tmp_path / "short")) == 2
    assert "64 hex characters" in capsys.readouterr().err
    (tmp_path / "bad.key").write_text("/key/swarm/psk/1.0.0/\n/base16/\n" + "ab" * 16 + "\n")
    assert _init(tmp_path, "--swarm-key", str(tmp_path / "bad.key")) == 2
    assert "32 characters, not 64" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_bad_tag_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(tmp_path, "--tag", "rack1") == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_no_cluster_writes_only_the_kubo_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(tmp_path, "--no-cluster") == 0
    repo, cluster = _state(tmp_path)
    assert (repo / "config").exists() and not cluster.exists()
    assert "password" not in capsys.readouterr().out


def test_force_with_a_given_swarm_key_replaces_the_kept_one(tmp_path: Path) -> None:
    assert _init(tmp_path) == 0
    key = generate_secret()
    (tmp_path / "new.key").write_text(format_swarm_key(key))
    assert _init(tmp_path, "--force", "--swarm-key", str(tmp_path / "new.key")) == 0
    assert (_state(tmp_path)[0] / "swarm.key").read_text() == format_swarm_key(key)
