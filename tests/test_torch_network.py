"""PyPI's real torch for Linux x86_64 and aarch64 (marked ``network``; skipped when PyPI is unreachable).

PyPI's torch is a CUDA build on Linux x86_64 whose CUDA libraries (nvidia-*-cu12) are separate wheels
behind markers; its aarch64 wheel of the same version declares its own dependencies. The lock must
carry the CUDA libraries for x86_64, and for aarch64 exactly what the selected aarch64 wheel's
metadata (read through the planner's own metadata path) asks for on that target, no more, no less.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bundler.job import build_job
from bundler.http import make_client
from bundler.httpcache import PlannerCache
from bundler.plan import MetadataStore, plan
from bundler.repository import Repository
from bundler.wheelmeta import CoreMetadata
from support.oracle import PYPI, pypi_reachable

EXCLUDE_NEWER = "2025-09-01T00:00:00Z"  # torch 2.8.0


pytestmark = [pytest.mark.network, pytest.mark.skipif(not pypi_reachable(), reason="PyPI is unreachable")]


@pytest.fixture(autouse=True)
def _pip_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # this machine's pip config adds local mirrors
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)


def _requires(meta: CoreMetadata, env: dict[str, str]) -> set[str]:
    return {canonicalize_name(r.name) for r in meta.requires_dist if r.marker is None or r.marker.evaluate({**env, "extra": ""})}


@pytest.mark.parametrize("platform", ["x86_64-manylinux_2_28", "aarch64-manylinux_2_28"])
def test_pypi_torch_cuda_libraries_follow_the_selected_wheel(platform: str, tmp_path: Path) -> None:
    job = build_job(positional=["torch"], req_files=[], constraint_files=[], profile_specs=[], platform=platform, version="3.12",
                    index_url=PYPI, extra_index_urls=[], find_links=[], named=[], pins=[], pre=False, exclude_newer=EXCLUDE_NEWER)
    assert job.torch is None
    client = make_client()
    repo = Repository(job.indexes, client, PlannerCache(tmp_path / "cache"))
    try:
        result = plan(repo, job.profiles, job.inputs, job.indexes)
        pins = {p.name: p for p in result.targets[0].pins}
        env = dict(job.profiles[0].markers)
        store = MetadataStore(repo)
        torch_meta = store.get(pins["torch"].link)
        # the CUDA libraries the metadata asks for on this target, and theirs in turn
        wanted, todo = set(), [n for n in _requires(torch_meta, env) if n.startswith("nvidia-")]
        while todo:
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            assert name in pins, f"{name} is required by the metadata but not locked"
            todo += [n for n in _requires(store.get(pins[name].link), env) if n.startswith("nvidia-")]
    finally:
        repo.close()
        client.close()
    assert pins["torch"].version == "2.8.0"
    locked = {n for n in pins if n.startswith("nvidia-")}
    assert locked == wanted
    if platform.startswith("x86_64"):
        assert {"nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-nccl-cu12"} <= locked and "triton" in pins
        assert pins["torch"].link.filename.endswith("manylinux_2_28_x86_64.whl")
    else:
        assert pins["torch"].link.filename.endswith("aarch64.whl")
        # the x86_64 wheel's CUDA libraries are behind markers that do not hold here
        assert all(r.marker is not None for r in torch_meta.requires_dist if canonicalize_name(r.name).startswith("nvidia-"))
