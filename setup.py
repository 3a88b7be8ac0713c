"""Packaging beyond what pyproject.toml can say: taxonomy/ and annotations/ stay at the top of the repository (the
project layout), and the wheel carries them as curate/bundled/taxonomy and curate/bundled/annotations (mapped as
package data at build time, not copied in the tree). curate.resources finds them in either place."""
from setuptools import find_packages, setup

BUNDLED = {"curate.bundled.taxonomy": "taxonomy", "curate.bundled.annotations": "annotations"}

setup(
    packages=find_packages(include=["curate", "curate.*"]) + list(BUNDLED),
    package_dir=BUNDLED,
    package_data={"curate": ["py.typed", "data/**/*", "templates/**/*", "models/**/*"],
                  **{name: ["**/*"] for name in BUNDLED}},
)
