"""The PyTorch parts of failure messages: builds that live on an index that was not given, and drivers.

``bundler.diagnose`` builds the messages and asks these functions for the torch-specific sentence
or hint; each returns None when it has nothing to say.
"""

from __future__ import annotations

from typing import Sequence

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bundler.gpu.backend import in_family, index_url, named_variant
from bundler.gpu.checks import driver_warnings
from bundler.gpu.cuda import cuda_version
from bundler.index import IndexConfig
from bundler.profile import Profile
from bundler.select import WheelChoice, parsable_version


def torch_index_hint(name: str, spec: SpecifierSet, index: IndexConfig) -> tuple[str, str] | None:
    """(sentence, hint) when ``spec`` asks for a PyTorch build the supplying index cannot have:
    a ``+cu121``/``+cpu`` local version, or a nightly (``.dev``), from an index that is not that
    backend's PyTorch index."""
    if not in_family(name):
        return None
    variant = named_variant(spec)
    if variant and (variant == "cpu" or cuda_version(variant)) and index.name not in (f"pytorch-{variant}", f"pytorch-nightly-{variant}"):
        url = index_url(variant)
        rest = index.name if not index.name.startswith("pytorch-") else "the other indexes"
        hint = (f"add --torch-backend {variant} (in a recipe: torch-backend = \"{variant}\"): {name} then comes from {url} "
                f"and everything else from {rest}")
        return f"local version +{variant} is published on the PyTorch index {url}", hint
    dev = any(Version(s.version.replace("*", "0")).is_devrelease for s in spec if parsable_version(s.version))
    if dev and not index.name.startswith("pytorch-nightly-"):
        url = index_url("<backend>", nightly=True)
        return (f"{name} nightly builds (.devYYYYMMDD) are published on the PyTorch nightly indexes {url}",
                "add --pre --torch-backend cpu (or cuXYZ) to take them from the nightly index of that backend")
    return None


def same_release(name: str, spec: SpecifierSet, usable: Sequence[WheelChoice]) -> str | None:
    """A hint when the target has another build of the release a local-version pin names
    (aarch64 gets plain ``2.3.0`` where x86_64 gets ``2.3.0+cu121``)."""
    for s in spec:
        if s.operator in ("==", "===") and "+" in s.version and parsable_version(s.version):
            public = Version(s.version).public
            same = [c for c in usable if c.version.public == public]
            if same:
                return (f"for this target the index has {name} {same[0].version}, not +{Version(s.version).local}: "
                        f"ask for {name}=={public} (no local version) and each target gets its own build")
    return None


def driver_note(name: str, usable: Sequence[WheelChoice], profile: Profile) -> str | None:
    """A note when the newest usable torch is a CUDA build the target's captured driver does not fully support."""
    if not usable or name != "torch":
        return None
    warnings = driver_warnings([usable[0]], profile)
    return warnings[0] if warnings else None


def unknown_project_hint(name: str, sources: Sequence[IndexConfig]) -> str | None:
    """The hint when no index has ``name`` and PyTorch is why: a name only the nightly indexes carry,
    or a ``--torch-backend`` index that claims the project and lacks it. None otherwise."""
    if name in ("pytorch-triton", "torchtriton"):
        return (f"{name} is published only on the PyTorch nightly indexes ({index_url('<backend>', nightly=True)}), "
                "never take it from PyPI: add --pre --torch-backend cuXYZ")
    backend = next((i for i in sources if i.explicit and i.name.startswith("pytorch-")), None)
    if backend is not None:
        return (f"{name} is served only by {backend.name} (the --torch-backend index claims {', '.join(backend.packages or ())}), "
                "which does not have it: lock without --torch-backend, with a recipe [[index]] for the PyTorch index that lists "
                "exactly the projects to take from it")
    return None
