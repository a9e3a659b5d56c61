"""``sbom.cdx.json``: a CycloneDX software bill of materials for a bundle, made with
``cyclonedx-python-lib``.

Every shipped file is a component with its name, version, purl, the sha256 of the file, the index it
came from (credentials stripped), its license expression from core metadata where it declares one,
and the targets it serves. The document is reproducible: its serial number is derived from the lock
and its timestamp is the bundle's, so the same lock gives the same bytes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from bundler.urls import redact_url

SPEC = "1.6"
SBOM = "sbom.cdx.json"  # its name inside a bundle
_NAMESPACE = uuid.UUID("6f0f6a3c-5d0e-4f6e-9a55-77686565686f")  # wheelhouse's own uuid5 namespace


@dataclass(frozen=True, slots=True, kw_only=True)
class SbomEntry:
    """One file of a bundle as the SBOM lists it."""

    name: str
    version: str
    filename: str
    sha256: str
    index: str | None  # the index URL it came from; None for a local file or a direct reference
    license: str | None  # License-Expression from core metadata, when the package declares one
    targets: tuple[str, ...]
    source: tuple[str, str] | None = None  # (sdist filename, sha256) of a wheel built by wheelhouse


def _component(entry: SbomEntry) -> Any:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
    from cyclonedx.model.component import Component, ComponentType, Pedigree
    from cyclonedx.model.license import LicenseExpression
    from packageurl import PackageURL

    def purl(filename: str) -> PackageURL:
        return PackageURL(type="pypi", name=entry.name, version=entry.version, qualifiers={"file_name": filename})

    refs = [ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(redact_url(entry.index)))] if entry.index else []
    licenses = [LicenseExpression(entry.license)] if entry.license else []
    pedigree = None
    if entry.source is not None:
        sdist, sha = entry.source
        pedigree = Pedigree(ancestors=[Component(name=entry.name, version=entry.version, purl=purl(sdist), bom_ref=f"sdist:{sdist}",
                                                 hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha)])])
    return Component(
        type=ComponentType.LIBRARY, name=entry.name, version=entry.version, bom_ref=entry.filename, purl=purl(entry.filename),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=entry.sha256)], licenses=licenses, external_references=refs,
        properties=[Property(name="wheelhouse:target", value=t) for t in sorted(entry.targets)], pedigree=pedigree)


def sbom_json(entries: Sequence[SbomEntry], *, bundle: str, lock_sha256: str, created: datetime, tool: str) -> bytes:
    """The CycloneDX JSON document for ``entries``, byte-for-byte the same for the same inputs."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    bom = Bom(serial_number=uuid.uuid5(_NAMESPACE, lock_sha256))
    bom.metadata.timestamp = created
    bom.metadata.component = Component(type=ComponentType.APPLICATION, name=bundle, version=lock_sha256[:12],
                                       bom_ref=f"bundle:{bundle}", description=f"offline bundle made by {tool}")
    components = [_component(entry) for entry in sorted(entries, key=lambda e: e.filename)]
    for c in components:
        bom.components.add(c)
    bom.register_dependency(bom.metadata.component, components)  # the bundle holds every component
    text = JsonV1Dot6(bom).output_as_string()
    # Sorted keys and one layout, so that two runs give the same bytes whatever the library's order.
    return (json.dumps(json.loads(text), sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode()


def licenses_of(sbom: bytes) -> dict[tuple[str, str], str]:
    """``(name, version) -> license expression`` from an SBOM this module wrote (for ``diff``);
    a document of another shape gives an empty mapping, never an error."""
    try:
        doc = json.loads(sbom)
    except (ValueError, RecursionError):
        return {}
    out: dict[tuple[str, str], str] = {}
    for c in doc.get("components", []) if isinstance(doc, dict) else []:
        if not isinstance(c, dict):
            continue
        lic = next((x.get("expression") for x in c.get("licenses", []) if isinstance(x, dict)), None)
        if isinstance(c.get("name"), str) and isinstance(c.get("version"), str) and isinstance(lic, str):
            out[(c["name"], c["version"])] = lic
    return out
