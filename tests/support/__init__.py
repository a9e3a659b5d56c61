"""What the tests share: real loopback servers (indexserver, faultserver, fakeindex for in-memory
pages), real artefacts (wheelgen, sdistgen, bundlefixture), the worlds several test modules build
(packworld, siteworld, supplyworld, torchindex, plancases), the uv/pip-compile oracle, the hermetic
environment, and one finder for pyenv's interpreters (pythons). Tests import ``support.X`` (pytest
puts tests/ on sys.path); scripts run as ``python -m scripts.NAME`` from the repository root and
import ``tests.support.X``. Modules here import each other relatively, so both work.
"""
