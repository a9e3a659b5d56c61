"""bundler.sbom: a CycloneDX document that is reproducible, complete and free of credentials."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from bundler.sbom import SbomEntry, licenses_of, sbom_json

WHEN = datetime(2024, 6, 1, tzinfo=timezone.utc)
ENTRIES = [
    SbomEntry(name="requests", version="2.31.0", filename="requests-2.31.0-py3-none-any.whl", sha256="ab" * 32,
              index="https://alice:s3cret@idx.example/simple/", license="Apache-2.0", targets=("win", "linux")),
    SbomEntry(name="docopt", version="0.6.2", filename="docopt-0.6.2-py3-none-any.whl", sha256="cd" * 32, index=None,
              license=None, targets=("linux",), source=("docopt-0.6.2.tar.gz", "ef" * 32)),
]


def make(entries: list[SbomEntry] = ENTRIES) -> bytes:
    return sbom_json(entries, bundle="kit", lock_sha256="12" * 32, created=WHEN, tool="wheelhouse 0.1.0")


def test_reproducible_whatever_the_order() -> None:
    assert make() == make(list(reversed(ENTRIES)))


def test_every_component_with_purl_hash_source_license_and_targets() -> None:
    doc = json.loads(make())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] in ("1.5", "1.6")
    comps = {c["name"]: c for c in doc["components"]}
    req = comps["requests"]
    assert req["purl"] == "pkg:pypi/requests@2.31.0?file_name=requests-2.31.0-py3-none-any.whl"
    assert req["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert req["licenses"] == [{"expression": "Apache-2.0"}]
    assert req["externalReferences"][0]["url"] == "https://idx.example/simple/"
    assert [p["value"] for p in req["properties"]] == ["linux", "win"]
    assert comps["docopt"]["pedigree"]["ancestors"][0]["hashes"][0]["content"] == "ef" * 32
    assert b"s3cret" not in make() and b"alice" not in make()


def test_licenses_read_back_and_garbage_is_empty() -> None:
    assert licenses_of(make()) == {("requests", "2.31.0"): "Apache-2.0"}
    assert licenses_of(b"not json") == {} and licenses_of(b"[1]") == {} and licenses_of(b'{"components": [1, {}]}') == {}
